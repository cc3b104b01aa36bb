//! What training and evaluation write: a model's metadata, the train
//! stage's summary, evaluation metrics and the rows of the results table.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Config, Numerics, NumericsRecord, Pad, Result, TokenizerSpec, Variant};

/// The metadata of `model.safetensors` (its header's `kimcnn` entry): all a
/// model needs to be used elsewhere, with its vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ModelMetaFile")]
pub struct ModelMeta {
    pub config: Config,
    /// Class names, sorted; output row i is class i.
    pub classes: Vec<String>,
    /// BLAKE3 of the `vocab.parquet` it was trained with.
    pub vocab_blake3: String,
    /// How raw text became tokens (None: trained without a `tokenizer` input).
    pub tokenizer: Option<TokenizerSpec>,
    /// How the embedding started: `uniform a=0.250` for CNN-rand, else the
    /// embed stage's unknown-word init.
    pub init: String,
    pub best_epoch: usize,
    pub best_dev_accuracy: f64,
    /// Where it was trained (`cpu`, `cuda:0`), with how many CPU threads
    /// (None: a model written before kimcnn recorded them). Not part of the
    /// stage's key: CPU and GPU runs are the same stage.
    pub device: Option<String>,
    pub threads: Option<usize>,
    /// How it computed: the numerics mode, ISA level and library versions
    /// (None: a model written before kimcnn recorded them, in fast numerics).
    pub numerics: Option<NumericsRecord>,
}

/// [`ModelMeta`] as files hold it, including those written before the typed
/// contracts (no device or threads, and the data set's name beside the
/// config instead of in it) and before reproducible numerics (no record:
/// they computed in fast numerics).
#[derive(Deserialize)]
struct ModelMetaFile {
    config: Config,
    classes: Vec<String>,
    vocab_blake3: String,
    tokenizer: Option<TokenizerSpec>,
    init: String,
    best_epoch: usize,
    best_dev_accuracy: f64,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    threads: Option<usize>,
    #[serde(default)]
    dataset: Option<String>,
    #[serde(default)]
    numerics: Option<NumericsRecord>,
}

impl From<ModelMetaFile> for ModelMeta {
    fn from(f: ModelMetaFile) -> ModelMeta {
        let mut config = f.config;
        if let (true, Some(d)) = (config.dataset.is_empty(), f.dataset) {
            config.dataset = d;
        }
        if f.numerics.is_none() {
            config.numerics = Numerics::Fast;
        }
        ModelMeta {
            config,
            classes: f.classes,
            vocab_blake3: f.vocab_blake3,
            tokenizer: f.tokenizer,
            init: f.init,
            best_epoch: f.best_epoch,
            best_dev_accuracy: f.best_dev_accuracy,
            device: f.device,
            threads: f.threads,
            numerics: f.numerics,
        }
    }
}

impl ModelMeta {
    /// Reads a model file's metadata (its header only).
    pub fn read(path: &Path) -> Result<ModelMeta> {
        crate::read_safetensors_meta(path)
    }
}

/// The `train` stage's `summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub dataset: String,
    pub variant: Variant,
    pub fold: Option<i32>,
    pub best_epoch: usize,
    pub best_dev_accuracy: f64,
    pub epochs_run: usize,
    pub train: usize,
    pub dev: usize,
    pub test: usize,
    pub classes: Vec<String>,
    pub max_len: usize,
    pub truncated_sentences: usize,
    pub empty_sentences: usize,
    pub unknown_tokens: usize,
    pub init: String,
    pub device: String,
    pub threads: usize,
    pub numerics: NumericsRecord,
}

/// The `train` stage's `timings`: how long it took. The one output of a
/// training run that is measured, not computed, so it differs from run to
/// run; its other outputs are the same bytes in reproducible numerics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainTimings {
    pub seconds: f64,
    pub median_train_sentences_per_s: f64,
    pub epochs: Vec<EpochTiming>,
}

/// One epoch's training time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochTiming {
    pub epoch: usize,
    pub seconds: f64,
    /// Training sentences a second (dev scoring excluded).
    pub sentences_per_s: f64,
}

/// One class's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// The `evaluate` stage's `metrics`: test scores of one model, with what
/// identifies the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub dataset: String,
    pub variant: Variant,
    pub fold: Option<i32>,
    pub seed: u64,
    pub pad: Pad,
    pub init: String,
    pub epochs: usize,
    pub best_epoch: usize,
    pub best_dev_accuracy: f64,
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// confusion[gold][predicted], classes in `classes` order.
    pub confusion: Vec<Vec<u64>>,
    pub classes: Vec<String>,
}

impl Metrics {
    /// Scores from a confusion matrix (`confusion[gold][predicted]`); the
    /// run's other fields from `meta`.
    pub fn from_confusion(meta: &crate::ModelMeta, confusion: Vec<Vec<u64>>) -> Metrics {
        let classes = &meta.classes;
        let k = classes.len();
        let n: u64 = confusion.iter().flatten().sum();
        let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
        let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|c| {
                let tp = confusion[c][c] as f64;
                let predicted: u64 = (0..k).map(|g| confusion[g][c]).sum();
                let support: u64 = confusion[c].iter().sum();
                let precision = div(tp, predicted as f64);
                let recall = div(tp, support as f64);
                ClassMetrics {
                    class: classes[c].clone(),
                    precision,
                    recall,
                    f1: div(2.0 * precision * recall, precision + recall),
                    support,
                }
            })
            .collect();
        let cfg = &meta.config;
        Metrics {
            dataset: cfg.dataset.clone(),
            variant: cfg.variant,
            fold: cfg.fold,
            seed: cfg.seed,
            pad: cfg.pad,
            init: meta.init.clone(),
            epochs: cfg.epochs,
            best_epoch: meta.best_epoch,
            best_dev_accuracy: meta.best_dev_accuracy,
            n: n as usize,
            accuracy: div(correct as f64, n as f64),
            macro_f1: per_class.iter().map(|c| c.f1).sum::<f64>() / k.max(1) as f64,
            per_class,
            confusion,
            classes: classes.clone(),
        }
    }
}

/// One evaluated run: a row of the `aggregate` stage's `results.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub dataset: String,
    pub variant: Variant,
    /// None for data sets with given splits.
    pub fold: Option<i32>,
    pub seed: u64,
    /// 0-1.
    pub accuracy: f64,
    pub macro_f1: f64,
    pub epochs: u32,
    pub best_epoch: u32,
    pub pad: Pad,
    pub init: String,
}

impl From<&Metrics> for RunResult {
    fn from(m: &Metrics) -> RunResult {
        RunResult {
            dataset: m.dataset.clone(),
            variant: m.variant,
            fold: m.fold,
            seed: m.seed,
            accuracy: m.accuracy,
            macro_f1: m.macro_f1,
            epochs: m.epochs as u32,
            best_epoch: m.best_epoch as u32,
            pad: m.pad,
            init: m.init.clone(),
        }
    }
}
