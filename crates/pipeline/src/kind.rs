use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kimcnn_store::Store;

/// A stage's failure, as the stage kind words it.
pub type StageError = Box<dyn std::error::Error + Send + Sync>;

/// What a running stage gets: its params, the paths of its inputs (objects
/// in the store, read-only) and the paths to write its outputs to (inside a
/// scratch directory of the store).
#[derive(Debug)]
pub struct Job<'a> {
    pub stage: &'a str,
    pub params: &'a serde_json::Value,
    pub inputs: BTreeMap<String, PathBuf>,
    pub outputs: BTreeMap<String, PathBuf>,
    pub scratch: &'a Path,
    pub threads: usize,
    pub env: &'a Env,
}

/// Where the pipeline lives: the project directory (relative paths in params
/// resolve against it) and its store.
#[derive(Debug, Clone)]
pub struct Env {
    pub project_dir: PathBuf,
    pub store: Store,
}

/// One kind of stage (`source`, `exec`, `tokenize`, `train`, ...).
///
/// Implementations adapt a stage crate's plain function to the runner; the
/// runner calls them with resolved params and paths and never looks inside.
pub trait StageKind: Send + Sync {
    /// Bumped whenever the kind's outputs for the same params and inputs
    /// change; it is part of every cache key.
    fn version(&self) -> u32;

    /// Checks the params and names the outputs a stage of this kind writes.
    /// `declared` is the stage's `outputs:` list from pipeline.yaml (kinds
    /// with fixed outputs refuse a non-empty one).
    fn outputs(&self, params: &serde_json::Value, declared: &[String]) -> Result<Vec<String>, String>;

    /// Checks the input names a stage wires to this kind.
    fn check_inputs(&self, _params: &serde_json::Value, _inputs: &[&str]) -> Result<(), String> {
        Ok(())
    }

    /// Threads a stage of this kind uses (the scheduler's budget unit).
    fn threads(&self, _params: &serde_json::Value) -> usize {
        1
    }

    /// The identity of anything outside the store the result depends on (a
    /// local file's content hash, say); folded into the cache key.
    fn fingerprint(&self, _params: &serde_json::Value, _env: &Env) -> Result<Option<String>, StageError> {
        Ok(None)
    }

    fn run(&self, job: &Job) -> Result<(), StageError>;
}

/// Stage kinds by the name pipeline.yaml's `uses:` gives them.
pub type Registry = BTreeMap<String, Arc<dyn StageKind>>;
