//! Epoch checkpoints: everything the loop carries from one epoch to the next,
//! so a killed run goes on from its last finished epoch and ends with the
//! bytes an uninterrupted run ends with (tested).
//!
//! That needs every random draw after an epoch boundary to follow from the
//! checkpoint. The shuffles' ChaCha stream is saved by its word position;
//! libtorch's generator (dropout masks) has no state tch can read or set, so
//! the loop reseeds it at the start of every epoch from (seed, epoch) instead.
//!
//! One safetensors file (which the crate writes to a temporary file and
//! renames over the last one): the weights (current and best) and optimizer
//! state in their own dtypes, the history as f64 rows (bit-exact, as JSON
//! floats need not be), and the counters in the header.

use std::collections::HashMap;
use std::path::Path;

use kimcnn_schema::{EpochRow, EpochTiming};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::{Result, TrainError};

/// The header key, and the layout's version (a file of another version is not used).
const KEY: &str = "kimcnn-checkpoint";
pub(crate) const VERSION: u32 = 1;

/// The counters of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Counters {
    pub version: u32,
    /// The training config as JSON: a checkpoint of another config is not used.
    pub config: String,
    /// What else the bytes depend on that the config does not say (the
    /// caller's: device, threads, numerics): it must match too.
    pub context: String,
    /// The last finished epoch.
    pub epoch: usize,
    pub best_epoch: usize,
    pub since_best: usize,
    /// The shuffles' ChaCha word position (a u128, as text).
    pub rng_word_pos: String,
    pub optimizer_step: i64,
    pub lazy_step: i64,
}

/// A checkpoint in memory: named tensors (on the CPU) and the counters.
pub(crate) struct Checkpoint {
    pub counters: Counters,
    pub tensors: HashMap<String, Tensor>,
    pub history: Vec<EpochRow>,
    pub timings: Vec<EpochTiming>,
}

/// Where a run keeps its epoch checkpoint, and what else a checkpoint must
/// have been written under to be used (`context`: the device, threads and
/// numerics, which change the bytes but not the config).
#[derive(Debug, Clone)]
pub struct Checkpointing<'a> {
    pub path: &'a Path,
    pub context: String,
}

fn file_err(path: &Path, m: impl ToString) -> TrainError {
    TrainError::File { path: path.into(), message: m.to_string() }
}

fn save_err(path: &Path, m: impl ToString) -> TrainError {
    TrainError::Checkpoint { path: path.into(), message: m.to_string() }
}

fn dtype(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Int64 => Dtype::I64,
        _ => return None,
    })
}

fn kind(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::I64 => Kind::Int64,
        _ => return None,
    })
}

impl Checkpoint {
    /// Writes it to `path` (a kill leaves the previous checkpoint or this
    /// one, never half of one).
    pub fn save(&self, path: &Path) -> Result<()> {
        let rows: Vec<f64> = self
            .history
            .iter()
            .flat_map(|r| [r.epoch as f64, r.train_loss, r.train_accuracy, r.dev_loss, r.dev_accuracy, r.test_accuracy])
            .collect();
        let times: Vec<f64> = self.timings.iter().flat_map(|t| [t.epoch as f64, t.seconds, t.sentences_per_s]).collect();
        let mut all: Vec<(String, Tensor)> = vec![
            ("history".into(), Tensor::from_slice(&rows).view([self.history.len() as i64, 6])),
            ("timings".into(), Tensor::from_slice(&times).view([self.timings.len() as i64, 3])),
        ];
        all.extend(self.tensors.iter().map(|(n, t)| (n.clone(), t.shallow_clone())));
        let mut bufs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, t) in all {
            let t = t.detach().to_device(Device::Cpu).contiguous();
            let dt = dtype(t.kind()).ok_or_else(|| save_err(path, format!("`{name}`: cannot checkpoint a {:?} tensor", t.kind())))?;
            let mut bytes = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
            t.f_copy_data_u8(&mut bytes, t.numel()).map_err(|e| save_err(path, e))?;
            bufs.push((name, dt, t.size().iter().map(|&d| d as usize).collect(), bytes));
        }
        let views: Vec<(String, TensorView)> = bufs
            .iter()
            .map(|(n, dt, s, b)| TensorView::new(*dt, s.clone(), b).map(|v| (n.clone(), v)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| save_err(path, e))?;
        let counters = serde_json::to_string(&self.counters).map_err(|e| save_err(path, e))?;
        safetensors::tensor::serialize_to_file(views, Some(HashMap::from([(KEY.to_string(), counters)])), path)
            .map_err(|e| save_err(path, e))
    }

