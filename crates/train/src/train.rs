use std::collections::HashMap;
use std::time::Instant;

use kimcnn_schema::{EpochRow, EpochTiming};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, epoch_seed, Checkpoint, Checkpointing, Counters};
use crate::optim::{clip_grad_norm, BatchRows, LazyAdadelta, Optimizer};
use crate::{Config, Dataset, KimCnn, OptimizerKind, Result, TrainError, Variant};

#[derive(Debug)]
pub struct TrainOutcome {
    /// The weights of the best-dev epoch.
    pub model: KimCnn,
    pub history: Vec<EpochRow>,
    /// How long each epoch's training took.
    pub timings: Vec<EpochTiming>,
    pub best_epoch: usize,
    pub best_dev_accuracy: f64,
}

/// What the loop tells its caller as it goes.
#[derive(Debug)]
pub enum TrainEvent<'a> {
    /// It goes on from a checkpoint after `epoch`; those epochs come as
    /// [`TrainEvent::Epoch`] first, as they were.
    Resumed { epoch: usize },
    /// A checkpoint it found and could not use (why); it starts over.
    Unusable(String),
    /// A batch of `epoch` ended (`batch` of `batches`).
    Batch { epoch: usize, batch: usize, batches: usize },
    /// An epoch ended (or was restored from the checkpoint).
    Epoch(&'a EpochRow, &'a EpochTiming),
}

