use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, OnceLock};
use std::time::Instant;

use kimcnn_stage::{Env, Progress, Registry, Resources, StageError};
use kimcnn_store::{hash_bytes, LockEntry, Lockfile, ObjectId, RunRecord, Store};
use serde_json::{json, Value};

use crate::exec::{Executor, JobSpec, LocalExecutor};
use crate::{NotYet, PipelineError, Plan, Result, Stage};

/// Restores a run computed elsewhere (a teammate's remote) into the store.
pub trait Fetch: Send + Sync + std::fmt::Debug {
    /// `Ok(true)` when the record for `key` and all its objects are now in
    /// the store; `Ok(false)` when the other side does not have it.
    fn fetch(&self, store: &Store, key: &ObjectId) -> std::result::Result<bool, String>;
}

/// How a `kimcnn run` goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stage names, group names or globs; empty: the whole pipeline.
    pub targets: Vec<String>,
    /// Also run everything downstream of the targets.
    pub downstream: bool,
    /// Recompute the targets even when cached.
    pub force: bool,
    /// Say what would run, run nothing.
    pub dry_run: bool,
    /// Thread budget: stages run in parallel while their threads fit.
    pub jobs: usize,
    /// Where pipeline.lock lives.
    pub lock_path: PathBuf,
    /// Before computing a stage, look its key up here (`run --pull`).
    pub pull: Option<std::sync::Arc<dyn Fetch>>,
    /// Where stages are computed (default: here, a [`LocalExecutor`]).
    pub executor: Option<std::sync::Arc<dyn Executor>>,
}

/// What happened to one stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Computed in this run.
    Ran {
        seconds: f64,
    },
    /// Its key had a run record with all outputs present.
    Cached,
    /// Another process computed it while this one waited for the key lock.
    CachedByOther,
    /// Restored from the remote (`run --pull`).
    Pulled,
    /// Dry run: would be computed.
    WouldRun,
    Failed(StageError),
    /// Not run because something it reads failed.
    Skipped,
}

/// Progress events, for a display. The runner prints nothing itself.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    Planned {
        total: usize,
    },
    Started {
        stage: &'a str,
        threads: usize,
    },
    /// A running stage's progress (bytes fetched, epochs trained).
    Progress {
        stage: &'a str,
        progress: &'a Progress,
    },
    Finished {
        stage: &'a str,
        outcome: &'a Outcome,
    },
}

#[derive(Debug, Default)]
pub struct RunSummary {
    pub outcomes: Vec<(String, Outcome)>,
    /// Corrupt objects found (and quarantined) on the way.
    pub quarantined: Vec<(String, ObjectId)>,
}

impl RunSummary {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| f(o)).count()
    }
    pub fn ran(&self) -> Vec<&str> {
        self.outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Ran { .. })).map(|(s, _)| s.as_str()).collect()
    }
}

/// The cache key of a stage run: BLAKE3 over its kind, kind version,
/// canonical params (JSON with sorted keys), input hashes by name, and the
/// kind's fingerprint of outside inputs. Stage names are not part of it.
pub fn cache_key(kind: &str, version: u32, params: &Value, inputs: &BTreeMap<String, ObjectId>, fingerprint: &Option<String>) -> ObjectId {
    let canon = json!({
        "kind": kind,
        "version": version,
        "params": params,
        "inputs": inputs,
        "fingerprint": fingerprint,
    });
    hash_bytes(&serde_json::to_vec(&canon).expect("json serialises"))
}

enum State {
    Waiting,
    Queued(ObjectId, BTreeMap<String, ObjectId>, Option<String>),
    Running,
    Done(Outcome, Option<Done>),
}

#[derive(Clone)]
pub(crate) struct Done {
    pub(crate) key: ObjectId,
    inputs: BTreeMap<String, ObjectId>,
    pub(crate) outputs: BTreeMap<String, ObjectId>,
    fingerprint: Option<String>,
}

pub(crate) enum WorkError {
    Failed(StageError),
    Corrupt(Vec<(String, ObjectId)>),
}

