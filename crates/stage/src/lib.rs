//! The contract between the kimcnn runner and its stage kinds.
//!
//! A stage kind is a [`Kind`]: one serde params type with its defaults
//! (unknown params refused), its own checks, the outputs and resources a
//! run needs, and a run function over file paths. A stage crate implements
//! it beside its plain functions; the binary registers it in one line
//! ([`Registry::register`]); the runner sees only [`DynKind`], which speaks
//! JSON. Neither side knows the other: a kind knows nothing of the DAG,
//! caching or executors, the runner nothing of CNNs.
//!
//! Params are normalised once, when the plan is built: parsed into the
//! kind's type (defaults applied), checked ([`Kind::check`] may fill in
//! defaults that depend on other params), and serialised back. That
//! canonical JSON is what the cache key hashes, what `pipeline.lock`
//! records and what a job carries, so writing a default explicitly or
//! leaving it out is the same stage, and changing a default in code changes
//! exactly the keys of the stages that rely on it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use kimcnn_store::Store;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One kind of stage (`tokenize`, `train`, ...).
pub trait Kind: Send + Sync + 'static {
    /// The name pipeline.yaml's `uses:` gives it.
    const NAME: &'static str;
    /// Bumped when the kind's code writes other outputs for the same params
    /// and inputs. A changed default needs no bump: defaults are part of
    /// the normalised params, and so of the key.
    const VERSION: u32;
    /// The outputs every stage of this kind writes (empty for kinds whose
    /// stages declare theirs with `outputs:`, as `exec`).
    const OUTPUTS: &'static [&'static str];
    /// Outputs that hold measurements (wall-clock times), not results: they
    /// differ from run to run, so `kimcnn verify --recompute` does not
    /// compare them. Every other output is expected to have the same bytes
    /// for the same key.
    const MEASURED: &'static [&'static str] = &[];
    /// The figures a run reports with each step ([`Progress::Steps`]'s
    /// `metrics`): what a study may select or stop on.
    const METRICS: &'static [&'static str] = &[];

    /// The params as `with:` gives them: `#[serde(deny_unknown_fields)]`,
    /// defaults from `Default`. Every param is in the normalised form, so a
    /// param added to the type changes every key of the kind once (its
    /// default joins them); a `null` in `with:` means "not given".
    type Params: Serialize + DeserializeOwned + Send + Sync;

    /// Checks the params and fills in defaults that depend on other params
    /// (a tokenizer's `lower` on its `format`). Errors name the param.
    fn check(&self, _p: &mut Self::Params) -> Result<(), String> {
        Ok(())
    }

    /// The output names. Default: [`Kind::OUTPUTS`], and a stage may not
    /// declare others.
    fn outputs(&self, _p: &Self::Params, declared: &[String]) -> Result<Vec<String>, String> {
        if !declared.is_empty() {
            return Err(format!("a `{}` stage's outputs are fixed ({}); remove `outputs:`", Self::NAME, Self::OUTPUTS.join(", ")));
        }
        Ok(Self::OUTPUTS.iter().map(|s| s.to_string()).collect())
    }

    /// Checks the input names a stage wires to this kind.
    fn check_inputs(&self, _p: &Self::Params, _inputs: &[&str]) -> Result<(), String> {
        Ok(())
    }

    /// What a run needs from the machine (a stage's `threads:` overrides the cpus).
    fn resources(&self, _p: &Self::Params) -> Resources {
        Resources::default()
    }

    /// The device param of kinds that have one (`auto`, `cpu`, `cuda:N`):
    /// where a run computes, not what it computes, so it is never part of
    /// the key (the type skips it when serialising). `kimcnn run --device`
    /// sets it on every stage whose kind has one.
    fn device<'p>(&self, _p: &'p mut Self::Params) -> Option<&'p mut String> {
        None
    }

    /// The identity of anything outside the store the result depends on (a
    /// local file's content hash, say); folded into the cache key.
    fn fingerprint(&self, _p: &Self::Params, _env: &Env) -> Result<Option<String>, StageError> {
        Ok(None)
    }

    /// Reads the inputs, writes every output.
    fn run(&self, p: &Self::Params, job: &Job) -> Result<RunInfo, StageError>;
}

/// What a run of a stage needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU threads (the local scheduler's budget unit).
    pub cpus: usize,
    /// GPUs it asks for (0: none; a device of `auto` uses one where there is
    /// one). The local executor does not schedule on them: parallel stages
    /// on one machine share its GPU; an executor for a cluster asks for them.
    pub gpus: usize,
}

impl Default for Resources {
    fn default() -> Resources {
        Resources { cpus: 1, gpus: 0 }
    }
}

/// Where the pipeline lives: the project directory (relative paths in params
/// resolve against it) and its store.
#[derive(Debug, Clone)]
pub struct Env {
    pub project_dir: PathBuf,
    pub store: Store,
}