    /// Reads `path`; `Ok(None)` when there is none. A file it cannot use
    /// (damaged, another layout, another config or context) is an error
    /// naming why.
    pub fn load(path: &Path, config: &str, context: &str) -> Result<Option<Checkpoint>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(file_err(path, e)),
        };
        let bad = |m: String| file_err(path, m);
        let (_, header) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a checkpoint (damaged or cut short?): {e}")))?;
        let counters = header.metadata().as_ref().and_then(|m| m.get(KEY)).ok_or_else(|| bad("not a kimcnn checkpoint".into()))?;
        let counters: Counters = serde_json::from_str(counters).map_err(|e| bad(format!("its counters: {e}")))?;
        if counters.version != VERSION {
            return Err(bad(format!("a checkpoint of layout {}, this kimcnn writes {VERSION}", counters.version)));
        }
        if counters.config != config {
            return Err(bad("a checkpoint of another training config".into()));
        }
        if counters.context != context {
            return Err(bad(format!("written under {}, this run is under {context}", counters.context)));
        }
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("damaged: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, v) in st.tensors() {
            let k = kind(v.dtype()).ok_or_else(|| bad(format!("`{name}` has dtype {:?}", v.dtype())))?;
            let shape: Vec<i64> = v.shape().iter().map(|&d| d as i64).collect();
            let t = Tensor::f_from_data_size(v.data(), &shape, k).map_err(|e| bad(format!("`{name}`: {e}")))?;
            tensors.insert(name, t);
        }
        let mut table = |name: &str, cols: i64| -> Result<Vec<Vec<f64>>> {
            let t = tensors.remove(name).ok_or_else(|| bad(format!("no `{name}`")))?;
            if t.kind() != Kind::Double || t.dim() != 2 || t.size()[1] != cols || t.size()[0] != counters.epoch as i64 {
                return Err(bad(format!("`{name}` is not {} rows of {cols}", counters.epoch)));
            }
            let flat = Vec::<f64>::try_from(t.view([-1])).map_err(|e| bad(format!("`{name}`: {e}")))?;
            Ok(flat.chunks(cols as usize).map(<[f64]>::to_vec).collect())
        };
        let history = table("history", 6)?
            .into_iter()
            .map(|r| EpochRow {
                epoch: r[0] as usize,
                train_loss: r[1],
                train_accuracy: r[2],
                dev_loss: r[3],
                dev_accuracy: r[4],
                test_accuracy: r[5],
            })
            .collect();
        let timings =
            table("timings", 3)?.into_iter().map(|r| EpochTiming { epoch: r[0] as usize, seconds: r[1], sentences_per_s: r[2] }).collect();
        Ok(Some(Checkpoint { counters, tensors, history, timings }))
    }

    /// Copies the tensor `name` into `into` (same shape and dtype), in place.
    pub fn restore(&self, name: &str, into: &Tensor) -> Result<()> {
        let t = self.tensors.get(name).ok_or_else(|| TrainError::Invalid(format!("the checkpoint has no `{name}`")))?;
        if t.size() != into.size() || t.kind() != into.kind() {
            return Err(TrainError::Invalid(format!(
                "the checkpoint's `{name}` is {:?} {:?}, not {:?} {:?}",
                t.kind(),
                t.size(),
                into.kind(),
                into.size()
            )));
        }
        tch::no_grad(|| into.shallow_clone().f_copy_(t))?;
        Ok(())
    }
}

/// The seed libtorch's generator gets at the start of `epoch` (splitmix64 of seed and epoch).
pub(crate) fn epoch_seed(seed: u64, epoch: usize) -> i64 {
    let mut z = seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as i64
}
