//! The `train` and `evaluate` stage runs.

use std::path::Path;

use kimcnn_embed::Embeddings;
use kimcnn_tokenize::TokensTable;
use kimcnn_train::{Dataset, SavedModel};
use kimcnn_vocab::Vocab;
use serde_json::{json, Value};
use tch::{Kind, Tensor};

use crate::job::{WorkerJob, PROGRESS};

type R<T> = Result<T, String>;

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

pub fn run(kind: &str, job_file: Option<&str>) -> R<()> {
    let job_file = job_file.ok_or("no job file")?;
    let text = std::fs::read_to_string(job_file).map_err(|e| format!("{job_file}: {e}"))?;
    let job: WorkerJob = serde_json::from_str(&text).map_err(|e| format!("{job_file}: {e}"))?;
    tch::set_num_threads(job.threads.max(1) as i32);
    let device = kimcnn_train::parse_device(&job.device).map_err(s)?;
    match kind {
        "train" => train(&job, device),
        _ => evaluate(&job, device),
    }
}

fn input<'a>(job: &'a WorkerJob, name: &str) -> R<&'a Path> {
    job.inputs.get(name).map(|p| p.as_path()).ok_or_else(|| format!("no input `{name}`"))
}

fn train(job: &WorkerJob, device: tch::Device) -> R<()> {
    let (cfg, dataset) = kimcnn_cnn_config::train_params(&job.params).map_err(s)?;
    let table = TokensTable::read(input(job, "tokens")?).map_err(s)?;
    let vocab_path = input(job, "vocab")?;
    let vocab = Vocab::read(vocab_path).map_err(s)?;
    let vocab_hash = kimcnn_store::hash_file(vocab_path).map_err(s)?;
    let (emb, emeta) = Embeddings::read(input(job, "embeddings")?).map_err(s)?;
    if emb.matrix.nrows() != vocab.len() || emeta["vocab_blake3"].as_str() != Some(vocab_hash.as_str()) {
        return Err(format!(
            "the embeddings ({} rows) were not built from this vocabulary ({} words): wire the embed stage of the same vocab",
            emb.matrix.nrows(),
            vocab.len()
        ));
    }
    let tokenizer = match job.inputs.get("tokenizer") {
        Some(p) => {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(p).map_err(s)?).map_err(s)?;
            json!({"cleaner": v["cleaner"], "lower": v["lower"], "kim_quirk": v.get("kim_quirk").cloned().unwrap_or(json!(false))})
        }
        None => Value::Null,
    };
    let data = Dataset::new(&table, &vocab, &cfg).map_err(s)?;
    let cov = &emeta["coverage"];
    let (unk_init, unk_scale) = (cov["unk_init"].as_str().unwrap_or("uniform").to_string(), cov["unk_scale"].as_f64().unwrap_or(0.25));
    let rand_a = cfg.rand_a.unwrap_or(if unk_init == "uniform" { unk_scale } else { (3.0 * cov["pretrained_entry_var"].as_f64().unwrap_or(0.02)).sqrt() });
    // CNN-rand draws every word from U[-a, a]; the others only the unknown words.
    let init_name = if cfg.variant == kimcnn_train::Variant::Rand { format!("uniform a={rand_a:.3}") } else { format!("{unk_init} a={unk_scale:.3}") };
    let (v, d) = emb.matrix.dim();
    let flat: Vec<f32> = emb.matrix.iter().copied().collect();
    let init = Tensor::from_slice(&flat).view([v as i64, d as i64]).to_kind(Kind::Float);
    let t0 = std::time::Instant::now();
    let out = kimcnn_train::train(&data, &init, rand_a, &cfg, device, &mut |e| {
        println!("{PROGRESS}{}", serde_json::to_string(e).unwrap_or_default());
    })
    .map_err(s)?;
    let meta = json!({
        "config": cfg,
        "classes": data.classes,
        "dataset": dataset,
        "vocab_blake3": vocab_hash.as_str(),
        "tokenizer": tokenizer,
        "init": init_name,
        "best_epoch": out.best_epoch,
        "best_dev_accuracy": out.best_dev_accuracy,
    });
    kimcnn_train::save_model(&job.outputs["model"], &out.model, &meta).map_err(s)?;
    kimcnn_train::write_history(&job.outputs["history"], &out.history).map_err(s)?;
    let mut rates: Vec<f64> = out.history.iter().map(|e| e.sentences_per_s).collect();
    rates.sort_by(f64::total_cmp);
    let summary = json!({
        "dataset": dataset,
        "variant": cfg.variant,
        "fold": cfg.fold,
        "best_epoch": out.best_epoch,
        "best_dev_accuracy": out.best_dev_accuracy,
        "epochs_run": out.history.len(),
        "train": data.train.len(), "dev": data.dev.len(), "test": data.test.len(),
        "classes": data.classes,
        "max_len": data.max_len,
        "truncated_sentences": data.truncated,
        "empty_sentences": data.empty,
        "unknown_tokens": data.unknown_tokens,
        "init": init_name,
        "device": kimcnn_train::device_name(device),
        "threads": tch::get_num_threads(),
        "seconds": t0.elapsed().as_secs_f64(),
        "median_train_sentences_per_s": rates.get(rates.len() / 2),
    });
    write_json(&job.outputs["summary"], &summary)
}

