//! Running stages on a Ray cluster: the coordinator's [`RayExecutor`] (an
//! [`Executor`] of the runner) and what runs on the node ([`run_on_node`]).
//!
//! Each stage run is one Ray job. The coordinator puts the job's inputs on
//! the remote (by hash; what is there already is not sent), ships kimcnn's
//! two binaries once per version as a content-named `runtime_env` package,
//! and submits `kimcnn ray-job` with the [`JobSpec`] under a submission id
//! derived from the cache key: a coordinator killed and started again
//! submits the same id, which Ray refuses as existing, and attaches to the
//! job instead of running it twice. On the node the job pulls its inputs
//! (verified), runs the stage with the node's own local executor, pushes the
//! outputs and the run record (the record after its objects), and prints one
//! result line. The coordinator then pulls the record and its outputs.
//! Sources run here (a local file is on this machine only), and so do
//! studies: a study only waits, and its trials, run through this executor,
//! are jobs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use kimcnn_pipeline::{Executed, Executor, JobSpec, LocalExecutor};
use kimcnn_remote::{Quiet, Remote, RemoteConfig};
use kimcnn_stage::{Progress, RunInfo, StageError};
use kimcnn_store::Store;
use serde::{Deserialize, Serialize};

use crate::{JobInfo, JobStatus, RayClient, RayError, Relay, SubmitRequest, Submitted};

/// The `ray:` section of pipeline.yaml or `.kimcnn/config`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RayConfig {
    /// The dashboard's address, `http://head:8265`.
    pub address: String,
    /// The remote that carries inputs and outputs [default: `default_remote`, or the only one].
    #[serde(default)]
    pub remote: Option<String>,
    /// Seconds a job may wait for a node with its resources before the stage fails.
    #[serde(default = "default_pending")]
    pub pending_timeout: u64,
    /// Resubmissions of a job whose node was lost (no result from it).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The `kimcnn` every node has installed (`kimcnn-torch` beside it), to
    /// run instead of shipping this machine's binaries to the cluster. It
    /// must be this version of kimcnn.
    #[serde(default)]
    pub kimcnn: Option<String>,
}

fn default_pending() -> u64 {
    600
}

fn default_retries() -> u32 {
    2
}

/// What the node sends back, as the last line of its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum NodeResult {
    /// The outputs and the run record are on the remote.
    Done { seconds: f64 },
    /// The stage failed: its error, as the runner would have reported it here.
    Failed { label: String, message: String },
}

/// The marker of the result line in a job's logs.
pub const RESULT: &str = "KIMCNN-RESULT ";

/// What the node needs: the job and where the remote is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeJob {
    pub job: JobSpec,
    pub remote: RemoteConfig,
}

impl NodeJob {
    /// The job as one shell-safe word (base64url of its JSON).
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("jobs serialise"))
    }

    pub fn decode(word: &str) -> Result<NodeJob, String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(word.trim()).map_err(|e| format!("not a job: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("not a job: {e}"))
    }
}

/// Runs a [`NodeJob`] on this node: inputs from the remote into `store`,
/// the stage through `local`, outputs and record back to the remote. The
/// returned result is what the node prints for the coordinator.
pub fn run_on_node(nj: NodeJob, store: &Store, local: &dyn Executor, base: &Path, progress: &(dyn Fn(Progress) + Sync)) -> NodeResult {
    let failed = |e: StageError| NodeResult::Failed { label: e.label().into(), message: message(&e) };
    let mut job = nj.job;
    job.state = store.state_dir(&job.stage, job.key.as_str());
    let remote = match Remote::open("remote", &nj.remote, base) {
        Ok(r) => r,
        Err(e) => return failed(StageError::Failed(format!("on the node: {e}"))),
    };
    let inputs: Vec<_> = job.inputs.values().cloned().collect();
    if let Err(e) = remote.pull_objects(store, &inputs, &Quiet) {
        return failed(StageError::Failed(format!("on the node, fetching the inputs: {e}")));
    }
    let x = match local.execute(&job, progress, &AtomicBool::new(false)) {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let rec = x.record(&job);
    if let Err(e) =
        store.write_run(&rec).map_err(|e| e.to_string()).and_then(|()| remote.push(store, &[rec], &Quiet).map_err(|e| e.to_string()))
    {
        return failed(StageError::Failed(format!("on the node, sending the outputs: {e}")));
    }
    NodeResult::Done { seconds: x.seconds }
}

/// `s` quoted for a POSIX shell.
fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn message(e: &StageError) -> String {
    match e {
        StageError::BadInput(m) | StageError::Crashed(m) | StageError::Stopped(m) | StageError::Failed(m) => m.clone(),
        StageError::Diverged { epoch, batch, loss } => format!("loss {loss} at epoch {epoch}, batch {batch}"),
    }
}

/// The binaries a job runs, shipped as one package per version.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `kimcnn` and `kimcnn-torch`, side by side.
    pub files: Vec<PathBuf>,
}