/// What a running stage gets: the paths of its inputs (read-only objects),
/// the paths to write its outputs to, a scratch directory, where to report
/// progress, and a flag that asks it to stop.
pub struct Job<'a> {
    pub stage: &'a str,
    pub inputs: BTreeMap<String, PathBuf>,
    pub outputs: BTreeMap<String, PathBuf>,
    pub scratch: &'a Path,
    pub resources: Resources,
    /// The device to compute on, for kinds that have one.
    pub device: Option<&'a str>,
    pub env: &'a Env,
    pub progress: &'a (dyn Fn(Progress) + Sync),
    /// Set when whoever started the run wants it to end early (a study
    /// stopping a trial): a kind that can, returns [`StageError::Stopped`]
    /// soon after.
    pub stop: &'a AtomicBool,
    /// A directory of this stage's run that survives an interrupted run of
    /// the same key (a study's journal, a training checkpoint), unlike
    /// `scratch`; removed once the run's outputs are committed, and before a
    /// forced run. Created by the kind when it needs it.
    pub state: &'a Path,
    /// Runs other stages on this stage's inputs, each cached under its own
    /// key (a study's trials).
    pub trials: &'a dyn Trials,
}

/// Runs stages for a kind made of other stages (a study's trials), through
/// the runner: each is a stage of its own kind, planned, keyed, cached and
/// recorded like any other, on the inputs of the stage that runs it.
pub trait Trials: Sync {
    /// Runs a `kind` stage with `params` (as `with:` gives them) on this
    /// stage's inputs; `label` names it in messages. `progress` sees its
    /// steps; setting `stop` ends it early ([`StageError::Stopped`]).
    fn run(
        &self,
        label: &str,
        kind: &str,
        params: &Value,
        progress: &(dyn Fn(Progress) + Sync),
        stop: &AtomicBool,
    ) -> Result<TrialRun, StageError>;

    /// Drops what runs labelled `label` kept for a rerun (a checkpoint):
    /// the caller will not run it again (a trial stopped early or failed).
    fn discard(&self, label: &str) -> Result<(), StageError>;
}

/// A finished trial run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRun {
    /// Its cache key.
    pub key: String,
    /// Found in the store (or computed meanwhile by another process), not computed.
    pub cached: bool,
    /// The peak resident memory of its worker, when it was computed (here or earlier).
    pub peak_rss_bytes: Option<u64>,
    /// Its outputs (read-only objects).
    pub outputs: BTreeMap<String, PathBuf>,
}

/// [`Trials`] for a run with none to offer (a job outside a runner).
pub struct NoTrials;

impl Trials for NoTrials {
    fn run(&self, label: &str, _: &str, _: &Value, _: &(dyn Fn(Progress) + Sync), _: &AtomicBool) -> Result<TrialRun, StageError> {
        Err(StageError::Failed(format!("{label}: this run cannot start other stages")))
    }

    fn discard(&self, _: &str) -> Result<(), StageError> {
        Ok(())
    }
}

/// What a finished run says about itself, for its run record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunInfo {
    /// The device it computed on (`cpu`, `cuda:0`), for kinds that have one.
    pub device: Option<String>,
    /// Anything else about how it computed, for the run record (a torch
    /// stage's numerics: mode, ISA level, library versions).
    pub ran_with: BTreeMap<String, String>,
    /// The peak resident memory of the process that computed it, where the
    /// kind runs one (a torch worker).
    pub peak_rss_bytes: Option<u64>,
}

/// A running stage's progress.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Bytes read or fetched.
    Bytes { done: u64, total: Option<u64> },
    /// Steps of a known number (`unit`: "epoch"), with a line of figures
    /// for people and the same figures by name (the kind's
    /// [`Kind::METRICS`]) for a study.
    Steps { unit: &'static str, done: u64, total: u64, message: String, metrics: BTreeMap<String, f64> },
    /// Batches `done` of `total` into epoch `epoch` of `epochs`: for a
    /// display only (a study counts the epochs' [`Progress::Steps`]).
    Batches { epoch: u64, epochs: u64, done: u64, total: u64 },
    /// Something the user should read (a study resumed from its journal, a
    /// truncated journal line ignored).
    Note(String),
}

/// How a stage run failed. The runner reports each differently (a study
/// scores a diverged trial; a crash may be retried).
#[derive(Debug, Clone, PartialEq)]
pub enum StageError {
    /// An input or param is unusable: a bad line, a vocabulary that does
    /// not match, a class unseen in training.
    BadInput(String),
    /// Training produced a non-finite loss.
    Diverged { epoch: usize, batch: usize, loss: String },
    /// The process computing it died without a result (a signal, an abort).
    Crashed(String),
    /// Ended early because [`Job::stop`] asked it to.
    Stopped(String),
    /// Anything else.
    Failed(String),
}

