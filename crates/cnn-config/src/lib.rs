//! The configuration of Kim's CNN and its training: every size and choice
//! as a param, with Kim's values as defaults. Kept apart from the tch code so
//! the `kimcnn` CLI can check a stage's params without loading libtorch.

use serde::{Deserialize, Serialize};

/// A config that cannot be trained.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Every word vector random, trained.
    Rand,
    /// Pretrained vectors, frozen.
    Static,
    /// Pretrained vectors, fine-tuned.
    NonStatic,
    /// Two channels, one frozen and one fine-tuned; each filter sees both.
    Multichannel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pad {
    /// Every sentence padded to the data set's longest, plus width-1 each side (Kim).
    Kim,
    /// Batches of similar length, each padded to its own longest plus width-1.
    Bucket,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adadelta,
    Adam,
    Sgd,
}

/// Everything that shapes a training run. Serialised into the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub variant: Variant,
    pub widths: Vec<i64>,
    pub maps: i64,
    pub dropout: f64,
    pub batch: usize,
    pub epochs: usize,
    /// Stop after this many epochs without a better dev accuracy (None: never).
    pub patience: Option<usize>,
    pub optimizer: OptimizerKind,
    /// Adadelta: 1.0 (Kim); Adam: 0.001; SGD: 0.1.
    pub lr: Option<f64>,
    pub rho: f64,
    pub eps: f64,
    /// l2 max-norm of each output-weight row, after every step (0: off).
    pub max_norm: f64,
    /// Gradient-norm clipping over all parameters (0: off).
    pub clip: f64,
    pub pad: Pad,
    /// Truncate longer sentences to this many tokens (None: no limit).
    pub max_len: Option<usize>,
    pub seed: u64,
    /// k-fold data: the test fold.
    pub fold: Option<i32>,
    /// Dev carved from train where the data set has none.
    pub dev_fraction: f64,
    /// CNN-rand: U[-a, a] with a from the embed stage unless set here.
    pub rand_a: Option<f64>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            variant: Variant::NonStatic,
            widths: vec![3, 4, 5],
            maps: 100,
            dropout: 0.5,
            batch: 50,
            epochs: 25,
            patience: None,
            optimizer: OptimizerKind::Adadelta,
            lr: None,
            rho: 0.95,
            eps: 1e-6,
            max_norm: 3.0,
            clip: 0.0,
            pad: Pad::Kim,
            max_len: None,
            seed: 3435,
            fold: None,
            dev_fraction: 0.1,
            rand_a: None,
        }
    }
}

impl Config {
    pub fn from_json(v: &serde_json::Value) -> Result<Config> {
        let c: Config = serde_json::from_value(v.clone()).map_err(|e| ConfigError(e.to_string()))?;
        c.check()?;
        Ok(c)
    }

    pub fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(ConfigError(m.to_string()));
        if self.widths.is_empty() || self.widths.iter().any(|&w| w < 1) {
            return bad("`widths` must be a non-empty list of positive widths");
        }
        if self.maps < 1 || self.batch < 1 || self.epochs < 1 {
            return bad("`maps`, `batch` and `epochs` must be at least 1");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("`dropout` must be in [0, 1)");
        }
        if self.max_norm < 0.0 || self.clip < 0.0 || self.lr.is_some_and(|l| !(l > 0.0)) {
            return bad("`max_norm` and `clip` must be >= 0 and `lr` > 0");
        }
        if self.max_len == Some(0) {
            return bad("`max_len` must be at least 1");
        }
        Ok(())
    }

    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(match self.optimizer {
            OptimizerKind::Adadelta => 1.0,
            OptimizerKind::Adam => 1e-3,
            OptimizerKind::Sgd => 0.1,
        })
    }

    /// Zero pads on each side of a sentence: the widest filter minus one.
    pub fn side_pad(&self) -> usize {
        (*self.widths.iter().max().unwrap_or(&1) - 1) as usize
    }
}

/// A `train` stage's params: this config plus `dataset` (a name for
/// reports) and `device` (where to run; not part of the config). Returns the
/// config and the data set's name.
pub fn train_params(params: &serde_json::Value) -> Result<(Config, String)> {
    let mut p = params.as_object().cloned().unwrap_or_default();
    let dataset = match p.remove("dataset") {
        Some(serde_json::Value::String(d)) => d,
        _ => return Err(ConfigError("param `dataset` is required (a name for reports: mr, trec, ...)".into())),
    };
    p.remove("device");
    Ok((Config::from_json(&serde_json::Value::Object(p))?, dataset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kims_defaults_and_refusals() {
        let c = Config::from_json(&serde_json::json!({"variant": "multichannel", "pad": "bucket"})).unwrap();
        assert_eq!((c.widths.clone(), c.maps, c.batch, c.epochs, c.side_pad()), (vec![3, 4, 5], 100, 50, 25, 4));
        assert_eq!((c.lr(), c.rho, c.eps, c.max_norm), (1.0, 0.95, 1e-6, 3.0));
        let e = Config::from_json(&serde_json::json!({"epoch": 3})).unwrap_err().to_string();
        assert!(e.contains("unknown field `epoch`"), "{e}");
        let e = Config::from_json(&serde_json::json!({"dropout": 1.5})).unwrap_err().to_string();
        assert_eq!(e, "`dropout` must be in [0, 1)");
        assert!(Config::from_json(&serde_json::json!({"variant": "cnn"})).is_err());
    }
}
