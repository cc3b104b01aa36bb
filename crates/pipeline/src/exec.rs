//! Executing one stage run: the [`JobSpec`] the runner hands an
//! [`Executor`], and the [`LocalExecutor`] that runs it on this machine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use kimcnn_stage::{Env, Job, Progress, Registry, Resources, RunInfo, StageError};
use kimcnn_store::{ObjectId, RunRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One stage run, as any machine could execute it: the kind, its normalised
/// params, and its inputs by content hash. An executor on another machine
/// fetches the inputs by hash and returns the outputs by hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The stage's name (for messages; the key does not depend on it).
    pub stage: String,
    pub kind: String,
    pub kind_version: u32,
    /// The cache key the outputs are recorded under.
    pub key: ObjectId,
    pub params: Value,
    /// Where the kind computes, for kinds with a device.
    pub device: Option<String>,
    pub resources: Resources,
    pub inputs: BTreeMap<String, ObjectId>,
    /// The names of the outputs it must write.
    pub outputs: Vec<String>,
    /// Where it keeps what a rerun after a kill needs (a study's journal, a
    /// training run's checkpoint), removed once its outputs are committed.
    /// A local path: an executor on another machine keeps its own.
    #[serde(skip)]
    pub state: PathBuf,
    /// `run --force`: computed afresh, never taken from an earlier run of
    /// its key that an executor may still know of (a finished cluster job).
    #[serde(default)]
    pub forced: bool,
}

/// What an executor returns: every output, committed to the local store.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    pub outputs: BTreeMap<String, ObjectId>,
    pub info: RunInfo,
    /// Time the stage itself ran.
    pub seconds: f64,
}

impl Executed {
    /// The run record of `job` having computed this, finished now.
    pub fn record(&self, job: &JobSpec) -> RunRecord {
        RunRecord {
            key: job.key.clone(),
            kind: job.kind.clone(),
            kind_version: job.kind_version,
            stage: job.stage.clone(),
            params: job.params.clone(),
            inputs: job.inputs.clone(),
            outputs: self.outputs.clone(),
            finished: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            seconds: self.seconds,
            device: self.info.device.clone(),
            ran_with: self.info.ran_with.clone(),
            peak_rss_bytes: self.info.peak_rss_bytes,
        }
    }
}

/// Runs jobs. The runner has already taken the key's lock, checked the
/// cache and verified the inputs; it writes the run record afterwards.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Computes `job`. On success every one of `job.outputs` is an object in
    /// the runner's store. `stop` set: end it early if the kind can
    /// ([`StageError::Stopped`]).
    fn execute(&self, job: &JobSpec, progress: &(dyn Fn(Progress) + Sync), stop: &AtomicBool) -> Result<Executed, StageError>;
}

/// Runs each job here, in a scratch directory of the store: the kind reads
/// its inputs where the store keeps them and writes its outputs to scratch,
/// whence they are committed (hashed, fsynced, renamed in).
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    pub registry: Registry,
    pub env: Env,
}

impl Executor for LocalExecutor {
    fn execute(&self, job: &JobSpec, progress: &(dyn Fn(Progress) + Sync), stop: &AtomicBool) -> Result<Executed, StageError> {
        self.execute_with_trials(job, progress, stop, self)
    }
}

impl LocalExecutor {
    /// Runs `job` here; the stages it runs (a study's trials) go through
    /// `trials` (another executor: a cluster's, so a study waiting here
    /// spreads its trials over the nodes).
    pub fn execute_with_trials(
        &self,
        job: &JobSpec,
        progress: &(dyn Fn(Progress) + Sync),
        stop: &AtomicBool,
        trials: &dyn Executor,
    ) -> Result<Executed, StageError> {
        let store = &self.env.store;
        let kind = self.registry.get(&job.kind).ok_or_else(|| StageError::Failed(format!("unknown stage kind `{}`", job.kind)))?;
        if kind.version() != job.kind_version {
            return Err(StageError::Failed(format!(
                "kind `{}` is version {} here, the job wants {}",
                job.kind,
                kind.version(),
                job.kind_version
            )));
        }
        // Leftovers of a run of this key that was killed.
        store.clear_scratch(job.key.as_str())?;
        let scratch = store.scratch(job.key.as_str())?;
        let out_dir = scratch.path().join("out");
        let work_dir = scratch.path().join("work");
        for d in [&out_dir, &work_dir] {
            std::fs::create_dir_all(d).map_err(|e| StageError::Failed(format!("{}: {e}", d.display())))?;
        }
        let state = &job.state;
        let trials = crate::trials::RunnerTrials {
            registry: &self.registry,
            env: &self.env,
            executor: trials,
            stage: &job.stage,
            inputs: &job.inputs,
            device: job.device.as_deref(),
            cpus: job.resources.cpus,
            state,
        };
        let run = Job {
            stage: &job.stage,
            inputs: job.inputs.iter().map(|(n, id)| (n.clone(), store.object_path(id))).collect(),
            outputs: job.outputs.iter().map(|o| (o.clone(), out_dir.join(o))).collect(),
            scratch: &work_dir,
            resources: job.resources,
            device: job.device.as_deref(),
            env: &self.env,
            progress,
            stop,
            state,
            trials: &trials,
        };
        let t0 = Instant::now();
        let info = kind.run(&job.params, &run)?;
        let seconds = t0.elapsed().as_secs_f64();
        let mut outputs = BTreeMap::new();
        for (name, path) in &run.outputs {
            if !path.is_file() {
                return Err(StageError::Failed(format!("did not write its output `{name}`")));
            }
            outputs.insert(name.clone(), store.commit_file(path)?);
        }
        // Its outputs are in: what it kept for a rerun is no longer needed.
        if state.exists() {
            std::fs::remove_dir_all(state).map_err(|e| StageError::Failed(format!("{}: {e}", state.display())))?;
        }
        Ok(Executed { outputs, info, seconds })
    }
}