/// What a [`RayExecutor`] is made of.
#[derive(Debug)]
pub struct RaySetup {
    /// The kinds that run here, not as jobs, and the executor that runs
    /// them: a source (a local file is on this machine only), a study (it
    /// only waits: its trials are jobs).
    pub here: (Vec<String>, LocalExecutor),
    pub client: RayClient,
    /// The remote that carries inputs and outputs, and its configuration as the nodes open it.
    pub remote: Arc<Remote>,
    pub remote_config: RemoteConfig,
    pub store: Store,
    pub binaries: Binaries,
    pub config: RayConfig,
    /// Relay every line the nodes print (`-v`), not only their progress.
    pub tail: bool,
}

/// Runs each stage as a Ray job, but the kinds in `here`.
#[derive(Debug)]
pub struct RayExecutor {
    setup: RaySetup,
    package: Mutex<Option<String>>,
    /// The last listing of the cluster's jobs, and when it was made.
    jobs: Mutex<Option<(Instant, Listing)>>,
}

/// The cluster's jobs by submission id.
type Listing = Arc<BTreeMap<String, JobInfo>>;

/// The largest request body Ray's dashboard takes (a package upload).
const MAX_PACKAGE: usize = 100 << 20;
/// How often the coordinator lists the cluster's jobs (one request for all the jobs it waits on),
/// once a job has waited a while: from FIRST_TICK after its submission, doubling up to TICK.
const TICK: Duration = Duration::from_millis(1000);
const FIRST_TICK: Duration = Duration::from_millis(100);
/// How often a running job's logs are read for its progress (a request per running job).
const LOG_TICK: Duration = Duration::from_secs(3);
/// How long the dashboard may be unreachable while jobs run before the stages fail.
const PATIENCE: Duration = Duration::from_secs(60);

impl RayExecutor {
    /// Checks the dashboard and the token (one request) before anything is submitted.
    pub fn new(setup: RaySetup) -> Result<RayExecutor, RayError> {
        setup.client.versions()?;
        Ok(RayExecutor { setup, package: Mutex::new(None), jobs: Mutex::new(None) })
    }

