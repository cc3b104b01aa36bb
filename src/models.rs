//! `kimcnn predict` and `kimcnn models`: using and managing trained models.
//! Neither loads libtorch here: `predict` hands the work to the worker.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use kimcnn_schema::{Config, Metrics, ModelMeta};
use kimcnn_store::{Lockfile, ObjectId, RunRecord, Store};
use serde_json::Value;

use crate::Failure;

fn fail(m: impl Into<String>) -> Failure {
    Failure(m.into(), 1)
}

/// The metadata of a model file (its header only; no libtorch).
pub fn model_meta(path: &Path) -> Result<ModelMeta, Failure> {
    ModelMeta::read(path).map_err(|e| fail(format!("{}: not a kimcnn model ({})", path.display(), e.message)))
}

/// Finds a model (a stage name in pipeline.lock, a model hash or prefix, or a
/// file) and the vocabulary it was trained with.
pub fn resolve(store: &Store, lock: &Lockfile, what: &str) -> Result<(PathBuf, PathBuf), Failure> {
    if let Some(e) = lock.stages.get(what) {
        let m = e.outputs.get("model").ok_or_else(|| fail(format!("stage `{what}` has no `model` output")))?;
        let v = e.inputs.get("vocab").ok_or_else(|| fail(format!("stage `{what}` has no `vocab` input")))?;
        return Ok((store.object_path(m), store.object_path(v)));
    }
    let path = if Path::new(what).is_file() {
        PathBuf::from(what)
    } else if let Some(rec) = find_train_run(store, what)? {
        store.object_path(&rec.outputs["model"])
    } else {
        return Err(Failure(format!("no model `{what}`: give a train stage (see `kimcnn models`), a model hash, or a model file"), 2));
    };
    let meta = model_meta(&path)?;
    let vocab_hash = ObjectId::parse(&meta.vocab_blake3);
    let beside = path.with_file_name("vocab.parquet");
    let vocab = match vocab_hash.map(|h| store.object_path(&h)) {
        Some(p) if p.is_file() => p,
        _ if beside.is_file() => beside,
        _ => return Err(fail(format!("{}: its vocabulary is neither in the store nor beside it as vocab.parquet", path.display()))),
    };
    Ok((path, vocab))
}

fn find_train_run(store: &Store, prefix: &str) -> Result<Option<RunRecord>, Failure> {
    if prefix.len() < 6 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let hits: Vec<RunRecord> = store
        .runs()?
        .into_iter()
        .filter(|r| r.kind == "train" && r.outputs.get("model").is_some_and(|m| m.as_str().starts_with(prefix)))
        .collect();
    match hits.len() {
        0 => Ok(None),
        1 => Ok(hits.into_iter().next()),
        n => Err(Failure(format!("`{prefix}` matches {n} models; give more of the hash"), 2)),
    }
}

