//! Kim's CNN as the runner sees it: the `train` and `evaluate` stage kinds.
//! Their params ([`kimcnn_schema::Config`], [`kimcnn_schema::EvaluateParams`])
//! are checked here, without libtorch, so `kimcnn run` starts in
//! milliseconds and a typo fails before anything runs. A run happens in the
//! `kimcnn-torch` worker beside the `kimcnn` binary, one process per stage
//! run: it gets a [`WorkerJob`] file, prints an epoch row per line, and
//! writes a [`WorkerResult`]; a worker that dies without one crashed.
//!
//! Adding a torch kind: its params type and a [`Kind`] here (its `run` is
//! [`run_in_worker`]), its code in `kimcnn-train`, an arm in the worker's
//! dispatch (`crates/worker`), and one registration line in the CLI.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use kimcnn_schema::worker::{BatchProgress, EpochProgress, WorkerJob, WorkerResult, BATCH, NOTE, PROGRESS};
use kimcnn_schema::{wants_gpu, Config, EvaluateParams, NumericsRecord};
use kimcnn_stage::{Job, Kind, Progress, Resources, RunInfo, StageError};
use serde::Serialize;

/// `train`: tokens + vocab + embeddings (+ the tokenize summary, whose
/// tokenizer the model keeps) -> model, history, summary, timings.
pub struct TrainKind;

impl Kind for TrainKind {
    const NAME: &'static str = "train";
    /// 3: the model's metadata records the device and threads; CNN-rand
    /// defaults to Kim's U[-0.25, 0.25] (a default: it changed keys by itself).
    /// 4: times moved out of history and summary into `timings`; the
    /// metadata and summary record the numerics.
    /// 5: history has each epoch's test accuracy (the models are unchanged).
    /// 6: dropout's generator is reseeded from (seed, epoch) at each epoch,
    /// so a run goes on from an epoch checkpoint (the models changed).
    /// 7: Kim's padding is computed at each batch's width (its longest
    /// sentence, its pads and one window of pads alone), not the data
    /// set's: the same model, other float rounding (the bytes changed).
    /// 8: a batch's sentences are packed into one row, pads between them,
    /// each pooled over its own windows (and one of pads alone where Kim's
    /// layout has one): the same model again, 1.4x faster on MR.
    const VERSION: u32 = 8;
    const OUTPUTS: &'static [&'static str] = &["model", "history", "summary", "timings"];
    const MEASURED: &'static [&'static str] = &["timings"];
    /// Per epoch, named as the origin project's Ray Tune trials named them:
    /// `loss` (training), `accuracy` (dev: what a study selects on),
    /// `dev_loss`, `test_accuracy` (recorded, never selected on),
    /// `time_this_iter_s`.
    const METRICS: &'static [&'static str] = &["loss", "accuracy", "dev_loss", "test_accuracy", "time_this_iter_s"];
    type Params = Config;

    fn check(&self, p: &mut Config) -> Result<(), String> {
        p.check()
    }

    fn check_inputs(&self, _: &Config, inputs: &[&str]) -> Result<(), String> {
        for need in ["tokens", "vocab", "embeddings"] {
            if !inputs.contains(&need) {
                return Err(format!(
                    "a `train` stage needs inputs tokens, vocab and embeddings (and optionally tokenizer); `{need}` is missing"
                ));
            }
        }
        if let Some(other) = inputs.iter().find(|i| !["tokens", "vocab", "embeddings", "tokenizer"].contains(i)) {
            return Err(format!("a `train` stage takes inputs tokens, vocab, embeddings and tokenizer, not `{other}`"));
        }
        Ok(())
    }

    fn resources(&self, p: &Config) -> Resources {
        on_device(&p.device)
    }

    fn device<'p>(&self, p: &'p mut Config) -> Option<&'p mut String> {
        Some(&mut p.device)
    }

    /// Each finished epoch is checkpointed in the job's state directory
    /// (kept until the outputs are committed), so a killed run goes on
    /// from its last epoch.
    fn run(&self, p: &Config, job: &Job) -> Result<RunInfo, StageError> {
        std::fs::create_dir_all(job.state).map_err(|e| StageError::Failed(format!("{}: {e}", job.state.display())))?;
        run_in_worker("train", p, job, p.epochs as u64, Some(job.state.join("checkpoint.safetensors")))
    }
}

