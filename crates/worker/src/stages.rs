//! The `train` and `evaluate` stage runs: a job file in, a result file out.

use std::path::Path;

use kimcnn_embed::Embeddings;
use kimcnn_schema::worker::{BatchProgress, EpochProgress, WorkerJob, WorkerResult, BATCH, NOTE, PROGRESS};
use kimcnn_schema::{
    effective_numerics, Config, EvaluateParams, Metrics, ModelMeta, Numerics, NumericsRecord, RandA, TokenizeSummary, TrainSummary,
    TrainTimings, Variant,
};
use kimcnn_tokenize::TokensTable;
use kimcnn_train::{Checkpointing, Dataset, SavedModel, TrainError, TrainEvent};
use kimcnn_vocab::Vocab;
use serde::de::DeserializeOwned;
use tch::{Kind, Tensor};

use crate::numerics;

/// How a run failed: the result file's outcome.
type R<T> = Result<T, WorkerResult>;

/// An input or param it cannot use.
fn bad<E: std::fmt::Display>(e: E) -> WorkerResult {
    WorkerResult::BadInput { message: e.to_string() }
}

/// Anything else: libtorch, an output that cannot be written.
fn failed<E: std::fmt::Display>(e: E) -> WorkerResult {
    WorkerResult::Failed { message: e.to_string() }
}

/// Training's errors: a non-finite loss diverged; a config, data or model
/// file it cannot use is a bad input; libtorch failed.
fn train_error(e: TrainError) -> WorkerResult {
    match e {
        TrainError::NonFinite { epoch, batch, value } => WorkerResult::Diverged { epoch, batch, loss: value.to_string() },
        TrainError::Torch(_) | TrainError::Checkpoint { .. } => failed(e),
        TrainError::Invalid(_) | TrainError::Config(_) | TrainError::File { .. } => bad(e),
    }
}

/// Runs one stage; the outcome goes to the job's result file. Fails only
/// when there is no job to run or no result file to write.
pub fn run(kind: &str, job_file: Option<&str>) -> Result<(), String> {
    let job_file = Path::new(job_file.ok_or("no job file")?);
    match kind {
        "train" => run_job(job_file, |p: &Config| p.numerics, train),
        "evaluate" => run_job(job_file, |p: &EvaluateParams| p.numerics, evaluate),
        other => Err(format!("no stage kind `{other}` in this worker")),
    }
}

/// Runs a job in its numerics mode (re-executing this process with the
/// pinned environment first, where it needs one).
fn run_job<P: DeserializeOwned>(
    job_file: &Path,
    mode: fn(&P) -> Numerics,
    f: fn(&WorkerJob<P>, tch::Device, &NumericsRecord) -> R<String>,
) -> Result<(), String> {
    let job: WorkerJob<P> = kimcnn_schema::read_json(job_file).map_err(|e| e.to_string())?;
    let mode = effective_numerics(mode(&job.params), &job.device);
    let result = match numerics::enter(mode).and_then(|()| numerics::device(mode, &job.device)).map_err(bad) {
        Err(e) => e,
        Ok(device) => {
            tch::set_num_threads(job.threads.max(1) as i32);
            let numerics = numerics::record(mode);
            match kimcnn_train::parse_device(device).map_err(train_error).and_then(|device| f(&job, device, &numerics)) {
                Ok(device) => WorkerResult::Done { device, numerics: Some(numerics) },
                Err(e) => e,
            }
        }
    };
    kimcnn_schema::write_json(&job.result, &result).map_err(|e| e.to_string())?;
    match result {
        WorkerResult::Done { .. } => Ok(()),
        WorkerResult::BadInput { message } | WorkerResult::Failed { message } => Err(message),
        WorkerResult::Diverged { epoch, batch, loss } => Err(format!("epoch {epoch} batch {batch}: the loss is {loss}")),
    }
}

fn input<'a, P>(job: &'a WorkerJob<P>, name: &str) -> R<&'a Path> {
    job.inputs.get(name).map(|p| p.as_path()).ok_or_else(|| bad(format!("no input `{name}`")))
}

