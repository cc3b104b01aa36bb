use std::time::Instant;

use kimcnn_schema::{EpochRow, EpochTiming};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

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

/// Trains Kim's CNN. `init` is the embedding matrix [V, D] from the embed
/// stage; CNN-rand replaces every row with U[-a, a] (`rand_a`). Model
/// selection is on dev accuracy only (ties: the later epoch, as Kim's `>=`).
/// `on_epoch` sees each epoch as it ends.
pub fn train(
    data: &Dataset,
    init: &Tensor,
    rand_a: f64,
    cfg: &Config,
    device: Device,
    on_epoch: &mut dyn FnMut(&EpochRow, &EpochTiming),
) -> Result<TrainOutcome> {
    cfg.clone().check().map_err(TrainError::Config)?;
    tch::manual_seed(cfg.seed as i64);
    if let Device::Cuda(_) = device {
        tch::Cuda::manual_seed_all(cfg.seed);
    }
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
    let mut lazy = (model.tunes_embedding() && cfg.optimizer == OptimizerKind::Adadelta).then(|| LazyAdadelta::new(&model.emb, cfg));
    let params = model.trainable(lazy.is_none());
    let mut opt = Optimizer::new(&params, cfg);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let side = cfg.side_pad();
    let min_width = *cfg.widths.iter().max().unwrap_or(&1) as usize;
    let (mut history, mut timings) = (Vec::new(), Vec::new());
    let mut best: Option<(usize, f64, KimCnn)> = None;
    let mut since_best = 0;
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0i64, 0usize);
        for (b, rows) in data.epoch_batches(cfg.batch, cfg.pad, &mut rng).iter().enumerate() {
            let x = data.batch(rows, cfg.pad, side, min_width, device);
            let y = data.label_tensor(rows, device);
            let tuned = lazy.as_ref().map(|_| BatchRows::gather(&model.emb, &x));
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
        }
        let seconds = t0.elapsed().as_secs_f64();
        let (dev_loss, dev_accuracy) = loss_and_accuracy(&model, data, &data.dev, cfg, device);
        // Scored for the record (studies read it per epoch); selection below is on dev only.
        let test_accuracy = if data.test.is_empty() { f64::NAN } else { loss_and_accuracy(&model, data, &data.test, cfg, device).1 };
        let e = EpochRow {
            epoch,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            dev_loss,
            dev_accuracy,
            test_accuracy,
        };
        let t = EpochTiming { epoch, seconds, sentences_per_s: seen as f64 / seconds };
        on_epoch(&e, &t);
        history.push(e);
        timings.push(t);
        if best.as_ref().is_none_or(|(_, acc, _)| dev_accuracy >= *acc) {
            best = Some((epoch, dev_accuracy, model.snapshot()));
            since_best = 0;
        } else {
            since_best += 1;
            if cfg.patience.is_some_and(|p| since_best >= p) {
                break;
            }
        }
    }
    let (best_epoch, best_dev_accuracy, model) = best.expect("at least one epoch");
    Ok(TrainOutcome { model, history, timings, best_epoch, best_dev_accuracy })
}

/// Mean cross-entropy and accuracy on `rows`, in eval mode, 1000 at a time.
pub(crate) fn loss_and_accuracy(model: &KimCnn, data: &Dataset, rows: &[usize], cfg: &Config, device: Device) -> (f64, f64) {
    let side = cfg.side_pad();
    let min_width = *cfg.widths.iter().max().unwrap_or(&1) as usize;
    tch::no_grad(|| {
        let (mut loss, mut correct) = (0f64, 0i64);
        for chunk in rows.chunks(1000) {
            let x = data.batch(chunk, cfg.pad, side, min_width, device);
            let y = data.label_tensor(chunk, device);
            let logits = model.forward(&x, false);
            loss += logits.cross_entropy_for_logits(&y).double_value(&[]) * chunk.len() as f64;
            correct += logits.argmax(1, false).eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
        }
        (loss / rows.len() as f64, correct as f64 / rows.len() as f64)
    })
}