/// Runs the selected part of the plan. Stages whose key has a run record are
/// restored, the rest computed, independent ones in parallel within
/// `opts.jobs` threads. Updates `pipeline.lock` and the `out/` links for every
/// stage that finished. A corrupt input object is quarantined and the run
/// retried once, so its producer is recomputed.
pub fn run(plan: &Plan, registry: &Registry, env: &Env, opts: &RunOptions, on: &(dyn Fn(Event) + Sync)) -> Result<RunSummary> {
    let summary = run_in(plan, registry, env, opts, on)?;
    let failed: Vec<&(String, Outcome)> = summary.outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Failed(_))).collect();
    match failed.as_slice() {
        [] => Ok(summary),
        [(stage, Outcome::Failed(e))] => Err(PipelineError::StageFailed { stage: stage.clone(), error: e.clone() }),
        [(stage, Outcome::Failed(e)), ..] => Err(PipelineError::ManyFailed(failed.len(), stage.clone(), e.clone())),
        _ => unreachable!("filtered to failures"),
    }
}

/// [`run`], with failed stages as outcomes rather than an error.
pub(crate) fn run_in(plan: &Plan, registry: &Registry, env: &Env, opts: &RunOptions, on: &(dyn Fn(Event) + Sync)) -> Result<RunSummary> {
    let mut summary = run_once(plan, registry, env, opts, on)?;
    if !summary.quarantined.is_empty() && !opts.dry_run {
        let quarantined = std::mem::take(&mut summary.quarantined);
        summary = run_once(plan, registry, env, opts, on)?;
        summary.quarantined.extend(quarantined);
    }
    Ok(summary)
}