fn output<'a, P>(job: &'a WorkerJob<P>, name: &str) -> R<&'a Path> {
    job.outputs.get(name).map(|p| p.as_path()).ok_or_else(|| bad(format!("no output `{name}` in the job")))
}

fn train(job: &WorkerJob<Config>, device: tch::Device, numerics: &NumericsRecord) -> R<String> {
    let cfg = &job.params;
    for o in ["model", "history", "summary", "timings"] {
        output(job, o)?;
    }
    let table = TokensTable::read(input(job, "tokens")?).map_err(bad)?;
    let vocab_path = input(job, "vocab")?;
    let vocab = Vocab::read(vocab_path).map_err(bad)?;
    let vocab_hash = kimcnn_store::hash_file(vocab_path).map_err(bad)?;
    let (emb, emeta) = Embeddings::read(input(job, "embeddings")?).map_err(bad)?;
    if emb.matrix.nrows() != vocab.len() || emeta.vocab_blake3 != vocab_hash.as_str() {
        return Err(bad(format!(
            "the embeddings ({} rows) were not built from this vocabulary ({} words): wire the embed stage of the same vocab",
            emb.matrix.nrows(),
            vocab.len()
        )));
    }
    let tokenizer = match job.inputs.get("tokenizer") {
        Some(p) => Some(kimcnn_schema::read_json::<TokenizeSummary>(p).map_err(|e| bad(format!("input `tokenizer`: {e}")))?.tokenizer),
        None => None,
    };
    let data = Dataset::new(&table, &vocab, cfg).map_err(train_error)?;
    let cov = &emeta.coverage;
    let rand_a = match cfg.rand_a {
        RandA::Fixed(a) => a,
        RandA::Matched => cov.matched_bound(),
    };
    // CNN-rand draws every word from U[-a, a]; the others only the unknown words.
    let init =
        if cfg.variant == Variant::Rand { format!("uniform a={rand_a:.3}") } else { format!("{} a={:.3}", cov.unk_init, cov.unk_scale) };
    let (v, d) = emb.matrix.dim();
    let flat: Vec<f32> = emb.matrix.iter().copied().collect();
    let matrix = Tensor::from_slice(&flat).view([v as i64, d as i64]).to_kind(Kind::Float);
    let t0 = std::time::Instant::now();
    // A checkpoint is used only by a run on the same device, threads and
    // numerics: they change the bytes, not the key.
    let context = format!(
        "device {}, {} threads, numerics {} (ISA {}, libtorch {}, MKL {})",
        kimcnn_train::device_name(device),
        tch::get_num_threads(),
        numerics.mode,
        numerics.isa,
        numerics.torch,
        numerics.mkl
    );
    let checkpoint = job.checkpoint.as_deref().map(|path| Checkpointing { path, context });
    // A few batch lines a second at most: the pipe is for the display's bar.
    let mut last_batch_line = std::time::Instant::now();
    let out = kimcnn_train::train(&data, &matrix, rand_a, cfg, device, checkpoint.as_ref(), &mut |e| match e {
        TrainEvent::Batch { epoch, batch, batches } => {
            if batch < batches && last_batch_line.elapsed().as_millis() >= 250 {
                last_batch_line = std::time::Instant::now();
                let line = BatchProgress { epoch, epochs: cfg.epochs, batch, batches };
                println!("{BATCH}{}", serde_json::to_string(&line).unwrap_or_default());
            }
        }
        TrainEvent::Resumed { epoch } => println!("{NOTE}resumed after epoch {epoch}, from its checkpoint"),
        TrainEvent::Unusable(why) => {
            println!("{NOTE}its checkpoint is not used ({}); training from the first epoch", why.replace('\n', " "))
        }
        TrainEvent::Epoch(row, timing) => {
            let line = EpochProgress { row: row.clone(), timing: timing.clone() };
            println!("{PROGRESS}{}", serde_json::to_string(&line).unwrap_or_default());
            // Tests kill the worker here: its checkpoint holds this epoch.
            kimcnn_store::kill_point(&format!("train:epoch-{}", row.epoch));
        }
    })
    .map_err(train_error)?;
    let (device, threads) = (kimcnn_train::device_name(device), tch::get_num_threads() as usize);
    let meta = ModelMeta {
        config: cfg.clone(),
        classes: data.classes.clone(),
        vocab_blake3: vocab_hash.to_string(),
        tokenizer,
        init: init.clone(),
        best_epoch: out.best_epoch,
        best_dev_accuracy: out.best_dev_accuracy,
        device: Some(device.clone()),
        threads: Some(threads),
        numerics: Some(numerics.clone()),
    };
    kimcnn_train::save_model(output(job, "model")?, &out.model, &meta).map_err(failed)?;
    kimcnn_schema::write_history(output(job, "history")?, &out.history).map_err(failed)?;
    let mut rates: Vec<f64> = out.timings.iter().map(|e| e.sentences_per_s).collect();
    rates.sort_by(f64::total_cmp);
    let summary = TrainSummary {
        dataset: cfg.dataset.clone(),
        variant: cfg.variant,
        fold: cfg.fold,
        best_epoch: out.best_epoch,
        best_dev_accuracy: out.best_dev_accuracy,
        epochs_run: out.history.len(),
        train: data.train.len(),
        dev: data.dev.len(),
        test: data.test.len(),
        classes: data.classes.clone(),
        max_len: data.max_len,
        truncated_sentences: data.truncated,
        empty_sentences: data.empty,
        unknown_tokens: data.unknown_tokens,
        init,
        device: device.clone(),
        threads,
        numerics: numerics.clone(),
    };
    kimcnn_schema::write_json(output(job, "summary")?, &summary).map_err(failed)?;
    let timings =
        TrainTimings { seconds: t0.elapsed().as_secs_f64(), median_train_sentences_per_s: rates[rates.len() / 2], epochs: out.timings };
    kimcnn_schema::write_json(output(job, "timings")?, &timings).map_err(failed)?;
    Ok(device)
}