    /// The package holding the binaries, uploaded unless the cluster has it: named by their BLAKE3.
    fn package(&self) -> Result<String, StageError> {
        let mut p = self.package.lock().expect("package lock");
        if let Some(name) = p.as_ref() {
            return Ok(name.clone());
        }
        let failed = |m: String| StageError::Failed(format!("shipping kimcnn to the cluster: {m}"));
        let mut h = blake3::Hasher::new();
        for f in &self.setup.binaries.files {
            h.update(&std::fs::read(f).map_err(|e| failed(format!("{}: {e}", f.display())))?);
        }
        let name = format!("_ray_pkg_kimcnn_{}.zip", &h.finalize().to_hex()[..32]);
        if !self.setup.client.has_package(&name).map_err(|e| failed(e.to_string()))? {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let opts =
                zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).unix_permissions(0o755);
            for f in &self.setup.binaries.files {
                let bytes = std::fs::read(f).map_err(|e| failed(format!("{}: {e}", f.display())))?;
                let file_name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                zip.start_file(file_name, opts).map_err(|e| failed(e.to_string()))?;
                zip.write_all(&bytes).map_err(|e| failed(e.to_string()))?;
            }
            let bytes = zip.finish().map_err(|e| failed(e.to_string()))?.into_inner();
            if bytes.len() > MAX_PACKAGE {
                return Err(failed(format!(
                    "the binaries zip to {} MB, over the 100 MB a Ray dashboard accepts: use release builds (`make build`)",
                    bytes.len() >> 20
                )));
            }
            self.setup.client.upload_package(&name, &bytes).map_err(|e| failed(e.to_string()))?;
        }
        *p = Some(name.clone());
        Ok(name)
    }

    /// The job `id` as of the last listing, listing again when that is `tick`
    /// old or older than `since` (its submission).
    fn status(&self, id: &str, since: Instant, tick: Duration) -> Result<Option<JobInfo>, RayError> {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        let fresh = jobs.as_ref().is_some_and(|(at, _)| *at > since && at.elapsed() < tick);
        if !fresh {
            // Dated when asked, not when answered: a job submitted while the request was on
            // its way may be missing from the answer, which must not count as after it.
            let asked = Instant::now();
            let list = self.setup.client.jobs()?;
            let by_id = list.into_iter().filter_map(|j| j.submission_id.clone().map(|id| (id, j))).collect();
            *jobs = Some((asked, Arc::new(by_id)));
        }
        Ok(jobs.as_ref().and_then(|(_, m)| m.get(id).cloned()))
    }

    /// The job `id` for `job`: submitted now, or (the same key's job, from a
    /// coordinator killed meanwhile) attached to.
    fn submit(&self, job: &JobSpec, id: &str) -> Result<Submitted, StageError> {
        let nj = NodeJob { job: job.clone(), remote: self.setup.remote_config.clone() };
        let (entrypoint, runtime_env) = match &self.setup.config.kimcnn {
            Some(installed) => (format!("{} ray-job {}", shell_word(installed), nj.encode()), None),
            None => (
                format!("chmod +x kimcnn kimcnn-torch && ./kimcnn ray-job {}", nj.encode()),
                Some(serde_json::json!({ "working_dir": format!("gcs://{}", self.package()?) })),
            ),
        };
        let request = SubmitRequest {
            entrypoint,
            submission_id: id.into(),
            entrypoint_num_cpus: job.resources.cpus as f64,
            entrypoint_num_gpus: job.resources.gpus as f64,
            runtime_env,
            metadata: BTreeMap::from([("kimcnn_stage".to_string(), job.stage.clone())]),
        };
        self.setup.client.submit(&request).map_err(|e| StageError::Failed(e.to_string()))
    }

    /// Waits for the job `id` to end, relaying its progress while it runs.
    fn wait(
        &self,
        job: &JobSpec,
        id: &str,
        relay: &mut Relay,
        progress: &(dyn Fn(Progress) + Sync),
        stop: &AtomicBool,
    ) -> Result<JobInfo, StageError> {
        let failed = |e: RayError| StageError::Failed(e.to_string());
        let t0 = Instant::now();
        let mut read_logs = t0;
        let mut tick = FIRST_TICK;
        let mut unreachable_since: Option<Instant> = None;
        let mut running = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                let _ = self.setup.client.stop(id);
                return Err(StageError::Stopped(format!("Ray job {id} asked to stop")));
            }
            match self.status(id, t0, tick) {
                Ok(Some(info)) if info.status.is_terminal() => return Ok(info),
                Ok(Some(info))
                    if info.status == JobStatus::Pending && t0.elapsed() > Duration::from_secs(self.setup.config.pending_timeout) =>
                {
                    let _ = self.setup.client.stop(id);
                    return Err(StageError::Failed(format!(
                        "no node of the cluster took Ray job {id} in {} s: it asks for {} CPU(s) and {} GPU(s) \
                         (Ray: {}); add such a node, lower the stage's threads, or raise ray.pending_timeout",
                        self.setup.config.pending_timeout,
                        job.resources.cpus,
                        job.resources.gpus,
                        info.message.unwrap_or_default()
                    )));
                }
                Ok(Some(info)) => {
                    if info.status == JobStatus::Running && !running {
                        running = true;
                        progress(Progress::Note(format!("Ray job {id} is running")));
                    }
                    if running && read_logs.elapsed() >= LOG_TICK {
                        read_logs = Instant::now();
                        // Progress only: a failed read is retried next time.
                        if let Ok(logs) = self.setup.client.logs(id) {
                            relay.feed(&logs, progress);
                        }
                    }
                    unreachable_since = None;
                }
                Ok(None) => return Err(StageError::Failed(format!("Ray no longer lists job {id}"))),
                Err(e @ RayError::Unreachable { .. }) => {
                    let since = *unreachable_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > PATIENCE {
                        return Err(failed(e));
                    }
                }
                Err(e) => return Err(failed(e)),
            }
            std::thread::sleep(tick);
            tick = (tick * 2).min(TICK);
        }
    }

    /// What an ended job's node said: its result line, if it printed one.
    fn result(&self, id: &str) -> Result<(Option<NodeResult>, String), StageError> {
        let logs = self.setup.client.logs(id).map_err(|e| StageError::Failed(e.to_string()))?;
        match logs.lines().rev().find_map(|l| l.strip_prefix(RESULT)) {
            Some(line) => serde_json::from_str(line)
                .map(|r| (Some(r), logs.clone()))
                .map_err(|e| StageError::Failed(format!("Ray job {id}: an unreadable result line ({e})"))),
            None => Ok((None, logs)),
        }
    }

    /// The outputs a job left on the remote, brought into the store.
    fn outputs(&self, job: &JobSpec, id: &str) -> Result<Executed, StageError> {
        let failed = |m: String| StageError::Failed(m);
        let pulled =
            self.setup.remote.pull(&self.setup.store, std::slice::from_ref(&job.key), &Quiet).map_err(|e| failed(e.to_string()))?;
        let rec = pulled
            .records
            .get(&job.key)
            .ok_or_else(|| failed(format!("Ray job {id} succeeded, but the remote has no record of its outputs")))?;
        let info = RunInfo { device: rec.device.clone(), ran_with: rec.ran_with.clone(), peak_rss_bytes: rec.peak_rss_bytes };
        Ok(Executed { outputs: rec.outputs.clone(), info, seconds: rec.seconds })
    }
}