/// Trains Kim's CNN. `init` is the embedding matrix [V, D] from the embed
/// stage; CNN-rand replaces every row with U[-a, a] (`rand_a`). Model
/// selection is on dev accuracy only (ties: the later epoch, as Kim's `>=`).
/// With `checkpoint`, each finished epoch is saved there before it is
/// reported, and a run that finds one goes on after its epoch, to the same
/// bytes as a run never stopped. `on_event` sees each epoch as it ends.
pub fn train(
    data: &Dataset,
    init: &Tensor,
    rand_a: f64,
    cfg: &Config,
    device: Device,
    checkpoint: Option<&Checkpointing>,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainOutcome> {
    cfg.clone().check().map_err(TrainError::Config)?;
    let fresh = || {
        reseed(cfg.seed as i64, device);
        let init = if cfg.variant == Variant::Rand {
            let mut m = Tensor::empty(init.size(), (Kind::Float, Device::Cpu));
            let _ = m.uniform_(-rand_a, rand_a);
            let _ = m.get(0).fill_(0.0);
            m
        } else {
            init.shallow_clone()
        };
        let model = KimCnn::new(&init, data.classes.len() as i64, cfg, device);
        // Adadelta updates a fine-tuned embedding row by row (see LazyAdadelta);
        // the other optimizers update it whole, with the rest.
        let lazy = (model.tunes_embedding() && cfg.optimizer == OptimizerKind::Adadelta).then(|| LazyAdadelta::new(&model.emb, cfg));
        let params = model.trainable(lazy.is_none());
        let opt = Optimizer::new(&params, cfg);
        (model, lazy, params, opt, ChaCha8Rng::seed_from_u64(cfg.seed))
    };
    let (mut model, mut lazy, mut params, mut opt, mut rng) = fresh();
    let (mut history, mut timings) = (Vec::new(), Vec::new());
    let mut best: Option<(usize, f64, KimCnn)> = None;
    let mut since_best = 0;
    let config_json = serde_json::to_string(cfg).map_err(|e| TrainError::Invalid(e.to_string()))?;
    if let Some(Checkpointing { path, context }) = checkpoint {
        match Checkpoint::load(path, &config_json, context) {
            Ok(None) => {}
            Ok(Some(c)) => match restore(&c, &model, &mut opt, lazy.as_mut(), &mut rng) {
                Ok(b) => {
                    on_event(TrainEvent::Resumed { epoch: c.counters.epoch });
                    for (e, t) in c.history.iter().zip(&c.timings) {
                        on_event(TrainEvent::Epoch(e, t));
                    }
                    (history, timings, best, since_best) = (c.history, c.timings, Some(b), c.counters.since_best);
                }
                Err(e) => {
                    on_event(TrainEvent::Unusable(format!("{}: {e}", path.display())));
                    // Half restored: start from scratch.
                    (model, lazy, params, opt, rng) = fresh();
                }
            },
            Err(e) => on_event(TrainEvent::Unusable(e.to_string())),
        }
    }
    // Stopped by patience: after an epoch that did not improve, `since_best` of them in a row.
    let patience_hit = |since_best: usize| since_best > 0 && cfg.patience.is_some_and(|p| since_best >= p);
    let first = history.len() + 1;
    for epoch in first..=cfg.epochs {
        if patience_hit(since_best) {
            break;
        }
        // Dropout's draws follow from (seed, epoch) alone, so a checkpoint
        // needs no libtorch generator state (it has none to give).
        reseed(epoch_seed(cfg.seed, epoch), device);
        let t0 = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0i64, 0usize);
        let batches = data.epoch_batches(cfg.batch, cfg.pad, &mut rng);
        for (b, rows) in batches.iter().enumerate() {
            let x = data.batch(rows, cfg.pad, &cfg.widths, device);
            let y = data.label_tensor(rows, device);
            let tuned = lazy.as_ref().map(|_| BatchRows::gather(&model.emb, &x.tokens));
            let logits = match &tuned {
                Some(r) => model.forward_tuned(&x, &r.rows, &r.local, true),
                None => model.forward(&x, true),
            };
            let loss = logits.cross_entropy_for_logits(&y);
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                return Err(TrainError::NonFinite { epoch, batch: b + 1, value });
            }
            // Fresh gradients each step (as PyTorch's zero_grad(set_to_none=True)):
            // nothing accumulates in .grad, so nothing needs zeroing.
            let wrt: Vec<&Tensor> = tuned.iter().map(|r| &r.rows).chain(&params).collect();
            let grads = Tensor::f_run_backward(&[&loss], &wrt, false, false)?;
            if cfg.clip > 0.0 {
                clip_grad_norm(&grads, cfg.clip);
            }
            match (&mut lazy, &tuned) {
                (Some(l), Some(r)) => {
                    l.step(&model.emb, r, &grads[0]);
                    opt.step(&params, &grads[1..]);
                }
                _ => opt.step(&params, &grads),
            }
            if cfg.max_norm > 0.0 {
                model.apply_max_norm(cfg.max_norm);
            }
            loss_sum += value * rows.len() as f64;
            correct += logits.argmax(1, false).eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
            seen += rows.len();
            on_event(TrainEvent::Batch { epoch, batch: b + 1, batches: batches.len() });
        }
        let seconds = t0.elapsed().as_secs_f64();
        let (dev_loss, dev_accuracy) = loss_and_accuracy(&model, data, &data.dev, cfg, device);
        // Scored for the record (studies read it per epoch); selection below is on dev only.
        let test_accuracy = if data.test.is_empty() { f64::NAN } else { loss_and_accuracy(&model, data, &data.test, cfg, device).1 };
        history.push(EpochRow {
            epoch,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            dev_loss,
            dev_accuracy,
            test_accuracy,
        });
        timings.push(EpochTiming { epoch, seconds, sentences_per_s: seen as f64 / seconds });
        if best.as_ref().is_none_or(|(_, acc, _)| dev_accuracy >= *acc) {
            best = Some((epoch, dev_accuracy, model.snapshot()));
            since_best = 0;
        } else {
            since_best += 1;
        }
        if let Some(Checkpointing { path, context }) = checkpoint {
            let (best_epoch, _, best_model) = best.as_ref().expect("set above");
            let counters = Counters {
                version: checkpoint::VERSION,
                config: config_json.clone(),
                context: context.clone(),
                epoch,
                best_epoch: *best_epoch,
                since_best,
                rng_word_pos: rng.get_word_pos().to_string(),
                optimizer_step: opt.step_count(),
                lazy_step: lazy.as_ref().map_or(0, LazyAdadelta::step_count),
            };
            let best_model = (*best_epoch != epoch).then_some(best_model);
            let tensors = state_tensors(&model, best_model, &opt, lazy.as_ref());
            Checkpoint { counters, tensors, history: history.clone(), timings: timings.clone() }.save(path)?;
        }
        on_event(TrainEvent::Epoch(history.last().expect("pushed"), timings.last().expect("pushed")));
    }
    let (best_epoch, best_dev_accuracy, model) = best.expect("at least one epoch");
    Ok(TrainOutcome { model, history, timings, best_epoch, best_dev_accuracy })
}

