//! What the `kimcnn` CLI hands the `kimcnn-torch` worker for one stage run:
//! written as JSON into the stage's scratch directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerJob {
    pub stage: String,
    pub params: serde_json::Value,
    pub inputs: BTreeMap<String, PathBuf>,
    pub outputs: BTreeMap<String, PathBuf>,
    pub threads: usize,
    /// `auto`, `cpu`, `cuda`, `cuda:N` (from the stage's `device` param, or
    /// `kimcnn run --device`).
    pub device: String,
}

/// Progress lines the worker prints on stdout, one JSON object a line,
/// prefixed so other output cannot be mistaken for them.
pub const PROGRESS: &str = "kimcnn-progress ";