impl Executor for RayExecutor {
    /// Job ids are `kimcnn-<key>`, then `-2`, `-3` ...: a job of the key that
    /// is still pending or running is attached to (its coordinator was
    /// killed); one that succeeded is taken as it is, unless the run is
    /// forced; one that ended without a result (its node was lost) is
    /// submitted again under the next id, `retries` times.
    fn execute(&self, job: &JobSpec, progress: &(dyn Fn(Progress) + Sync), stop: &AtomicBool) -> Result<Executed, StageError> {
        if self.setup.here.0.contains(&job.kind) {
            return self.setup.here.1.execute_with_trials(job, progress, stop, self);
        }
        let failed = |m: String| StageError::Failed(m);
        let inputs: Vec<_> = job.inputs.values().cloned().collect();
        self.setup.remote.push_objects(&self.setup.store, &inputs, &Quiet).map_err(|e| failed(format!("sending the inputs: {e}")))?;
        let base = format!("kimcnn-{}", &job.key.as_str()[..32]);
        let mut submitted = 0;
        for n in 1.. {
            let id = if n == 1 { base.clone() } else { format!("{base}-{n}") };
            let known = match self.setup.client.job(&id) {
                Ok(info) => Some(info),
                Err(RayError::NoSuchJob(_)) => None,
                Err(e) => return Err(failed(e.to_string())),
            };
            match &known {
                None => {
                    let how = match self.submit(job, &id)? {
                        Submitted::New => "submitted",
                        Submitted::Existing => "attached to the running",
                    };
                    submitted += 1;
                    progress(Progress::Note(format!("{how} Ray job {id}")));
                }
                Some(info) if !info.status.is_terminal() => progress(Progress::Note(format!("attached to the running Ray job {id}"))),
                Some(info) if info.status == JobStatus::Succeeded && !job.forced => {
                    progress(Progress::Note(format!("taking the outputs of the finished Ray job {id}")));
                }
                Some(_) => continue,
            }
            let mut relay = Relay::new(self.setup.tail);
            let info = self.wait(job, &id, &mut relay, progress, stop)?;
            let (result, logs) = self.result(&id)?;
            relay.feed(&logs, progress);
            match result {
                Some(NodeResult::Done { .. }) => return self.outputs(job, &id),
                Some(NodeResult::Failed { label, message }) => {
                    return Err(match label.as_str() {
                        "bad input" => StageError::BadInput(message),
                        "crashed" => StageError::Crashed(message),
                        "stopped" => StageError::Stopped(message),
                        _ => StageError::Failed(message),
                    })
                }
                // No result: the job died before it could say (its node was lost, it was killed).
                None if submitted <= self.setup.config.retries as usize => {
                    progress(Progress::Note(format!("Ray job {id} ended {:?} without a result; submitting it again", info.status)));
                }
                None => {
                    let tail: Vec<&str> = logs.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
                    return Err(failed(format!(
                        "Ray job {id} ended {:?} without a result ({}); its last lines: {}",
                        info.status,
                        info.message.unwrap_or_default(),
                        tail.join(" | ")
                    )));
                }
            }
        }
        unreachable!("ids are tried until one ends the loop")
    }
}
