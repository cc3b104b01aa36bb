//! The protocol between the `kimcnn` CLI and its `kimcnn-torch` worker, one
//! process per stage run: the CLI writes a [`WorkerJob`] as JSON, the worker
//! prints a [`PROGRESS`] line per epoch (and [`BATCH`] lines within one) on
//! stdout and writes a
//! [`WorkerResult`] before it exits. A worker that exits without a result
//! crashed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{EpochRow, EpochTiming, NumericsRecord};

/// One stage run for the worker. `P` is the kind's params type
/// ([`crate::Config`] for `train`, [`crate::EvaluateParams`] for `evaluate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerJob<P> {
    pub stage: String,
    pub params: P,
    pub inputs: BTreeMap<String, PathBuf>,
    pub outputs: BTreeMap<String, PathBuf>,
    pub threads: usize,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Where the worker writes its [`WorkerResult`].
    pub result: PathBuf,
    /// Where a training run keeps its epoch checkpoint (and finds it again
    /// after being killed); none: no checkpoints.
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
}

/// Prefix of the worker's progress lines on stdout (an [`EpochProgress`]
/// as JSON follows), so other output cannot be mistaken for them.
pub const PROGRESS: &str = "kimcnn-progress ";

/// Prefix of the worker's notes on stdout (one line of text follows): what
/// the user should hear of, as resuming from a checkpoint.
pub const NOTE: &str = "kimcnn-note ";

/// Prefix of the worker's lines within an epoch (a [`BatchProgress`] as
/// JSON follows), a few a second at most: for the display's bar.
pub const BATCH: &str = "kimcnn-batch ";

/// How far into an epoch a training run is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchProgress {
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
}

/// A progress line: an epoch's row and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochProgress {
    pub row: EpochRow,
    pub timing: EpochTiming,
}

/// How a worker run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkerResult {
    /// Every output written.
    Done {
        device: String,
        /// What it computed with (None: a run without torch numerics).
        numerics: Option<NumericsRecord>,
    },
    /// A non-finite loss (`NaN`, `inf`) at this epoch and batch.
    Diverged {
        epoch: usize,
        batch: usize,
        loss: String,
    },
    /// An input or param it cannot use.
    BadInput {
        message: String,
    },
    Failed {
        message: String,
    },
}