fn run_once(plan: &Plan, registry: &Registry, env: &Env, opts: &RunOptions, on: &(dyn Fn(Event) + Sync)) -> Result<RunSummary> {
    let (selected, named) = plan.select(&opts.targets, opts.downstream)?;
    // A lock that cannot be read fails the run before anything is computed.
    Lockfile::read(&opts.lock_path)?;
    let store = &env.store;
    let n = plan.stages.len();
    let jobs = opts.jobs.max(1);
    let mut state: Vec<State> = (0..n).map(|_| State::Waiting).collect();
    // Stages whose params come from other stages' outputs, once filled in.
    let completed: Vec<OnceLock<Stage>> = (0..n).map(|_| OnceLock::new()).collect();
    let stage_at = |i: usize| completed[i].get().unwrap_or(&plan.stages[i]);
    let mut summary = RunSummary::default();
    on(Event::Planned { total: selected.iter().filter(|&&s| s).count() });

    let local;
    let executor: &dyn Executor = match &opts.executor {
        Some(e) => e.as_ref(),
        None => {
            local = LocalExecutor { registry: registry.clone(), env: env.clone() };
            &local
        }
    };
    let (tx, rx) = mpsc::channel::<(usize, std::result::Result<Done, WorkError>, f64, Via)>();
    let mut free = jobs;
    let mut running = 0usize;

    std::thread::scope(|scope| -> Result<()> {
        loop {
            // Settle every stage whose inputs are known: cached or queued.
            let mut progressed = true;
            while progressed {
                progressed = false;
                for i in 0..n {
                    if !selected[i] || !matches!(state[i], State::Waiting) {
                        continue;
                    }
                    let mut s = &plan.stages[i];
                    let mut inputs = BTreeMap::new();
                    let mut blocked = false;
                    let mut upstream_failed = false;
                    for (name, (j, out)) in &s.inputs {
                        match &state[*j] {
                            State::Done(_, Some(d)) => {
                                inputs.insert(name.clone(), d.outputs[out].clone());
                            }
                            State::Done(_, None) => upstream_failed = true,
                            _ => blocked = true,
                        }
                    }
                    if upstream_failed {
                        state[i] = State::Done(Outcome::Skipped, None);
                        progressed = true;
                        continue;
                    }
                    if blocked {
                        continue;
                    }
                    if s.later.is_some() {
                        let output = |j: usize, out: &str| match &state[j] {
                            State::Done(o, Some(d)) if !matches!(o, Outcome::WouldRun) => Some(store.object_path(&d.outputs[out])),
                            _ => None,
                        };
                        match plan.complete(i, registry, &output) {
                            Ok(done) => s = completed[i].get_or_init(|| done),
                            Err(NotYet::Waiting(j)) => match &state[j] {
                                State::Done(Outcome::WouldRun, _) => {
                                    // Dry run: its values are not known yet, nor is its key.
                                    let o = Outcome::WouldRun;
                                    on(Event::Finished { stage: &s.name, outcome: &o });
                                    let d = Done {
                                        key: hash_bytes(s.name.as_bytes()),
                                        inputs,
                                        outputs: placeholder_outputs(s),
                                        fingerprint: None,
                                    };
                                    state[i] = State::Done(o, Some(d));
                                    progressed = true;
                                    continue;
                                }
                                State::Done(..) => {
                                    state[i] = State::Done(Outcome::Skipped, None);
                                    progressed = true;
                                    continue;
                                }
                                _ => continue,
                            },
                            Err(NotYet::Refused(m)) => {
                                let o = Outcome::Failed(StageError::BadInput(m));
                                on(Event::Finished { stage: &s.name, outcome: &o });
                                state[i] = State::Done(o, None);
                                progressed = true;
                                continue;
                            }
                        }
                    }
                    progressed = true;
                    let kind = registry.get(&s.kind).expect("the plan checked its kinds");
                    let fingerprint = match kind.fingerprint(&s.params, env) {
                        Ok(f) => f,
                        Err(e) => {
                            let o = Outcome::Failed(e);
                            on(Event::Finished { stage: &s.name, outcome: &o });
                            state[i] = State::Done(o, None);
                            continue;
                        }
                    };
                    let key = cache_key(&s.kind, s.version, &s.params, &inputs, &fingerprint);
                    let forced = opts.force && named[i];
                    if !forced {
                        if let Some(rec) = cached(store, &key, s)? {
                            let o = Outcome::Cached;
                            on(Event::Finished { stage: &s.name, outcome: &o });
                            link_outputs(store, &s.name, &rec.outputs)?;
                            state[i] = State::Done(o, Some(Done { key, inputs, outputs: rec.outputs, fingerprint }));
                            continue;
                        }
                    }
                    if opts.dry_run {
                        let o = Outcome::WouldRun;
                        on(Event::Finished { stage: &s.name, outcome: &o });
                        // Downstream keys are unknown until this runs: report them as would-run too.
                        state[i] = State::Done(o, Some(Done { key, inputs, outputs: placeholder_outputs(s), fingerprint }));
                        continue;
                    }
                    state[i] = State::Queued(key, inputs, fingerprint);
                }
            }

            // Start queued stages while their threads fit the budget.
            for i in 0..n {
                if !matches!(state[i], State::Queued(..)) {
                    continue;
                }
                let need = plan.stages[i].resources.cpus.min(jobs);
                if need > free {
                    continue;
                }
                let State::Queued(key, inputs, fingerprint) = std::mem::replace(&mut state[i], State::Running) else { unreachable!() };
                free -= need;
                running += 1;
                let s = stage_at(i);
                on(Event::Started { stage: &s.name, threads: need });
                let tx = tx.clone();
                let forced = opts.force && named[i];
                let pull = if forced { None } else { opts.pull.as_deref() };
                scope.spawn(move || {
                    let t0 = Instant::now();
                    let progress = |p: Progress| on(Event::Progress { stage: &s.name, progress: &p });
                    let resources = Resources { cpus: need, ..s.resources };
                    let never = AtomicBool::new(false);
                    let state = store.state_dir(&s.name, key.as_str());
                    let (res, via) = work(s, store, executor, key, inputs, fingerprint, resources, forced, pull, state, &progress, &never);
                    let _ = tx.send((i, res, t0.elapsed().as_secs_f64(), via));
                });
            }

            if running == 0 {
                break;
            }
            let (i, res, seconds, via) = rx.recv().expect("workers report");
            running -= 1;
            free += plan.stages[i].resources.cpus.min(jobs);
            let s = &plan.stages[i];
            let (o, done) = match res {
                Ok(d) => match via {
                    Via::Other => (Outcome::CachedByOther, Some(d)),
                    Via::Pulled => (Outcome::Pulled, Some(d)),
                    Via::Computed => (Outcome::Ran { seconds }, Some(d)),
                },
                Err(WorkError::Failed(m)) => (Outcome::Failed(m), None),
                Err(WorkError::Corrupt(objs)) => {
                    let names: Vec<String> = objs.iter().map(|(n, id)| format!("input `{n}` ({})", id.short())).collect();
                    summary.quarantined.extend(objs);
                    (Outcome::Failed(StageError::Failed(format!("corrupt object(s) quarantined: {}", names.join(", ")))), None)
                }
            };
            if let Some(d) = &done {
                // Linked and locked as soon as it is done: a run cut short keeps what it finished.
                link_outputs(store, &s.name, &d.outputs)?;
                update_lock(plan, &stage_at, store, &opts.lock_path, &[(i, d.clone())])?;
            }
            on(Event::Finished { stage: &s.name, outcome: &o });
            state[i] = State::Done(o, done);
        }
        Ok(())
    })?;

    // Record what finished: links and pipeline.lock.
    let mut finished: Vec<(usize, Done)> = Vec::new();
    for (i, st) in state.into_iter().enumerate() {
        if let State::Done(o, d) = st {
            if let (false, Some(d)) = (matches!(o, Outcome::WouldRun), d) {
                finished.push((i, d));
            }
            summary.outcomes.push((plan.stages[i].name.clone(), o));
        }
    }
    if !opts.dry_run {
        update_lock(plan, &stage_at, store, &opts.lock_path, &finished)?;
    }
    Ok(summary)
}

