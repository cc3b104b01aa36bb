use kimcnn_schema::Prediction;
use tch::{Device, Kind};

use crate::{Config, Dataset, KimCnn};

/// Predicts `rows`; returns the predictions and the confusion matrix
/// (`confusion[gold][predicted]`, in the data's class order).
pub fn evaluate(model: &KimCnn, data: &Dataset, rows: &[usize], cfg: &Config, device: Device) -> (Vec<Prediction>, Vec<Vec<u64>>) {
    let k = data.classes.len();
    let mut preds = Vec::with_capacity(rows.len());
    let mut confusion = vec![vec![0u64; k]; k];
    tch::no_grad(|| {
        for chunk in rows.chunks(1000) {
            let x = data.batch(chunk, cfg.pad, &cfg.widths, device);
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
    (preds, confusion)
}
