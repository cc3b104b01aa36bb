//! The configuration of Kim's CNN and its training: every size and choice
//! as a param, with Kim's values as defaults. It is the `train` stage's
//! params and part of every model file's metadata.

use serde::{Deserialize, Serialize};

use crate::Numerics;

crate::named_enum! {
    /// Which of Kim's four models.
    pub enum Variant {
        /// Every word vector random, trained.
        Rand = "rand",
        /// Pretrained vectors, frozen.
        Static = "static",
        /// Pretrained vectors, fine-tuned.
        NonStatic = "non-static",
        /// Two channels, one frozen and one fine-tuned; each filter sees both.
        Multichannel = "multichannel",
    }
}

crate::named_enum! {
    /// How sentences are padded into batches.
    pub enum Pad {
        /// Every sentence padded to the data set's longest, plus width-1 each side (Kim).
        Kim = "kim",
        /// Batches of similar length, each padded to its own longest plus width-1.
        Bucket = "bucket",
    }
}

crate::named_enum! {
    pub enum OptimizerKind { Adadelta = "adadelta", Adam = "adam", Sgd = "sgd" }
}

/// CNN-rand's word vectors: every row drawn from U[-a, a].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RandA {
    /// A fixed bound; Kim's recipe and code: 0.25.
    Fixed(f64),
    /// Matched to the variance of the pretrained vectors the embed stage
    /// read (a = sqrt(3 var), its unknown-word bound): `rand_a: matched`.
    /// Model files written before this param had a default hold `null`,
    /// which meant this.
    Matched,
}

impl Serialize for RandA {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RandA::Fixed(a) => s.serialize_f64(*a),
            RandA::Matched => s.serialize_str("matched"),
        }
    }
}

impl<'de> Deserialize<'de> for RandA {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RandA, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RandA;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a bound a > 0 (CNN-rand draws U[-a, a]) or `matched`")
            }
            fn visit_f64<E: serde::de::Error>(self, a: f64) -> Result<RandA, E> {
                Ok(RandA::Fixed(a))
            }
            fn visit_u64<E: serde::de::Error>(self, a: u64) -> Result<RandA, E> {
                Ok(RandA::Fixed(a as f64))
            }
            fn visit_i64<E: serde::de::Error>(self, a: i64) -> Result<RandA, E> {
                Ok(RandA::Fixed(a as f64))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<RandA, E> {
                Ok(RandA::Matched)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RandA, E> {
                match s {
                    "matched" => Ok(RandA::Matched),
                    _ => Err(E::custom(format!("must be a number or `matched`, found `{s}`"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Everything that shapes a training run: the `train` stage's params (with
/// `device`, which is where it runs, not what it computes, so it is not
/// serialised and not part of the key) and a model file's `config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A name for reports (`mr`, `trec`); required.
    pub dataset: String,
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
    /// CNN-rand's U[-a, a] (Kim: 0.25); `matched` to the pretrained vectors.
    pub rand_a: RandA,
    /// `reproducible` (CPU kernels capped at AVX2: the same bytes on any
    /// x86-64 CPU with AVX2) or `fast`. A GPU device makes it `fast`.
    pub numerics: Numerics,
    /// `auto`, `cpu`, `cuda`, `cuda:N`; `auto` is the CPU in reproducible
    /// numerics, a GPU where there is one in fast.
    #[serde(skip_serializing)]
    pub device: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            dataset: String::new(),
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
            rand_a: RandA::Fixed(0.25),
            numerics: Numerics::Reproducible,
            device: "auto".into(),
        }
    }
}

impl Config {
    /// Refuses a config that cannot be trained, naming the param; a GPU
    /// device makes the numerics `fast`.
    pub fn check(&mut self) -> Result<(), String> {
        let bad = |m: &str| Err(m.to_string());
        if self.dataset.is_empty() {
            return bad("param `dataset` is required (a name for reports: mr, trec, ...)");
        }
        if self.widths.is_empty() || self.widths.iter().any(|&w| w < 1) {
            return bad("`widths` must be a non-empty list of positive widths");
        }
        if self.maps < 1 || self.batch < 1 || self.epochs < 1 {
            return bad("`maps`, `batch` and `epochs` must be at least 1");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("`dropout` must be in [0, 1)");
        }
        if self.max_norm < 0.0 || self.clip < 0.0 || self.lr.is_some_and(|l| !(l.is_finite() && l > 0.0)) {
            return bad("`max_norm` and `clip` must be >= 0 and `lr` > 0");
        }
        if self.max_len == Some(0) {
            return bad("`max_len` must be at least 1");
        }
        if !(0.0..1.0).contains(&self.dev_fraction) {
            return bad("`dev_fraction` must be in [0, 1)");
        }
        if let RandA::Fixed(a) = self.rand_a {
            if !(a.is_finite() && a > 0.0) {
                return bad("`rand_a` must be a bound > 0 or `matched`");
            }
        }
        check_device(&self.device)?;
        self.numerics = effective_numerics(self.numerics, &self.device);
        Ok(())
    }

    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(match self.optimizer {
            OptimizerKind::Adadelta => 1.0,
            OptimizerKind::Adam => 1e-3,
            OptimizerKind::Sgd => 0.1,
        })
    }
}

/// A device param: `auto`, `cpu`, `cuda` or `cuda:N`.
pub fn check_device(d: &str) -> Result<(), String> {
    let ok = matches!(d, "auto" | "cpu" | "cuda") || d.strip_prefix("cuda:").is_some_and(|n| n.parse::<u32>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!("param `device` must be auto, cpu, cuda or cuda:N, found `{d}`"))
    }
}

/// GPU kernels are not bit-stable across cards: a GPU run is `fast`.
pub fn effective_numerics(n: Numerics, device: &str) -> Numerics {
    if wants_gpu(device) {
        Numerics::Fast
    } else {
        n
    }
}

/// Whether a device param asks for a GPU.
pub fn wants_gpu(d: &str) -> bool {
    d.starts_with("cuda")
}

/// The `evaluate` stage's params: how and where it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluateParams {
    /// As the train stage's: `reproducible` predictions have the same
    /// bytes on any x86-64 CPU with AVX2.
    pub numerics: Numerics,
    #[serde(skip_serializing)]
    pub device: String,
}

impl Default for EvaluateParams {
    fn default() -> EvaluateParams {
        EvaluateParams { numerics: Numerics::Reproducible, device: "auto".into() }
    }
}

impl EvaluateParams {
    pub fn check(&mut self) -> Result<(), String> {
        check_device(&self.device)?;
        self.numerics = effective_numerics(self.numerics, &self.device);
        Ok(())
    }
}