fn link_outputs(store: &Store, stage: &str, outputs: &BTreeMap<String, ObjectId>) -> Result<()> {
    for (out, id) in outputs {
        store.link(stage, out, id)?;
    }
    Ok(())
}

fn placeholder_outputs(s: &Stage) -> BTreeMap<String, ObjectId> {
    s.outputs.iter().map(|o| (o.clone(), hash_bytes(format!("unknown:{}:{o}", s.name).as_bytes()))).collect()
}

/// The run record for `key` if it exists and all its outputs are in the store.
fn cached(store: &Store, key: &ObjectId, s: &Stage) -> Result<Option<RunRecord>> {
    let Some(rec) = store.read_run(key)? else { return Ok(None) };
    let complete = s.outputs.iter().all(|o| rec.outputs.get(o).is_some_and(|id| store.has_object(id)));
    Ok(complete.then_some(rec))
}

/// Where a finished stage's outputs came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Via {
    Computed,
    /// Another process computed it while this one waited for the key lock.
    Other,
    Pulled,
}

/// One stage under its key lock: prepare (cache check, pull, input
/// verification), execute, commit (the run record). `resources`: the
/// stage's, its cpus capped by the budget (`--jobs`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn work(
    s: &Stage,
    store: &Store,
    executor: &dyn Executor,
    key: ObjectId,
    inputs: BTreeMap<String, ObjectId>,
    fingerprint: Option<String>,
    resources: Resources,
    forced: bool,
    pull: Option<&dyn Fetch>,
    state: PathBuf,
    progress: &(dyn Fn(Progress) + Sync),
    stop: &AtomicBool,
) -> (std::result::Result<Done, WorkError>, Via) {
    let fail = |e: StageError| (Err(WorkError::Failed(e)), Via::Computed);
    let _lock = match store.lock_key(key.as_str()) {
        Ok(l) => l,
        Err(e) => return fail(e.into()),
    };
    match prepare(s, store, &key, &inputs, forced, pull) {
        Ok(Prepared::Ready) => {}
        Ok(Prepared::Restored(outputs, via)) => {
            // Computed elsewhere meanwhile: what a killed run here kept is of no use.
            let _ = std::fs::remove_dir_all(&state);
            return (Ok(Done { key, inputs, outputs, fingerprint }), via);
        }
        Err(e) => return (Err(e), Via::Computed),
    }
    // Forced: computed afresh, not from what a killed run left.
    if forced && state.exists() {
        if let Err(e) = std::fs::remove_dir_all(&state) {
            return fail(StageError::Failed(format!("{}: {e}", state.display())));
        }
    }
    let job = JobSpec {
        stage: s.name.clone(),
        kind: s.kind.clone(),
        kind_version: s.version,
        key: key.clone(),
        params: s.params.clone(),
        device: s.device.clone(),
        resources,
        inputs: inputs.clone(),
        outputs: s.outputs.clone(),
        state,
        forced,
    };
    let executed = match executor.execute(&job, progress, stop) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    match commit(s, store, &job, executed) {
        Ok(outputs) => (Ok(Done { key, inputs, outputs, fingerprint }), Via::Computed),
        Err(e) => fail(e),
    }
}