/// `evaluate`: model + tokens + vocab -> metrics, predictions (on the test
/// split or fold).
pub struct EvaluateKind;

impl Kind for EvaluateKind {
    const NAME: &'static str = "evaluate";
    /// 2: metrics have no fold (null) where the data set has given splits.
    /// (3 would be due for a changed output; `numerics` is a param, so it
    /// changed every key by itself.)
    /// 3: batches computed at their own width (as train 7): the same
    /// predictions, other float rounding in the probabilities.
    /// 4: batches packed (as train 8).
    const VERSION: u32 = 4;
    const OUTPUTS: &'static [&'static str] = &["metrics", "predictions"];
    type Params = EvaluateParams;

    fn check(&self, p: &mut EvaluateParams) -> Result<(), String> {
        p.check()
    }

    fn check_inputs(&self, _: &EvaluateParams, inputs: &[&str]) -> Result<(), String> {
        let mut i = inputs.to_vec();
        i.sort();
        if i != ["model", "tokens", "vocab"] {
            return Err("an `evaluate` stage takes inputs model, tokens and vocab".into());
        }
        Ok(())
    }

    fn resources(&self, p: &EvaluateParams) -> Resources {
        on_device(&p.device)
    }

    fn device<'p>(&self, p: &'p mut EvaluateParams) -> Option<&'p mut String> {
        Some(&mut p.device)
    }

    fn run(&self, p: &EvaluateParams, job: &Job) -> Result<RunInfo, StageError> {
        run_in_worker("evaluate", p, job, 0, None)
    }
}

/// A torch run: a CPU thread, and a GPU where the device asks for one.
fn on_device(device: &str) -> Resources {
    Resources { cpus: 1, gpus: usize::from(wants_gpu(device)) }
}