impl StageError {
    /// A one-word label for displays: `failed`, `bad input`, `diverged`, `crashed`.
    pub fn label(&self) -> &'static str {
        match self {
            StageError::BadInput(_) => "bad input",
            StageError::Diverged { .. } => "diverged",
            StageError::Crashed(_) => "crashed",
            StageError::Stopped(_) => "stopped",
            StageError::Failed(_) => "failed",
        }
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageError::BadInput(m) | StageError::Failed(m) | StageError::Crashed(m) | StageError::Stopped(m) => write!(f, "{m}"),
            StageError::Diverged { epoch, batch, loss } => write!(
                f,
                "epoch {epoch} batch {batch}: the loss is {loss}; stopped (try a smaller learning rate, or gradient clipping with `clip`)"
            ),
        }
    }
}

/// Any library error is a plain failure (`?` in a kind's `run`); the
/// kinds that know better say [`StageError::BadInput`] themselves.
impl<E: std::error::Error> From<E> for StageError {
    fn from(e: E) -> StageError {
        StageError::Failed(e.to_string())
    }
}

/// A stage's params after planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Canonical: defaults applied, keys sorted, the device left out.
    pub params: Value,
    pub outputs: Vec<String>,
    pub resources: Resources,
    pub device: Option<String>,
}

/// A [`Kind`] as the runner sees it: JSON in, checked JSON out.
pub trait DynKind: Send + Sync {
    fn name(&self) -> &'static str;
    fn version(&self) -> u32;
    /// [`Kind::MEASURED`].
    fn measured(&self) -> &'static [&'static str];
    /// [`Kind::METRICS`].
    fn metrics(&self) -> &'static [&'static str];
    /// Parses, checks and normalises a stage's raw params; `device`
    /// overrides the kind's device param where it has one.
    fn plan(&self, raw: &Value, declared_outputs: &[String], inputs: &[&str], device: Option<&str>) -> Result<Planned, String>;
    fn fingerprint(&self, params: &Value, env: &Env) -> Result<Option<String>, StageError>;
    fn run(&self, params: &Value, job: &Job) -> Result<RunInfo, StageError>;
}

/// Reads a kind's params from JSON; an error names the param.
pub fn parse_params<P: DeserializeOwned>(v: &Value) -> Result<P, String> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if let Some(rest) = inner.strip_prefix("unknown field") {
            format!("unknown param{rest}")
        } else if path == "." {
            inner
        } else if inner.starts_with("must ") {
            format!("param `{path}` {inner}")
        } else {
            format!("param `{path}`: {inner}")
        }
    })
}

fn typed<K: Kind>(kind: &K, raw: &Value, device: Option<&str>) -> Result<(K::Params, Option<String>), String> {
    let mut raw = if raw.is_null() { Value::Object(Default::default()) } else { raw.clone() };
    // `seed: ~` is a param not given: its default.
    if let Value::Object(m) = &mut raw {
        m.retain(|_, v| !v.is_null());
    }
    let mut p: K::Params = parse_params(&raw)?;
    let dev = match kind.device(&mut p) {
        Some(slot) => {
            if let Some(d) = device {
                *slot = d.to_string();
            }
            Some(slot.clone())
        }
        None => None,
    };
    kind.check(&mut p)?;
    Ok((p, dev))
}

impl<K: Kind> DynKind for K {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn version(&self) -> u32 {
        K::VERSION
    }

    fn measured(&self) -> &'static [&'static str] {
        K::MEASURED
    }

    fn metrics(&self) -> &'static [&'static str] {
        K::METRICS
    }

    fn plan(&self, raw: &Value, declared: &[String], inputs: &[&str], device: Option<&str>) -> Result<Planned, String> {
        let (p, device) = typed(self, raw, device)?;
        let outputs = self.outputs(&p, declared)?;
        self.check_inputs(&p, inputs)?;
        let params = serde_json::to_value(&p).map_err(|e| format!("cannot serialise the params: {e}"))?;
        // The canonical form is a fixed point: parsing it again gives itself.
        #[cfg(debug_assertions)]
        {
            let again = typed(self, &params, None).unwrap_or_else(|e| panic!("the canonical params of `{}` are refused: {e}", K::NAME));
            assert_eq!(
                serde_json::to_value(&again.0).ok().as_ref(),
                Some(&params),
                "the canonical params of `{}` are not a fixed point",
                K::NAME
            );
        }
        Ok(Planned { params, outputs, resources: self.resources(&p), device })
    }

    fn fingerprint(&self, params: &Value, env: &Env) -> Result<Option<String>, StageError> {
        let (p, _) = typed(self, params, None).map_err(StageError::Failed)?;
        Kind::fingerprint(self, &p, env)
    }

    fn run(&self, params: &Value, job: &Job) -> Result<RunInfo, StageError> {
        let (p, _) = typed(self, params, job.device).map_err(StageError::Failed)?;
        Kind::run(self, &p, job)
    }
}

/// Stage kinds by the name `uses:` gives them.
#[derive(Clone, Default)]
pub struct Registry(BTreeMap<&'static str, Arc<dyn DynKind>>);

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers a kind under its [`Kind::NAME`].
    pub fn register<K: Kind>(&mut self, kind: K) -> &mut Registry {
        self.0.insert(K::NAME, Arc::new(kind));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn DynKind>> {
        self.0.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests;