fn write_json(path: &Path, v: &Value) -> R<()> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(s)?;
    bytes.push(b'\n');
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Loads a model and checks it was trained on `vocab_path`'s vocabulary.
pub fn load_checked(model: &Path, vocab_path: &Path, device: tch::Device) -> R<(SavedModel, Vocab)> {
    let saved = kimcnn_train::load_model(model, device).map_err(s)?;
    let vocab_hash = kimcnn_store::hash_file(vocab_path).map_err(s)?;
    if saved.meta["vocab_blake3"].as_str() != Some(vocab_hash.as_str()) {
        return Err(format!(
            "the model was trained with another vocabulary (model: {}, given: {})",
            saved.meta["vocab_blake3"].as_str().map(|h| &h[..12.min(h.len())]).unwrap_or("?"),
            vocab_hash.short()
        ));
    }
    let vocab = Vocab::read(vocab_path).map_err(s)?;
    if saved.model.emb.size()[0] != vocab.len() as i64 {
        return Err("the model's embedding does not match the vocabulary's size".into());
    }
    Ok((saved, vocab))
}

fn evaluate(job: &WorkerJob, device: tch::Device) -> R<()> {
    let (saved, vocab) = load_checked(input(job, "model")?, input(job, "vocab")?, device)?;
    let table = TokensTable::read(input(job, "tokens")?).map_err(s)?;
    let data = Dataset::new(&table, &vocab, &saved.config).map_err(s)?;
    if data.classes != saved.classes {
        return Err(format!("the model's classes ({}) differ from the data's ({})", saved.classes.join(", "), data.classes.join(", ")));
    }
    let (preds, m) = kimcnn_train::evaluate(&saved.model, &data, &data.test, &saved.config, device);
    kimcnn_train::write_predictions(&job.outputs["predictions"], &preds).map_err(s)?;
    let cfg = &saved.config;
    let metrics = json!({
        "dataset": saved.meta["dataset"],
        "variant": cfg.variant,
        "fold": cfg.fold.unwrap_or(-1),
        "seed": cfg.seed,
        "pad": cfg.pad,
        "init": saved.meta["init"],
        "epochs": cfg.epochs,
        "best_epoch": saved.meta["best_epoch"],
        "best_dev_accuracy": saved.meta["best_dev_accuracy"],
        "accuracy": m.accuracy,
        "macro_f1": m.macro_f1,
        "n": m.n,
        "per_class": m.per_class,
        "confusion": m.confusion,
        "classes": data.classes,
    });
    write_json(&job.outputs["metrics"], &metrics)
}