pub fn predict(store: &Store, lock: &Lockfile, model: &str, json: bool, device: &str, sentences: &[String]) -> Result<ExitCode, Failure> {
    let (model, vocab) = resolve(store, lock, model)?;
    model_meta(&model)?;
    let mut cmd = Command::new(kimcnn_cnn::worker_path().map_err(fail)?);
    cmd.arg("predict").arg("--model").arg(&model).arg("--vocab").arg(&vocab).arg("--device").arg(device);
    if json {
        cmd.arg("--json");
    }
    let status = if sentences.is_empty() {
        cmd.status()
    } else {
        let mut child = cmd.stdin(Stdio::piped()).spawn().map_err(|e| fail(format!("cannot start the torch worker: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped");
        for s in sentences {
            let _ = writeln!(stdin, "{s}");
        }
        drop(stdin);
        child.wait()
    }
    .map_err(|e| fail(format!("cannot start the torch worker: {e}")))?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

struct ModelRow {
    rec: RunRecord,
    meta: ModelMeta,
    test: Option<Metrics>,
    size: u64,
}

/// The trained models in the store, with their evaluations. A model whose
/// metadata cannot be read is named in a warning and left out.
fn models_in(store: &Store) -> Result<Vec<ModelRow>, Failure> {
    let runs = store.runs()?;
    let mut metrics: BTreeMap<ObjectId, Metrics> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.kind == "evaluate") {
        if let (Some(m), Some(out)) = (r.inputs.get("model"), r.outputs.get("metrics")) {
            let path = store.object_path(out);
            if path.is_file() {
                match kimcnn_schema::read_json::<Metrics>(&path) {
                    Ok(x) => {
                        metrics.insert(m.clone(), x);
                    }
                    Err(e) => eprintln!("warning: the metrics of stage `{}` are unreadable: {e}", r.stage),
                }
            }
        }
    }
    let mut rows = Vec::new();
    for rec in runs.into_iter().filter(|r| r.kind == "train") {
        let Some(model) = rec.outputs.get("model") else { continue };
        let path = store.object_path(model);
        let Ok(file) = std::fs::metadata(&path) else { continue };
        match ModelMeta::read(&path) {
            Ok(meta) => rows.push(ModelRow { test: metrics.get(model).cloned(), meta, size: file.len(), rec }),
            Err(e) => eprintln!("warning: model {} of stage `{}` is unreadable ({e})", model.short(), rec.stage),
        }
    }
    rows.sort_by(|a, b| a.rec.stage.cmp(&b.rec.stage).then(a.rec.finished.cmp(&b.rec.finished)));
    Ok(rows)
}

/// The params of a config that differ from the defaults, as `k=v`.
fn non_defaults(c: &Config) -> Vec<String> {
    let (Ok(Value::Object(mine)), Ok(Value::Object(def))) = (serde_json::to_value(c), serde_json::to_value(Config::default())) else {
        return Vec::new();
    };
    mine.iter()
        .filter(|(k, v)| !["dataset", "variant", "fold", "epochs"].contains(&k.as_str()) && def.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

pub fn list(store: &Store) -> Result<ExitCode, Failure> {
    let rows = models_in(store)?;
    if rows.is_empty() {
        println!("no trained models in the store (run a train stage: `kimcnn run train.trec`)");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12}  {:<30}  {:<6}  {:<12}  {:>4}  {:>6}  {:>7}  {:>7}  {:>8}  {:<6}  params",
        "model", "stage", "data", "variant", "fold", "epochs", "dev %", "test %", "size", "device"
    );
    for r in rows {
        let c = &r.meta.config;
        let pct = |v: Option<f64>| v.map(|x| format!("{:.1}", 100.0 * x)).unwrap_or_else(|| "-".into());
        println!(
            "{:<12}  {:<30}  {:<6}  {:<12}  {:>4}  {:>6}  {:>7}  {:>7}  {:>6.1}MB  {:<6}  {}",
            r.rec.outputs["model"].short(),
            r.rec.stage,
            c.dataset,
            c.variant.to_string(),
            c.fold.map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
            format!("{}/{}", r.meta.best_epoch, c.epochs),
            pct(Some(r.meta.best_dev_accuracy)),
            pct(r.test.as_ref().map(|t| t.accuracy)),
            r.size as f64 / 1e6,
            r.meta.device.as_deref().unwrap_or("-"),
            non_defaults(c).join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies a model out with what it needs elsewhere: the weights, its
/// vocabulary, how it cleans text (`cleaning.json`), its trained subword
/// tokenizer if it has one (`tokenizer.json`, Hugging Face's format) and (if
/// evaluated) its test metrics.
pub fn export(store: &Store, lock: &Lockfile, what: &str, dir: &Path) -> Result<ExitCode, Failure> {
    let (model, vocab) = resolve(store, lock, what)?;
    let meta = model_meta(&model)?;
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let files = ["model.safetensors", "vocab.parquet", "cleaning.json", "tokenizer.json", "config.json", "metrics.json"];
    for f in files {
        if dir.join(f).exists() {
            return Err(Failure(format!("{}: already holds {f}; export into an empty directory", dir.display()), 2));
        }
    }
    let copy =
        |from: &Path, name: &str| std::fs::copy(from, dir.join(name)).map_err(|e| fail(format!("{}: {e}", dir.join(name).display())));
    copy(&model, "model.safetensors")?;
    copy(&vocab, "vocab.parquet")?;
    let write = |name: &str, v: &Value| {
        std::fs::write(dir.join(name), format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()))
            .map_err(|e| fail(format!("{}: {e}", dir.join(name).display())))
    };
    let mut written = vec!["model.safetensors", "vocab.parquet", "cleaning.json"];
    let mut cleaning = meta.tokenizer.clone();
    if let Some(sub) = cleaning.as_mut().and_then(|t| t.subword.take()) {
        std::fs::write(dir.join("tokenizer.json"), &sub.json)
            .map_err(|e| fail(format!("{}: {e}", dir.join("tokenizer.json").display())))?;
        written.push("tokenizer.json");
    }
    write("cleaning.json", &serde_json::to_value(&cleaning).unwrap_or_default())?;
    let mut config = serde_json::to_value(&meta).unwrap_or_default();
    // The tokenizer is its own file; config.json names it by hash.
    if let Some(sub) = config.pointer_mut("/tokenizer/subword").and_then(Value::as_object_mut) {
        sub.remove("json");
    }
    write("config.json", &config)?;
    written.push("config.json");
    let model_id = kimcnn_store::hash_file(&model)?;
    if let Some(row) = models_in(store)?.into_iter().find(|r| r.rec.outputs["model"] == model_id) {
        if let Some(t) = row.test {
            write("metrics.json", &serde_json::to_value(&t).unwrap_or_default())?;
            written.push("metrics.json");
        }
    }
    println!(
        "exported model {} to {} ({}); use it with `kimcnn predict --model {}/model.safetensors`",
        model_id.short(),
        dir.display(),
        written.join(", "),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
