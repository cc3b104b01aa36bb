use serde::Serialize;
use tch::{Device, Kind};

use crate::{Config, Dataset, KimCnn};

/// One row of `predictions.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub id: u32,
    pub gold: String,
    pub predicted: String,
    pub probabilities: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// confusion[gold][predicted], classes in `per_class` order.
    pub confusion: Vec<Vec<u64>>,
}

/// Predicts `rows` and scores them against their labels.
pub fn evaluate(model: &KimCnn, data: &Dataset, rows: &[usize], cfg: &Config, device: Device) -> (Vec<Prediction>, Metrics) {
    let side = cfg.side_pad();
    let min_width = *cfg.widths.iter().max().unwrap_or(&1) as usize;
    let k = data.classes.len();
    let mut preds = Vec::with_capacity(rows.len());
    let mut confusion = vec![vec![0u64; k]; k];
    tch::no_grad(|| {
        for chunk in rows.chunks(1000) {
            let x = data.batch(chunk, cfg.pad, side, min_width, device);
            let probs = model.forward(&x, false).softmax(1, Kind::Float).to_device(Device::Cpu).contiguous();
            let flat: Vec<f32> = Vec::<f32>::try_from(probs.view([-1])).unwrap_or_default();
            for (j, &r) in chunk.iter().enumerate() {
                let p = flat[j * k..(j + 1) * k].to_vec();
                let best = (0..k).fold(0, |b, c| if p[c] > p[b] { c } else { b });
                let gold = data.labels[r] as usize;
                confusion[gold][best] += 1;
                preds.push(Prediction {
                    id: data.row_id[r],
                    gold: data.classes[gold].clone(),
                    predicted: data.classes[best].clone(),
                    probabilities: p,
                });
            }
        }
    });
    (preds, metrics(&data.classes, confusion))
}

pub(crate) fn metrics(classes: &[String], confusion: Vec<Vec<u64>>) -> Metrics {
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
            ClassMetrics { class: classes[c].clone(), precision, recall, f1: div(2.0 * precision * recall, precision + recall), support }
        })
        .collect();
    Metrics {
        n: n as usize,
        accuracy: div(correct as f64, n as f64),
        macro_f1: per_class.iter().map(|c| c.f1).sum::<f64>() / k.max(1) as f64,
        per_class,
        confusion,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_by_hand() {
        let classes = vec!["a".to_string(), "b".to_string()];
        // gold a: 3 right, 1 wrong; gold b: 2 right, 2 wrong.
        let m = super::metrics(&classes, vec![vec![3, 1], vec![2, 2]]);
        assert_eq!(m.n, 8);
        assert!((m.accuracy - 5.0 / 8.0).abs() < 1e-12);
        assert!((m.per_class[0].precision - 0.6).abs() < 1e-12);
        assert!((m.per_class[0].recall - 0.75).abs() < 1e-12);
        let f1a = 2.0 * 0.6 * 0.75 / 1.35;
        let f1b = 2.0 * (2.0 / 3.0) * 0.5 / (2.0 / 3.0 + 0.5);
        assert!((m.macro_f1 - (f1a + f1b) / 2.0).abs() < 1e-12);
    }
}