enum Prepared {
    /// Compute it.
    Ready,
    /// Another process computed it meanwhile, or the remote had it: its outputs.
    Restored(BTreeMap<String, ObjectId>, Via),
}

/// Under the key's lock: a record another process wrote meanwhile, or one
/// the remote has, restores the stage; otherwise its inputs are re-hashed
/// (a corrupt one is quarantined, so its producer is recomputed).
fn prepare(
    s: &Stage,
    store: &Store,
    key: &ObjectId,
    inputs: &BTreeMap<String, ObjectId>,
    forced: bool,
    pull: Option<&dyn Fetch>,
) -> std::result::Result<Prepared, WorkError> {
    let failed = |e: PipelineError| WorkError::Failed(StageError::Failed(e.to_string()));
    if !forced {
        if let Some(rec) = cached(store, key, s).map_err(failed)? {
            return Ok(Prepared::Restored(rec.outputs, Via::Other));
        }
    }
    if let Some(f) = pull {
        let found = f.fetch(store, key).map_err(|e| WorkError::Failed(StageError::Failed(e)))?;
        if found {
            if let Some(rec) = cached(store, key, s).map_err(failed)? {
                return Ok(Prepared::Restored(rec.outputs, Via::Pulled));
            }
        }
    }
    let mut corrupt = Vec::new();
    for (name, id) in inputs {
        match store.check_object(id) {
            Ok(true) => {}
            Ok(false) => {
                if store.quarantine(id).is_ok() {
                    corrupt.push((name.clone(), id.clone()));
                }
            }
            Err(e) => return Err(WorkError::Failed(StageError::Failed(format!("input `{name}`: {e}")))),
        }
    }
    if !corrupt.is_empty() {
        return Err(WorkError::Corrupt(corrupt));
    }
    Ok(Prepared::Ready)
}

/// Records an executed job: its run record, written last, once every output is in the store.
fn commit(
    s: &Stage,
    store: &Store,
    job: &JobSpec,
    x: crate::exec::Executed,
) -> std::result::Result<BTreeMap<String, ObjectId>, StageError> {
    for o in &s.outputs {
        match x.outputs.get(o) {
            Some(id) if store.has_object(id) => {}
            Some(id) => return Err(StageError::Failed(format!("output `{o}` ({}) is not in the store", id.short()))),
            None => return Err(StageError::Failed(format!("did not write its output `{o}`"))),
        }
    }
    let rec = x.record(job);
    store.write_run(&rec)?;
    Ok(x.outputs)
}

/// Read-modify-write of pipeline.lock under a store-wide lock: entries of
/// the stages that finished are replaced, entries of stages no longer in the
/// pipeline dropped, the rest kept.
fn update_lock<'p>(
    plan: &'p Plan,
    stage_at: &dyn Fn(usize) -> &'p Stage,
    store: &Store,
    path: &std::path::Path,
    finished: &[(usize, Done)],
) -> Result<()> {
    let _guard = store.lock_key("pipeline-lock")?;
    let mut lock = Lockfile::read(path)?;
    lock.schema = 1;
    lock.stages.retain(|name, _| plan.get(name).is_some());
    for (i, d) in finished {
        let s = stage_at(*i);
        lock.stages.insert(
            s.name.clone(),
            LockEntry {
                kind: s.kind.clone(),
                kind_version: s.version,
                key: d.key.clone(),
                params: s.params.clone(),
                fingerprint: d.fingerprint.clone(),
                inputs: d.inputs.clone(),
                outputs: d.outputs.clone(),
            },
        );
    }
    lock.write(path)?;
    Ok(())
}

#[cfg(test)]
mod tests;
