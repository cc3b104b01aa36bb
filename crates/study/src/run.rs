//! Running a study: proposing, training (through the runner's trials),
//! stopping, journaling, and the outputs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use kimcnn_schema::{read_history, read_json, write_json, write_trials, StudyBest, TrainTimings, TrialRow, TrialStatus};
use kimcnn_stage::{Job, Progress, RunInfo, StageError, TrialRun};
use kimcnn_tune::{Decision, Observation, Point, Scheduler};
use serde_json::Value;

use crate::journal::{Journal, JournalEvent};
use crate::{Mode, StudyParams};

/// An epoch's figures by name (the train kind's metrics).
pub(crate) type Figures = BTreeMap<String, f64>;

/// One trial as the study knows it.
#[derive(Debug, Clone, Default)]
struct Trial {
    point: Option<Point>,
    /// Epoch -> its figures.
    epochs: BTreeMap<usize, Figures>,
    status: Option<TrialStatus>,
    error: Option<String>,
    /// Its worker's peak resident memory (for a cached trial: when it was computed).
    peak_rss_bytes: Option<u64>,
    /// The epoch the journal says its stopping rule stopped it at, before
    /// the study was killed (a rerun stops there too).
    stop_at: Option<usize>,
}

impl Trial {
    fn ended(&self) -> bool {
        self.status.is_some()
    }
}

struct State {
    trials: Vec<Trial>,
    next: usize,
    scheduler: Scheduler,
    journal: Journal,
    /// A journal write failed: the study stops.
    broken: Option<StageError>,
}

pub(crate) fn run(p: &StudyParams, job: &Job) -> Result<RunInfo, StageError> {
    let note = |m: String| (job.progress)(Progress::Note(m));
    std::fs::create_dir_all(job.state).map_err(|e| StageError::Failed(format!("{}: {e}", job.state.display())))?;
    note_other_journals(job, &note);
    let (journal, events) = Journal::open(&job.state.join("journal.jsonl"), &note)?;
    let n = p.trials;
    let maximize = p.mode == Mode::Max;
    let mut state =
        State { trials: vec![Trial::default(); n], next: 0, scheduler: Scheduler::new(p.stopper.clone(), maximize), journal, broken: None };
    let max_epochs = *p.budgets().last().expect("a budget");
    replay(&mut state, &events, &p.metric, max_epochs)?;
    let ended = state.trials.iter().filter(|t| t.ended()).count();
    if !events.is_empty() {
        let started = state.trials.iter().filter(|t| t.point.is_some()).count();
        note(format!("resumed from its journal: {ended} of {n} trials ended, {} to go on where they were cut off", started - ended));
    }
    let shared = (Mutex::new(state), Condvar::new());
    report(p, job, &shared.0.lock().expect("study lock"));

    // Within the threads the runner gave it (`--jobs`); proposals still lag by
    // `parallel`, so they are the same however many run at once.
    let lanes = p.parallel.min(job.resources.cpus.max(1)).min(n);
    std::thread::scope(|scope| {
        for _ in 0..lanes {
            scope.spawn(|| worker(p, job, &shared, max_epochs));
        }
    });

    let state = shared.0.into_inner().expect("study lock");
    if let Some(e) = state.broken {
        return Err(e);
    }
    if job.stop.load(Ordering::SeqCst) {
        return Err(StageError::Stopped("the study was stopped".into()));
    }
    kimcnn_store::kill_point("study:trials-ended");
    write_outputs(p, job, &state.trials)?;
    Ok(RunInfo::default())
}

/// Journals of this stage under other keys: the study or its inputs changed since.
fn note_other_journals(job: &Job, note: &dyn Fn(String)) {
    let Some(dir) = job.state.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.path() != job.state && e.path().join("journal.jsonl").is_file() {
            note(format!(
                "the study's params or inputs changed since the journal in {} was written: it is not used (this study starts its own)",
                e.path().display()
            ));
        }
    }
}