/// Loads a model and checks it was trained on `vocab_path`'s vocabulary.
pub fn load_checked(model: &Path, vocab_path: &Path, device: tch::Device) -> Result<(SavedModel, Vocab), String> {
    let saved = kimcnn_train::load_model(model, device).map_err(|e| e.to_string())?;
    let vocab_hash = kimcnn_store::hash_file(vocab_path).map_err(|e| e.to_string())?;
    if saved.meta.vocab_blake3 != vocab_hash.as_str() {
        return Err(format!(
            "the model was trained with another vocabulary (model: {}, given: {})",
            &saved.meta.vocab_blake3[..12.min(saved.meta.vocab_blake3.len())],
            vocab_hash.short()
        ));
    }
    let vocab = Vocab::read(vocab_path).map_err(|e| e.to_string())?;
    if saved.model.emb.size()[0] != vocab.len() as i64 {
        return Err("the model's embedding does not match the vocabulary's size".into());
    }
    Ok((saved, vocab))
}

fn evaluate(job: &WorkerJob<EvaluateParams>, device: tch::Device, _: &NumericsRecord) -> R<String> {
    let (saved, vocab) = load_checked(input(job, "model")?, input(job, "vocab")?, device).map_err(bad)?;
    let table = TokensTable::read(input(job, "tokens")?).map_err(bad)?;
    let cfg = &saved.meta.config;
    let data = Dataset::new(&table, &vocab, cfg).map_err(train_error)?;
    if data.classes != saved.meta.classes {
        return Err(bad(format!(
            "the model's classes ({}) differ from the data's ({})",
            saved.meta.classes.join(", "),
            data.classes.join(", ")
        )));
    }
    let (preds, confusion) = kimcnn_train::evaluate(&saved.model, &data, &data.test, cfg, device);
    kimcnn_schema::write_predictions(output(job, "predictions")?, &preds).map_err(failed)?;
    let metrics = Metrics::from_confusion(&saved.meta, confusion);
    kimcnn_schema::write_json(output(job, "metrics")?, &metrics).map_err(failed)?;
    Ok(kimcnn_train::device_name(device))
}
