//! The types of everything that crosses a file or a process between kimcnn's
//! parts: the artifacts stages write and others read, and the protocol
//! between the `kimcnn` CLI and its `kimcnn-torch` worker. One type per
//! artifact, used by its writer and by every reader (the worker, `show`,
//! `models`, `predict`, `aggregate`, the report), so a renamed or retyped
//! field is an error naming the file and the field, never a silent default.
//! No libtorch here: reading a model's metadata or a training history does
//! not load it.
//!
//! - [`Config`]: the CNN's configuration, the `train` stage's params and
//!   part of every model's metadata.
//! - [`ModelMeta`] (in `model.safetensors`), [`EpochRow`]
//!   (`history.parquet`), [`TrainSummary`], [`TrainTimings`].
//! - [`Metrics`] and [`Prediction`] (evaluate), [`RunResult`] (aggregate).
//! - [`Coverage`] and [`EmbeddingsMeta`] (embed), [`VocabSummary`],
//!   [`TokenizeSummary`] and the [`TokenizerSpec`] a model predicts with.
//! - [`Numerics`] and [`NumericsRecord`]: reproducible or fast CPU kernels,
//!   and what a run computed with.
//! - [`TrialRow`] (a study's `trials.parquet`) and [`StudyBest`].
//! - [`worker`]: the job file, progress lines and result of a worker run.

mod config;
mod data;
mod model;
mod named;
mod numerics;
mod study;
mod table;
mod words;
pub mod worker;

pub use config::{check_device, effective_numerics, wants_gpu, Config, EvaluateParams, OptimizerKind, Pad, RandA, Variant};
pub use data::{
    Cleaner, CorpusCounts, Coverage, EmbeddingsMeta, SubwordModel, SubwordSpec, SubwordSummary, TokenizeSummary, TokenizerSpec, UnkInit,
    VocabSummary,
};
pub use model::{ClassMetrics, EpochTiming, Metrics, ModelMeta, RunResult, TrainSummary, TrainTimings};
pub use named::{Named, Text};
pub use numerics::{native_isa, Numerics, NumericsRecord, REPRODUCIBLE_ENV, REPRODUCIBLE_ISA};
pub use study::{
    best_per_budget, config_text, read_trials, trial_cells, value_text, write_trials, Selected, Selection, StudyBest, TrialCell, TrialRow,
    TrialStatus,
};
pub use table::{
    read_history, read_predictions, read_results, write_batch, write_history, write_predictions, write_results, EpochRow, Prediction,
};
pub use words::{read_neighbours, read_tsne, write_neighbours, write_tsne, Neighbour, TsnePoint, TsneSummary};

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An artifact that cannot be read or written, naming the file (and the
/// field or column).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SchemaError {
    pub path: PathBuf,
    pub message: String,
}

impl SchemaError {
    pub fn new(path: &Path, message: impl ToString) -> SchemaError {
        SchemaError { path: path.to_path_buf(), message: message.to_string() }
    }
}

pub type Result<T, E = SchemaError> = std::result::Result<T, E>;

/// Parses JSON text into `T`; an error names the field (`per_class[1].f1`).
pub fn from_json_str<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let v = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if field == "." {
            SchemaError::new(path, inner)
        } else {
            SchemaError::new(path, format!("field `{field}`: {inner}"))
        }
    })?;
    Ok(v)
}

/// Reads a JSON artifact.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| SchemaError::new(path, e))?;
    from_json_str(&text, path)
}

/// Writes a JSON artifact: pretty, keys in the type's order, a final newline.
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| SchemaError::new(path, e))?;
    bytes.push(b'\n');
    std::fs::write(path, bytes).map_err(|e| SchemaError::new(path, e))
}

/// The JSON string stored under the `kimcnn` key of a safetensors header
/// (one key, so the file's bytes do not depend on map order).
pub const SAFETENSORS_KEY: &str = "kimcnn";

/// Reads `T` from the `kimcnn` metadata of a safetensors file's header,
/// reading only the header.
pub fn read_safetensors_meta<T: DeserializeOwned>(path: &Path) -> Result<T> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| SchemaError::new(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| SchemaError::new(path, "not a safetensors file (shorter than its header)"))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(SchemaError::new(path, "not a safetensors file (header size out of range)"));
    }
    let mut header = vec![0u8; 8 + n as usize];
    header[..8].copy_from_slice(&len);
    f.read_exact(&mut header[8..]).map_err(|_| SchemaError::new(path, "not a safetensors file (truncated header)"))?;
    meta_from_header(&header, path)
}

/// A 2-d float32 tensor of a safetensors file: its shape and its values,
/// row-major; another dtype or rank is an error naming the tensor.
pub fn f32_matrix(st: &safetensors::SafeTensors, name: &str, path: &Path) -> Result<([usize; 2], Vec<f32>)> {
    let t = st.tensor(name).map_err(|e| SchemaError::new(path, format!("tensor `{name}`: {e}")))?;
    let &[rows, cols] = t.shape() else {
        return Err(SchemaError::new(path, format!("tensor `{name}`: shape {:?}, not a matrix", t.shape())));
    };
    if t.dtype() != safetensors::Dtype::F32 {
        return Err(SchemaError::new(path, format!("tensor `{name}`: {:?}, not float32", t.dtype())));
    }
    Ok(([rows, cols], t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}

/// As [`read_safetensors_meta`], from the file's bytes (at least its header).
pub fn meta_from_header<T: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T> {
    /// The header: a JSON object whose `__metadata__` maps names to strings.
    #[derive(serde::Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__", default)]
        metadata: std::collections::HashMap<String, String>,
    }
    let bad = |m: String| SchemaError::new(path, format!("not a safetensors file: {m}"));
    let n =
        bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).ok_or_else(|| bad("shorter than its header".into()))?;
    let json = usize::try_from(n).ok().and_then(|n| bytes.get(8..8 + n)).ok_or_else(|| bad("truncated header".into()))?;
    let header: Header = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
    let text = header
        .metadata
        .get(SAFETENSORS_KEY)
        .ok_or_else(|| SchemaError::new(path, format!("no `{SAFETENSORS_KEY}` metadata in its header")))?;
    from_json_str(text, path).map_err(|e| SchemaError::new(path, format!("`{SAFETENSORS_KEY}` metadata: {}", e.message)))
}

/// The header metadata map that [`read_safetensors_meta`] reads back: one
/// compact JSON string with its keys sorted, so the file's bytes depend on
/// the values only (not on map order, nor on the order of a type's fields).
pub fn safetensors_meta<T: Serialize>(v: &T) -> std::collections::HashMap<String, String> {
    let sorted = serde_json::to_value(v).expect("metadata serialises");
    std::collections::HashMap::from([(SAFETENSORS_KEY.to_string(), sorted.to_string())])
}

#[cfg(test)]
mod tests;