/// Rebuilds the trials and the stopping rule's state from the journal.
fn replay(state: &mut State, events: &[JournalEvent], metric: &str, max_epochs: usize) -> Result<(), StageError> {
    let bad = |m: String| StageError::BadInput(format!("the study's journal: {m}"));
    let n = state.trials.len();
    for e in events {
        match e {
            JournalEvent::Start { trial, point } => {
                let t = state.trials.get_mut(*trial).ok_or_else(|| bad(format!("trial {trial} is beyond the study's {n} trials")))?;
                t.point = Some(point.clone());
            }
            JournalEvent::Epoch { trial, epoch, metrics } => {
                let t = state.trials.get_mut(*trial).ok_or_else(|| bad(format!("trial {trial} is beyond the study's {n} trials")))?;
                if t.point.is_none() {
                    return Err(bad(format!("trial {trial} reported an epoch before it started")));
                }
                if let Some(v) = metrics.get(metric) {
                    if state.scheduler.report(*trial, *epoch, *v) == Decision::Stop && *epoch < max_epochs {
                        t.stop_at = Some(*epoch);
                    }
                }
                t.epochs.insert(*epoch, metrics.clone());
            }
            JournalEvent::End { trial, status, error, peak_rss_bytes, .. } => {
                let t = state.trials.get_mut(*trial).ok_or_else(|| bad(format!("trial {trial} is beyond the study's {n} trials")))?;
                t.status = Some(*status);
                t.error = error.clone();
                t.peak_rss_bytes = *peak_rss_bytes;
            }
        }
    }
    Ok(())
}

/// A trial's value for the searcher: its best metric over the epochs it ran.
fn observed(t: &Trial, metric: &str, maximize: bool) -> Option<f64> {
    if t.status == Some(TrialStatus::Failed) {
        return None;
    }
    let vals = t.epochs.values().filter_map(|m| m.get(metric)).copied().filter(|v| v.is_finite());
    if maximize {
        vals.reduce(f64::max)
    } else {
        vals.reduce(f64::min)
    }
}

fn worker(p: &StudyParams, job: &Job, shared: &(Mutex<State>, Condvar), max_epochs: usize) {
    let (lock, cv) = shared;
    loop {
        // The next trial, and its point: proposed from exactly the trials
        // 0..=i-parallel (waited for) with those between as pending, so it
        // does not depend on which trial finished first.
        let (i, point) = {
            let mut st = lock.lock().expect("study lock");
            if st.next >= st.trials.len() || st.broken.is_some() || job.stop.load(Ordering::SeqCst) {
                return;
            }
            let i = st.next;
            st.next += 1;
            if st.trials[i].ended() {
                continue;
            }
            let lag = i.saturating_sub(p.parallel - 1);
            loop {
                let ready = st.trials[..lag].iter().all(Trial::ended) && st.trials[..i].iter().all(|t| t.point.is_some());
                if ready || st.broken.is_some() || job.stop.load(Ordering::SeqCst) {
                    break;
                }
                st = cv.wait(st).expect("study lock");
            }
            if st.broken.is_some() || job.stop.load(Ordering::SeqCst) {
                return;
            }
            let point = match st.trials[i].point.clone() {
                Some(pt) => pt,
                None => {
                    let done: Vec<Observation> = st.trials[..lag]
                        .iter()
                        .map(|t| Observation {
                            point: t.point.clone().expect("started"),
                            value: observed(t, &p.metric, p.mode == Mode::Max),
                        })
                        .collect();
                    let pending: Vec<Point> = st.trials[lag..i].iter().map(|t| t.point.clone().expect("proposed")).collect();
                    let Some(pt) = p.searcher().propose(i, &done, &pending) else {
                        // A grid shorter than the budget: nothing more to try.
                        st.trials[i].status = Some(TrialStatus::Failed);
                        st.trials[i].error = Some("no point left to propose".into());
                        cv.notify_all();
                        continue;
                    };
                    if let Err(e) = st.journal.append(&JournalEvent::Start { trial: i, point: pt.clone() }) {
                        st.broken = Some(e);
                        cv.notify_all();
                        return;
                    }
                    st.trials[i].point = Some(pt.clone());
                    pt
                }
            };
            cv.notify_all();
            (i, point)
        };
        let (status, error, ran) = run_trial(p, job, shared, i, &point, max_epochs);
        if matches!(status, TrialStatus::Stopped | TrialStatus::Failed) && !job.stop.load(Ordering::SeqCst) {
            // Ended for good: its checkpoint would only take space until the study is stored.
            if let Err(e) = job.trials.discard(&trial_label(i)) {
                (job.progress)(Progress::Note(format!("trial {i}: {e}")));
            }
        }
        let mut st = lock.lock().expect("study lock");
        let (key, cached, peak_rss_bytes) = ran.map_or((None, false, None), |r| (Some(r.key), r.cached, r.peak_rss_bytes));
        let end = JournalEvent::End { trial: i, status, error: error.clone(), key, cached, peak_rss_bytes };
        if let Err(e) = st.journal.append(&end) {
            st.broken = Some(e);
        }
        st.trials[i].status = Some(status);
        st.trials[i].error = error;
        st.trials[i].peak_rss_bytes = peak_rss_bytes;
        report(p, job, &st);
        cv.notify_all();
    }
}