/// The worker binary, `kimcnn-torch` beside the running executable (or
/// `$KIMCNN_TORCH`).
pub fn worker_path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("KIMCNN_TORCH") {
        return Ok(PathBuf::from(p));
    }
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
pub fn die_with_parent(cmd: &mut Command) {
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
pub fn die_with_parent(_: &mut Command) {}

/// Runs one stage in the worker: the job as JSON in scratch, epoch rows
/// from its stdout as progress, its result file as the outcome.
/// `epochs`: how many epoch rows to expect (0: none); `checkpoint`: where
/// training keeps its epoch checkpoint.
pub fn run_in_worker<P: Serialize>(
    kind: &str,
    params: &P,
    job: &Job,
    epochs: u64,
    checkpoint: Option<PathBuf>,
) -> Result<RunInfo, StageError> {
    let result = job.scratch.join("result.json");
    let wj = WorkerJob {
        stage: job.stage.to_string(),
        params,
        inputs: job.inputs.clone(),
        outputs: job.outputs.clone(),
        threads: job.resources.cpus,
        device: job.device.unwrap_or("auto").to_string(),
        result: result.clone(),
        checkpoint,
    };
    let path = job.scratch.join("job.json");
    kimcnn_schema::write_json(&path, &wj)?;
    // Only this run's worker may leave a result.
    match std::fs::remove_file(&result) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let mut cmd = Command::new(worker_path().map_err(StageError::Failed)?);
    cmd.arg(kind).arg(&path).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let mut child = spawn(&mut cmd).map_err(|e| StageError::Failed(format!("cannot start the torch worker: {e}")))?;
    let stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<String>>());
    let mut stopped_after = None;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines().map_while(Result::ok) {
        if let Some(note) = line.strip_prefix(NOTE) {
            (job.progress)(Progress::Note(note.to_string()));
            continue;
        }
        if let Some(Ok(b)) = line.strip_prefix(BATCH).map(serde_json::from_str::<BatchProgress>) {
            let (epoch, epochs, done, total) = (b.epoch as u64, b.epochs as u64, b.batch as u64, b.batches as u64);
            (job.progress)(Progress::Batches { epoch, epochs, done, total });
            continue;
        }
        let Some(row) = line.strip_prefix(PROGRESS) else { continue };
        let Ok(EpochProgress { row, timing }) = serde_json::from_str(row) else { continue };
        let message = format!("loss {:.4}  dev {:.1}%  {:.0} sent/s", row.train_loss, 100.0 * row.dev_accuracy, timing.sentences_per_s);
        let metrics = BTreeMap::from([
            ("loss".to_string(), row.train_loss),
            ("accuracy".to_string(), row.dev_accuracy),
            ("dev_loss".to_string(), row.dev_loss),
            ("test_accuracy".to_string(), row.test_accuracy),
            ("time_this_iter_s".to_string(), timing.seconds),
        ]);
        (job.progress)(Progress::Steps { unit: "epoch", done: row.epoch as u64, total: epochs, message, metrics });
        if job.stop.load(Ordering::SeqCst) {
            // Asked to stop (a study's early stopping): the worker has nothing to finish.
            let _ = child.kill();
            stopped_after = Some(row.epoch);
            break;
        }
    }
    let (status, peak_rss_bytes) = wait_measured(&mut child).map_err(|e| StageError::Failed(format!("the torch worker: {e}")))?;
    let err_lines = err_reader.join().unwrap_or_default();
    if let Some(epoch) = stopped_after {
        return Err(StageError::Stopped(format!("stopped after epoch {epoch}")));
    }
    // No result, or half of one (killed while writing it): it crashed.
    let Ok(outcome) = kimcnn_schema::read_json::<WorkerResult>(&result) else {
        return Err(StageError::Crashed(crash_message(&status, &err_lines)));
    };
    match outcome {
        WorkerResult::Done { device, numerics } => {
            Ok(RunInfo { device: Some(device), ran_with: numerics.map(ran_with).unwrap_or_default(), peak_rss_bytes: Some(peak_rss_bytes) })
        }
        WorkerResult::Diverged { epoch, batch, loss } => Err(StageError::Diverged { epoch, batch, loss }),
        WorkerResult::BadInput { message } => Err(StageError::BadInput(message)),
        WorkerResult::Failed { message } => Err(StageError::Failed(message)),
    }
}

/// Waits for the worker and measures its peak resident memory (wait4's
/// rusage: std's `wait` does not give it).
fn wait_measured(child: &mut std::process::Child) -> std::io::Result<(std::process::ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our child, not yet reaped; the pointers are to live locals.
        if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    // Linux reports ru_maxrss in KiB.
    Ok((std::process::ExitStatus::from_raw(status), usage.ru_maxrss.max(0) as u64 * 1024))
}

/// A run record's account of the numerics.
fn ran_with(n: NumericsRecord) -> BTreeMap<String, String> {
    BTreeMap::from([("numerics".into(), n.mode.to_string()), ("isa".into(), n.isa), ("torch".into(), n.torch), ("mkl".into(), n.mkl)])
}

/// How a worker that left no result ended, with its last words.
/// Starts `cmd`, again while its executable is busy (ETXTBSY: being written,
/// or held open for writing by a process forked meanwhile, as when a Ray
/// node unpacks the package of a second job into the directory of the first).
fn spawn(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            r => return r,
        }
    }
}

fn crash_message(status: &std::process::ExitStatus, stderr: &[String]) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (_, Some(sig)) => {
            format!("the torch worker was killed by signal {sig}{}", signal_name(sig).map(|n| format!(" ({n})")).unwrap_or_default())
        }
        (Some(code), _) => format!("the torch worker exited with status {code} without a result"),
        _ => format!("the torch worker ended ({status}) without a result"),
    };
    let last: Vec<&str> = stderr.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    match last.len() {
        0 => how,
        n => format!("{how}; its last output: {}", last[n.saturating_sub(3)..].join(" | ")),
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGKILL => "SIGKILL, out of memory?",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
