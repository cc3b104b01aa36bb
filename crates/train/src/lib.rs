//! Kim's CNN for sentence classification on tch (libtorch), as Kim (2014)
//! specified it and as his Theano code ran it.
//!
//! - [`Config`]: every size and choice is a param (variants `rand`,
//!   `static`, `non-static`, `multichannel`; filter widths 3,4,5 x 100 maps;
//!   dropout 0.5; batch 50; Adadelta rho 0.95 eps 1e-6; max-norm 3 on the
//!   output rows; optional gradient-norm clipping; padding `kim` or `bucket`).
//! - [`Dataset`]: a tokens table and vocabulary as id tensors, with the
//!   train/dev/test split (k-fold data: the test fold, and a seeded 10% dev).
//! - [`train`]: the loop, with model selection on dev only; returns the best
//!   epoch's weights and the per-epoch history. With a checkpoint path it
//!   saves each finished epoch and a killed run goes on from there, to the
//!   bytes of a run never stopped.
//! - [`evaluate`]: predictions and the confusion matrix on a split.
//!
//! The optimizers are hand-written on tensors: tch has no Adadelta, and
//! keeping Adam and SGD beside it in one small trait avoids a VarStore just
//! for them.
//! Adadelta updates a fine-tuned embedding row by row, only the rows a
//! batch uses, with the decay the others missed applied when they are next
//! used: the dense update's result at a fraction of its cost on large
//! vocabularies.

mod checkpoint;
mod data;
mod eval;
mod io;
mod model;
mod optim;
mod train;

pub use checkpoint::Checkpointing;
pub use data::{Dataset, PackedBatch};
pub use eval::evaluate;
pub use io::{load_model, save_model, SavedModel};
pub use kimcnn_schema::{Config, OptimizerKind, Pad, Variant};
pub use model::KimCnn;
pub use train::{train, TrainEvent, TrainOutcome};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Invalid(String),
    #[error("epoch {epoch} batch {batch}: the loss is {value}; stopped (try a smaller learning rate, or gradient clipping with `clip`)")]
    NonFinite { epoch: usize, batch: usize, value: f64 },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// A checkpoint could not be written (a full disk, say): not the input's fault.
    #[error("{path}: cannot write the checkpoint: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("{0}")]
    Config(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// Parses `auto`, `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(s: &str) -> Result<tch::Device> {
    Ok(match s {
        "auto" => tch::Device::cuda_if_available(),
        "cpu" => tch::Device::Cpu,
        "cuda" => tch::Device::Cuda(0),
        _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => tch::Device::Cuda(n),
            None => return Err(TrainError::Invalid(format!("device `{s}`: expected auto, cpu, cuda or cuda:N"))),
        },
    })
}

pub fn device_name(d: tch::Device) -> String {
    match d {
        tch::Device::Cpu => "cpu".into(),
        tch::Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests;