/// How a trial ended, why if it failed, and its run when it finished.
type Ended = (TrialStatus, Option<String>, Option<TrialRun>);

/// Trains one trial; its epochs go to the journal as they come.
fn run_trial(p: &StudyParams, job: &Job, shared: &(Mutex<State>, Condvar), i: usize, point: &Point, max_epochs: usize) -> Ended {
    let (lock, _) = shared;
    let params = match p.trial_params(point, max_epochs).and_then(|c| serde_json::to_value(c).map_err(|e| e.to_string())) {
        Ok(v) => v,
        Err(e) => return (TrialStatus::Failed, Some(e), None),
    };
    let stop = AtomicBool::new(false);
    let on_epoch = |pr: Progress| {
        let (done, metrics) = match pr {
            Progress::Steps { done, metrics, .. } => (done, metrics),
            Progress::Note(m) => return (job.progress)(Progress::Note(format!("trial {i}: {m}"))),
            Progress::Bytes { .. } | Progress::Batches { .. } => return,
        };
        let epoch = done as usize;
        let mut st = lock.lock().expect("study lock");
        if !st.trials[i].epochs.contains_key(&epoch) {
            if let Err(e) = st.journal.append(&JournalEvent::Epoch { trial: i, epoch, metrics: metrics.clone() }) {
                st.broken = Some(e);
                stop.store(true, Ordering::SeqCst);
                return;
            }
            let value = metrics.get(&p.metric).copied();
            // A stop at the last epoch is the trial's own end: let it write its outputs.
            let stop_now = match value {
                Some(v) => st.scheduler.report(i, epoch, v) == Decision::Stop && epoch < max_epochs,
                None => false,
            };
            st.trials[i].epochs.insert(epoch, metrics);
            if stop_now {
                stop.store(true, Ordering::SeqCst);
            }
        } else if st.trials[i].stop_at == Some(epoch) {
            stop.store(true, Ordering::SeqCst);
        }
        if job.stop.load(Ordering::SeqCst) {
            stop.store(true, Ordering::SeqCst);
        }
        report(p, job, &st);
    };
    match job.trials.run(&trial_label(i), "train", &params, &on_epoch, &stop) {
        Ok(run) => match epochs_of(&run.outputs) {
            Ok(rows) => {
                let mut st = lock.lock().expect("study lock");
                // A cached trial reported nothing: its epochs come from its history.
                for (epoch, metrics) in rows {
                    if !st.trials[i].epochs.contains_key(&epoch) {
                        if let Err(e) = st.journal.append(&JournalEvent::Epoch { trial: i, epoch, metrics: metrics.clone() }) {
                            st.broken = Some(e);
                        }
                        st.trials[i].epochs.insert(epoch, metrics);
                    }
                }
                (TrialStatus::Completed, None, Some(run))
            }
            Err(e) => (TrialStatus::Failed, Some(e), None),
        },
        Err(StageError::Stopped(_)) if !job.stop.load(Ordering::SeqCst) => (TrialStatus::Stopped, None, None),
        Err(e) => (TrialStatus::Failed, Some(format!("{}: {e}", e.label())), None),
    }
}

