//! `tokenize`, `vocab` and `embed`: the data stages.

use kimcnn_embed::{UnkInit, VectorFormat};
use kimcnn_pipeline::{Job, StageError, StageKind};
use kimcnn_tokenize::{Cleaner, Encoding, Format, Input};
use kimcnn_vocab::{Order, Source, Vocab};
use serde_json::{json, Value};

use super::{fixed_outputs, write_json, Params};

/// `tokenize`: raw data-set files -> `tokens` (parquet) + `summary` (JSON).
///
/// Inputs: one per class file (`format: lines`) or `train`/`dev`/`test`;
/// optionally `splits`, a JSON file of exact train/dev/test ids.
pub struct Tokenize;

const TOKENIZE_PARAMS: &[&str] = &[
    "format", "cleaner", "lower", "kim_quirk", "encoding", "folds", "dev_fraction", "seed", "classes", "order", "text_column",
    "label_column",
];

impl Tokenize {
    fn spec(params: &Value) -> Result<kimcnn_tokenize::Params, String> {
        let p = Params::new(params, TOKENIZE_PARAMS)?;
        let fname = p.opt_str("format")?.ok_or("param `format` is required: lines, trec, sst, nsmc, tsv or csv")?;
        let format = Format::parse(&fname, &p.str_or("text_column", "text")?, &p.str_or("label_column", "label")?)
            .ok_or_else(|| format!("param `format` must be one of lines, trec, sst, nsmc, tsv, csv, found `{fname}`"))?;
        let default_cleaner = match format {
            Format::Sst => "kim_sst",
            Format::Nsmc => "unicode",
            _ => "kim",
        };
        let cleaner = Cleaner::parse(&p.choice("cleaner", default_cleaner, &["kim", "kim_sst", "unicode", "whitespace"])?).expect("checked");
        let encoding = match p.opt_str("encoding")?.as_deref() {
            None => format.default_encoding(),
            Some("utf8") => Encoding::Utf8,
            Some("utf8-latin1") => Encoding::Utf8Latin1,
            Some(other) => return Err(format!("param `encoding` must be utf8 or utf8-latin1, found `{other}`")),
        };
        let folds = p.opt_u64("folds")?.map(|k| k as u32);
        if folds.is_some_and(|k| k < 2) {
            return Err("param `folds` must be at least 2".into());
        }
        let dev_fraction = p.opt_f64("dev_fraction")?.unwrap_or(0.1);
        if !(0.0..1.0).contains(&dev_fraction) {
            return Err(format!("param `dev_fraction` must be in [0, 1), found {dev_fraction}"));
        }
        Ok(kimcnn_tokenize::Params {
            lower: p.opt_bool("lower")?.unwrap_or(format != Format::Trec),
            format,
            cleaner,
            kim_quirk: p.opt_bool("kim_quirk")?.unwrap_or(false),
            encoding,
            folds,
            dev_fraction,
            seed: p.opt_u64("seed")?.unwrap_or(3435),
            classes: p.str_list("classes")?,
            order: p.str_list("order")?,
        })
    }
}

impl StageKind for Tokenize {
    fn version(&self) -> u32 {
        1
    }

    fn outputs(&self, params: &Value, declared: &[String]) -> Result<Vec<String>, String> {
        Tokenize::spec(params)?;
        fixed_outputs("tokenize", &["tokens", "summary"], declared)
    }

    fn check_inputs(&self, _: &Value, inputs: &[&str]) -> Result<(), String> {
        if inputs.iter().all(|i| *i == "splits") {
            return Err("a `tokenize` stage needs its data files as inputs".into());
        }
        Ok(())
    }

    fn run(&self, job: &Job) -> Result<(), StageError> {
        let p = Tokenize::spec(job.params)?;
        let inputs: Vec<Input> = job
            .inputs
            .iter()
            .filter(|(n, _)| *n != "splits")
            .map(|(n, path)| Input { name: n.clone(), path: path.clone() })
            .collect();
        let splits = job.inputs.get("splits").map(|p| p.as_path());
        let summary = kimcnn_tokenize::tokenize(&p, &inputs, splits, &job.outputs["tokens"])?;
        write_json(&job.outputs["summary"], &summary)
    }
}

