//! `train`, `evaluate` (run in the `kimcnn-torch` worker) and `aggregate`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use kimcnn_pipeline::{Job, StageError, StageKind};
use kimcnn_report::RunResult;
use serde_json::Value;

use super::fixed_outputs;
use crate::job::{WorkerJob, PROGRESS};
use crate::ui;

/// The worker binary beside this one.
pub fn worker() -> Result<std::path::PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find kimcnn's own path: {e}"))?;
    let w = exe.with_file_name("kimcnn-torch");
    if w.is_file() {
        Ok(w)
    } else {
        Err(format!("{}: the torch worker is missing (build it: `make build`)", w.display()))
    }
}

/// A worker is killed when the thread that started it (and waits for it)
/// dies, so a killed `kimcnn run` leaves no training running behind it.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid and _exit are async-signal-safe, all that runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The runner died before the prctl: no signal will come.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}

/// Runs one stage in the worker: the job as JSON in scratch, epoch progress
/// from its stdout to the display, its one-line error as ours.
fn run_in_worker(kind: &str, job: &Job) -> Result<(), StageError> {
    let device = std::env::var("KIMCNN_DEVICE").ok().or_else(|| job.params.get("device").and_then(Value::as_str).map(String::from)).unwrap_or_else(|| "auto".into());
    let wj = WorkerJob {
        stage: job.stage.to_string(),
        params: job.params.clone(),
        inputs: job.inputs.clone(),
        outputs: job.outputs.clone(),
        threads: job.threads,
        device,
    };
    let path = job.scratch.join("job.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&wj)?)?;
    let mut cmd = Command::new(worker()?);
    cmd.arg(kind).arg(&path).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<String>>());
    let bar = ui::epoch_bar(job.stage, job.params.get("epochs").and_then(Value::as_u64).unwrap_or(25));
    for line in BufReader::new(child.stdout.take().expect("piped")).lines().map_while(Result::ok) {
        if let Some(p) = line.strip_prefix(PROGRESS) {
            if let Ok(e) = serde_json::from_str::<Value>(p) {
                ui::epoch_progress(&bar, &e);
            }
        }
    }
    let status = child.wait()?;
    bar.finish_and_clear();
    let err_lines = err_reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let last = err_lines.iter().rev().find(|l| !l.trim().is_empty()).cloned().unwrap_or_else(|| format!("the torch worker exited with {status}"));
    Err(last.trim_start_matches("error: ").to_string().into())
}

/// `train`: tokens + vocab + embeddings (+ tokenizer summary) -> model, history, summary.
pub struct Train;

impl StageKind for Train {
    /// 2: Adadelta updates a fine-tuned embedding row by row (same maths, other rounding).
    fn version(&self) -> u32 {
        2
    }

    fn outputs(&self, params: &Value, declared: &[String]) -> Result<Vec<String>, String> {
        kimcnn_cnn_config::train_params(params).map_err(|e| e.to_string())?;
        fixed_outputs("train", &["model", "history", "summary"], declared)
    }

    fn check_inputs(&self, _: &Value, inputs: &[&str]) -> Result<(), String> {
        for need in ["tokens", "vocab", "embeddings"] {
            if !inputs.contains(&need) {
                return Err(format!("a `train` stage needs inputs tokens, vocab and embeddings (and optionally tokenizer); `{need}` is missing"));
            }
        }
        Ok(())
    }

    fn run(&self, job: &Job) -> Result<(), StageError> {
        run_in_worker("train", job)
    }
}

/// `evaluate`: model + tokens + vocab -> metrics, predictions (on the test split or fold).
pub struct Evaluate;

impl StageKind for Evaluate {
    fn version(&self) -> u32 {
        1
    }

    fn outputs(&self, params: &Value, declared: &[String]) -> Result<Vec<String>, String> {
        super::Params::new(params, &["device"])?;
        fixed_outputs("evaluate", &["metrics", "predictions"], declared)
    }

    fn check_inputs(&self, _: &Value, inputs: &[&str]) -> Result<(), String> {
        let mut i = inputs.to_vec();
        i.sort();
        if i != ["model", "tokens", "vocab"] {
            return Err("an `evaluate` stage takes inputs model, tokens and vocab".into());
        }
        Ok(())
    }

    fn run(&self, job: &Job) -> Result<(), StageError> {
        run_in_worker("evaluate", job)
    }
}

/// `aggregate`: every `metrics.*` input -> results (parquet), table (Markdown), plot (SVG).
pub struct Aggregate;

impl StageKind for Aggregate {
    fn version(&self) -> u32 {
        2
    }

    fn outputs(&self, params: &Value, declared: &[String]) -> Result<Vec<String>, String> {
        super::Params::new(params, &[])?;
        fixed_outputs("aggregate", &["results", "table", "plot"], declared)
    }

    fn check_inputs(&self, _: &Value, inputs: &[&str]) -> Result<(), String> {
        if inputs.is_empty() || inputs.iter().any(|i| !i.starts_with("metrics")) {
            return Err("an `aggregate` stage takes `metrics` inputs, e.g. `metrics: evaluate.*.metrics`".into());
        }
        Ok(())
    }

    fn run(&self, job: &Job) -> Result<(), StageError> {
        let mut rows = Vec::new();
        for (name, path) in &job.inputs {
            let v: Value = serde_json::from_slice(&std::fs::read(path)?)?;
            rows.push(RunResult::from_metrics(name, &v)?);
        }
        kimcnn_report::write_results(&job.outputs["results"], &rows)?;
        std::fs::write(&job.outputs["table"], kimcnn_report::kim_table(&rows))?;
        kimcnn_report::plot(&job.outputs["plot"], &rows)?;
        Ok(())
    }
}