/// Trial `i`'s label for the runner (its run records name it `<study>/trial-<i>`).
fn trial_label(i: usize) -> String {
    format!("trial-{i}")
}

/// Every epoch's figures from a finished `train` run's history and timings.
fn epochs_of(outputs: &BTreeMap<String, PathBuf>) -> Result<Vec<(usize, Figures)>, String> {
    let path = |n: &str| outputs.get(n).ok_or_else(|| format!("the trial has no `{n}` output"));
    let history = read_history(path("history")?).map_err(|e| e.to_string())?;
    let timings: TrainTimings = read_json(path("timings")?).map_err(|e| e.to_string())?;
    Ok(history
        .iter()
        .map(|r| {
            let secs = timings.epochs.iter().find(|t| t.epoch == r.epoch).map_or(f64::NAN, |t| t.seconds);
            let m = BTreeMap::from([
                ("loss".to_string(), r.train_loss),
                ("accuracy".to_string(), r.dev_accuracy),
                ("dev_loss".to_string(), r.dev_loss),
                ("test_accuracy".to_string(), r.test_accuracy),
                ("time_this_iter_s".to_string(), secs),
            ]);
            (r.epoch, m)
        })
        .collect())
}

/// The study's line: trials ended of all, running, stopped, failed, best so far.
fn report(p: &StudyParams, job: &Job, st: &State) {
    let count = |s: TrialStatus| st.trials.iter().filter(|t| t.status == Some(s)).count();
    let ended = st.trials.iter().filter(|t| t.ended()).count();
    let running = st.trials.iter().filter(|t| t.point.is_some() && !t.ended()).count();
    let maximize = p.mode == Mode::Max;
    let best = st.trials.iter().enumerate().filter_map(|(i, t)| observed(t, &p.metric, maximize).map(|v| (i, v))).reduce(|a, b| {
        if better(b.1, a.1, maximize) {
            b
        } else {
            a
        }
    });
    let best = match best {
        Some((i, v)) if p.metric.contains("accuracy") => format!("best {:.1}% (trial {i})", 100.0 * v),
        Some((i, v)) => format!("best {v:.4} (trial {i})"),
        None => "best -".into(),
    };
    let message = format!(
        "{best}  running {running}  completed {}  stopped {}  failed {}",
        count(TrialStatus::Completed),
        count(TrialStatus::Stopped),
        count(TrialStatus::Failed)
    );
    (job.progress)(Progress::Steps { unit: "trial", done: ended as u64, total: st.trials.len() as u64, message, metrics: BTreeMap::new() });
}

fn better(a: f64, b: f64, maximize: bool) -> bool {
    if maximize {
        a > b
    } else {
        a < b
    }
}

/// A trial at one epoch budget: the epochs it has within it, how it stands,
/// and the epoch selected on the metric within them (ties: the later epoch,
/// as `train` selects).
pub(crate) struct AtBudget<'a> {
    pub rows: Vec<(usize, &'a Figures)>,
    pub status: TrialStatus,
    pub selected: Option<(usize, f64)>,
}