/// `vocab`: `tokens` -> `vocab` (parquet) + `summary`.
pub struct VocabKind;

impl VocabKind {
    fn spec(params: &Value) -> Result<kimcnn_vocab::Params, String> {
        let p = Params::new(params, &["from", "exclude_fold", "min_count", "max_size", "order"])?;
        Ok(kimcnn_vocab::Params {
            from: if p.choice("from", "all", &["all", "train"])? == "all" { Source::All } else { Source::Train },
            exclude_fold: p.opt_i64("exclude_fold")?.map(|f| f as i32),
            min_count: p.opt_u64("min_count")?.unwrap_or(1),
            max_size: p.opt_u64("max_size")?.map(|m| m as usize),
            order: if p.choice("order", "first", &["first", "count"])? == "first" { Order::FirstSeen } else { Order::Count },
        })
    }
}

impl StageKind for VocabKind {
    fn version(&self) -> u32 {
        1
    }

    fn outputs(&self, params: &Value, declared: &[String]) -> Result<Vec<String>, String> {
        VocabKind::spec(params)?;
        fixed_outputs("vocab", &["vocab", "summary"], declared)
    }

    fn check_inputs(&self, _: &Value, inputs: &[&str]) -> Result<(), String> {
        if inputs != ["tokens"] {
            return Err("a `vocab` stage takes one input, `tokens`".into());
        }
        Ok(())
    }

    fn run(&self, job: &Job) -> Result<(), StageError> {
        let p = VocabKind::spec(job.params)?;
        let table = kimcnn_tokenize::TokensTable::read(&job.inputs["tokens"])?;
        let (vocab, summary) = Vocab::build(&table, &p)?;
        vocab.write(&job.outputs["vocab"])?;
        write_json(&job.outputs["summary"], &summary)
    }
}

/// `embed`: `vocab` + `vectors` -> `embeddings` (safetensors) + `coverage`.
pub struct Embed;

impl Embed {
    fn spec(params: &Value) -> Result<kimcnn_embed::Params, String> {
        let p = Params::new(params, &["format", "unk_init", "unk_a", "unk_std", "seed", "lower_lookup", "dim"])?;
        let fname = p.str_or("format", "auto")?;
        let format = VectorFormat::parse(&fname)
            .ok_or_else(|| format!("param `format` must be auto, glove, word2vec, fasttext or word2vec-binary, found `{fname}`"))?;
        let unk_init = match p.choice("unk_init", "uniform", &["uniform", "normal", "zeros"])?.as_str() {
            "uniform" => UnkInit::Uniform(p.opt_f64("unk_a")?),
            "normal" => UnkInit::Normal(p.opt_f64("unk_std")?),
            _ => UnkInit::Zeros,
        };
        Ok(kimcnn_embed::Params {
            format,
            unk_init,
            seed: p.opt_u64("seed")?.unwrap_or(3435),
            lower_lookup: p.opt_bool("lower_lookup")?.unwrap_or(false),
            dim: p.opt_u64("dim")?.map(|d| d as usize),
        })
    }
}

impl StageKind for Embed {
    fn version(&self) -> u32 {
        1
    }

    fn outputs(&self, params: &Value, declared: &[String]) -> Result<Vec<String>, String> {
        Embed::spec(params)?;
        fixed_outputs("embed", &["embeddings", "coverage"], declared)
    }

    fn check_inputs(&self, _: &Value, inputs: &[&str]) -> Result<(), String> {
        let mut i = inputs.to_vec();
        i.sort();
        if i != ["vectors", "vocab"] {
            return Err("an `embed` stage takes two inputs, `vocab` and `vectors`".into());
        }
        Ok(())
    }

    fn run(&self, job: &Job) -> Result<(), StageError> {
        let p = Embed::spec(job.params)?;
        let vocab_path = &job.inputs["vocab"];
        let vocab = Vocab::read(vocab_path)?;
        let (emb, coverage) = kimcnn_embed::extract(&vocab, &job.inputs["vectors"], "input `vectors`", &p)?;
        let vocab_hash = kimcnn_store::hash_file(vocab_path)?;
        emb.write(&job.outputs["embeddings"], &json!({ "vocab_blake3": vocab_hash.as_str(), "coverage": &coverage }))?;
        write_json(&job.outputs["coverage"], &coverage)
    }
}