/// Seeds libtorch's generators (the CPU's, and CUDA's where it runs).
fn reseed(seed: i64, device: Device) {
    tch::manual_seed(seed);
    if let Device::Cuda(_) = device {
        tch::Cuda::manual_seed_all(seed as u64);
    }
}

/// The weights a checkpoint keeps, by `prefix/name`: all but the frozen
/// embeddings (CNN-static's, multichannel's static copy), which a fresh
/// model has as they were.
fn named(prefix: &str, model: &KimCnn) -> HashMap<String, Tensor> {
    let frozen = |n: &str| n == "embedding_static" || (n == "embedding" && !model.tunes_embedding());
    model.named().into_iter().filter(|(n, _)| !frozen(n)).map(|(n, t)| (format!("{prefix}/{n}"), t)).collect()
}

/// What a checkpoint keeps besides counters: the weights, the best epoch's
/// (unless they are the current ones) and the optimizers' state.
fn state_tensors(model: &KimCnn, best: Option<&KimCnn>, opt: &Optimizer, lazy: Option<&LazyAdadelta>) -> HashMap<String, Tensor> {
    let mut tensors = named("model", model);
    if let Some(b) = best {
        tensors.extend(named("best", b));
    }
    for (i, (a, b)) in opt.state().iter().enumerate() {
        tensors.insert(format!("opt/{i}/a"), a.shallow_clone());
        tensors.insert(format!("opt/{i}/b"), b.shallow_clone());
    }
    if let Some(l) = lazy {
        tensors.extend(l.state().into_iter().map(|(n, t)| (format!("lazy/{n}"), t)));
    }
    tensors
}

/// Puts a checkpoint's state into a fresh run's model, optimizers and
/// shuffle stream; returns the best epoch so far with its weights.
fn restore(
    c: &Checkpoint,
    model: &KimCnn,
    opt: &mut Optimizer,
    lazy: Option<&mut LazyAdadelta>,
    rng: &mut ChaCha8Rng,
) -> Result<(usize, f64, KimCnn)> {
    let n = &c.counters;
    let invalid = |m: &str| TrainError::Invalid(m.to_string());
    if c.history.len() != n.epoch || n.best_epoch == 0 || n.best_epoch > n.epoch {
        return Err(invalid("its epochs do not add up"));
    }
    for (name, t) in named("model", model) {
        c.restore(&name, &t)?;
    }
    let best = model.snapshot();
    if n.best_epoch != n.epoch {
        for (name, t) in named("best", &best) {
            c.restore(&name, &t)?;
        }
    }
    for (i, (a, b)) in opt.state().iter().enumerate() {
        c.restore(&format!("opt/{i}/a"), a)?;
        c.restore(&format!("opt/{i}/b"), b)?;
    }
    opt.set_step_count(n.optimizer_step);
    if let Some(l) = lazy {
        for (name, t) in l.state() {
            c.restore(&format!("lazy/{name}"), &t)?;
        }
        l.set_step_count(n.lazy_step);
    }
    rng.set_word_pos(n.rng_word_pos.parse().map_err(|_| invalid("its shuffle position is not a number"))?);
    Ok((n.best_epoch, c.history[n.best_epoch - 1].dev_accuracy, best))
}

/// Mean cross-entropy and accuracy on `rows`, in eval mode, 1000 at a time.
pub(crate) fn loss_and_accuracy(model: &KimCnn, data: &Dataset, rows: &[usize], cfg: &Config, device: Device) -> (f64, f64) {
    tch::no_grad(|| {
        let (mut loss, mut correct) = (0f64, 0i64);
        for chunk in rows.chunks(1000) {
            let x = data.batch(chunk, cfg.pad, &cfg.widths, device);
            let y = data.label_tensor(chunk, device);
            let logits = model.forward(&x, false);
            loss += logits.cross_entropy_for_logits(&y).double_value(&[]) * chunk.len() as f64;
            correct += logits.argmax(1, false).eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
        }
        (loss / rows.len() as f64, correct as f64 / rows.len() as f64)
    })
}