pub(crate) fn at_budget<'a>(
    epochs: &'a BTreeMap<usize, Figures>,
    status: TrialStatus,
    budget: usize,
    metric: &str,
    maximize: bool,
) -> AtBudget<'a> {
    let rows: Vec<(usize, &Figures)> = epochs.range(..=budget).map(|(e, m)| (*e, m)).collect();
    let reached = rows.last().map_or(0, |(e, _)| *e);
    let status = match status {
        // Stopped after the budget: this budget's run was complete.
        TrialStatus::Stopped if reached >= budget => TrialStatus::Completed,
        s => s,
    };
    let mut selected: Option<(usize, f64)> = None;
    for (e, m) in &rows {
        if let Some(&v) = m.get(metric).filter(|v| v.is_finite()) {
            if selected.is_none_or(|(_, b)| v == b || better(v, b, maximize)) {
                selected = Some((*e, v));
            }
        }
    }
    AtBudget { rows, status, selected }
}

fn write_outputs(p: &StudyParams, job: &Job, trials: &[Trial]) -> Result<(), StageError> {
    let maximize = p.mode == Mode::Max;
    let budgets = p.budgets();
    let searched_epochs = p.space.0.contains_key("epochs");
    let mut rows = Vec::new();
    let mut best: Option<StudyBest> = None;
    for (i, t) in trials.iter().enumerate() {
        let (Some(point), Some(status)) = (&t.point, t.status) else { continue };
        for &b in &budgets {
            let mut config = point.clone();
            if searched_epochs {
                config.insert("epochs".into(), Value::from(b));
            }
            let at = at_budget(&t.epochs, status, b, &p.metric, maximize);
            let row = |e: usize, m: Option<&Figures>| {
                let f = |k: &str| m.and_then(|m| m.get(k)).copied().unwrap_or(f64::NAN);
                TrialRow {
                    trial_id: i as u32,
                    config: config.clone(),
                    training_iteration: e as u32,
                    loss: f("loss"),
                    accuracy: f("accuracy"),
                    dev_loss: f("dev_loss"),
                    test_accuracy: f("test_accuracy"),
                    time_this_iter_s: f("time_this_iter_s"),
                    status: at.status,
                    error: t.error.clone(),
                    peak_rss_mb: t.peak_rss_bytes.map_or(f64::NAN, |b| b as f64 / (1u64 << 20) as f64),
                }
            };
            if at.rows.is_empty() {
                rows.push(row(0, None));
            }
            rows.extend(at.rows.iter().map(|(e, m)| row(*e, Some(m))));
            let Some((epoch, value)) = at.selected else { continue };
            if at.status != TrialStatus::Completed {
                continue;
            }
            if best.as_ref().is_none_or(|b| better(value, b.value, maximize)) {
                let params = p
                    .trial_params(point, b)
                    .and_then(|c| serde_json::to_value(c).map_err(|e| e.to_string()))
                    .map_err(StageError::Failed)?;
                let test_accuracy = t.epochs[&epoch].get("test_accuracy").copied().unwrap_or(f64::NAN);
                best = Some(StudyBest {
                    metric: p.metric.clone(),
                    mode: if maximize { "max" } else { "min" }.into(),
                    value,
                    trial_id: i as u32,
                    config,
                    epoch,
                    test_accuracy,
                    params,
                    completed: 0,
                    stopped: 0,
                    failed: 0,
                });
            }
        }
    }
    let Some(mut best) = best else {
        let first = trials.iter().find_map(|t| t.error.clone()).unwrap_or_else(|| "no trial completed".into());
        return Err(StageError::Failed(format!("no trial of the study completed (first error: {first})")));
    };
    let count = |s: TrialStatus| trials.iter().filter(|t| t.status == Some(s)).count();
    (best.completed, best.stopped, best.failed) = (count(TrialStatus::Completed), count(TrialStatus::Stopped), count(TrialStatus::Failed));
    let out = |n: &str| job.outputs.get(n).ok_or_else(|| StageError::Failed(format!("no output `{n}`")));
    write_trials(out("trials")?, &rows)?;
    write_json(out("best")?, &best)?;
    Ok(())
}
