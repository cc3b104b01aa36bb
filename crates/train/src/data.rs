use kimcnn_tokenize::TokensTable;
use kimcnn_vocab::Vocab;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

use crate::{Config, Pad, Result, TrainError};

/// A data set as the network sees it: token ids, class indices, splits.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Class names, sorted; a label's index is its class.
    pub classes: Vec<String>,
    pub ids: Vec<Vec<i64>>,
    pub labels: Vec<i64>,
    pub row_id: Vec<u32>,
    pub train: Vec<usize>,
    pub dev: Vec<usize>,
    pub test: Vec<usize>,
    /// The longest sentence (after truncation), over every row (Kim padded to it).
    pub max_len: usize,
    /// Sentences cut to `max_len`.
    pub truncated: usize,
    /// Sentences with no tokens at all.
    pub empty: usize,
    /// Token occurrences mapped to `<unk>`.
    pub unknown_tokens: usize,
}

impl Dataset {
    pub fn new(t: &TokensTable, vocab: &Vocab, cfg: &Config) -> Result<Dataset> {
        let bad = |m: String| TrainError::Invalid(m);
        if t.is_empty() {
            return Err(bad("the tokens table is empty".into()));
        }
        let index = vocab.index();
        let mut ids = Vec::with_capacity(t.len());
        let (mut truncated, mut empty, mut unknown) = (0, 0, 0);
        for toks in &t.tokens {
            let mut row: Vec<i64> = toks
                .iter()
                .map(|w| match index.get(w.as_str()) {
                    Some(&i) => i as i64,
                    None => {
                        unknown += 1;
                        1
                    }
                })
                .collect();
            if let Some(m) = cfg.max_len {
                if row.len() > m {
                    row.truncate(m);
                    truncated += 1;
                }
            }
            if row.is_empty() {
                empty += 1;
            }
            ids.push(row);
        }
        let kfold = t.fold.iter().any(|&f| f >= 0);
        let (mut train, mut dev, test): (Vec<usize>, Vec<usize>, Vec<usize>) = match (cfg.fold, kfold) {
            (Some(f), true) => {
                let test: Vec<usize> = (0..t.len()).filter(|&i| t.fold[i] == f).collect();
                if test.is_empty() {
                    return Err(bad(format!("fold {f} is empty (folds here: 0..{})", t.fold.iter().max().unwrap_or(&0))));
                }
                let rest: Vec<usize> = (0..t.len()).filter(|&i| t.fold[i] != f).collect();
                (rest, Vec::new(), test)
            }
            (Some(_), false) => return Err(bad("`fold` is set, but this data set has given splits, not folds".into())),
            (None, true) => return Err(bad("this data set is split into folds: set `fold` (the test fold)".into())),
            (None, false) => {
                let pick = |s: &str| (0..t.len()).filter(|&i| t.split[i] == s).collect::<Vec<_>>();
                (pick("train"), pick("dev"), pick("test"))
            }
        };
        if dev.is_empty() {
            dev = kimcnn_tokenize::carve_dev(&train, cfg.dev_fraction, cfg.seed);
            let is_dev: std::collections::HashSet<usize> = dev.iter().copied().collect();
            train.retain(|i| !is_dev.contains(i));
        }
        if train.is_empty() || dev.is_empty() {
            return Err(bad(format!("need train and dev rows, have {} and {}", train.len(), dev.len())));
        }
        let mut classes: Vec<String> = train.iter().map(|&i| t.label[i].clone()).collect();
        classes.sort();
        classes.dedup();
        if classes.len() < 2 {
            return Err(bad(format!("the training rows have {} class(es); need at least 2", classes.len())));
        }
        let mut labels = vec![-1i64; t.len()];
        for &i in train.iter() {
            labels[i] = classes.binary_search(&t.label[i]).expect("train labels are classes") as i64;
        }
        for (name, rows) in [("dev", &dev), ("test", &test)] {
            for &i in rows.iter() {
                match classes.binary_search(&t.label[i]) {
                    Ok(c) => labels[i] = c as i64,
                    Err(_) => {
                        return Err(bad(format!(
                            "class `{}` appears in {name} ({}) but not in train (classes: {})",
                            t.label[i],
                            t.origin[i],
                            classes.join(", ")
                        )))
                    }
                }
            }
        }
        let max_len = ids.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Dataset { classes, ids, labels, row_id: t.id.clone(), train, dev, test, max_len, truncated, empty, unknown_tokens: unknown })
    }

    /// Token ids of `rows` as a [B, L] tensor in Kim's layout: `side` zero
    /// pads on the left, zeros on the right up to the data set's longest
    /// (`Pad::Kim`) or the batch's longest (`Pad::Bucket`) plus `side`, cut
    /// after the last column that can change the result (see [`padded_batch`]).
    pub fn batch(&self, rows: &[usize], pad: Pad, side: usize, min_width: usize, device: Device) -> Tensor {
        let longest = match pad {
            Pad::Kim => self.max_len,
            Pad::Bucket => rows.iter().map(|&r| self.ids[r].len()).max().unwrap_or(0),
        };
        let ids: Vec<&[i64]> = rows.iter().map(|&r| self.ids[r].as_slice()).collect();
        padded_batch(&ids, longest, side, min_width, device)
    }

    pub fn label_tensor(&self, rows: &[usize], device: Device) -> Tensor {
        let y: Vec<i64> = rows.iter().map(|&r| self.labels[r]).collect();
        Tensor::from_slice(&y).to(device)
    }

    /// One epoch's batches of the training rows. `Kim`: a fresh shuffle cut
    /// into batches. `Bucket`: the shuffle is cut into pools of 50 batches,
    /// each pool sorted by length and cut into batches, and the batches
    /// shuffled, so a batch holds sentences of similar length.
    pub fn epoch_batches(&self, batch: usize, pad: Pad, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
        let mut order = self.train.clone();
        order.shuffle(rng);
        match pad {
            Pad::Kim => order.chunks(batch).map(<[usize]>::to_vec).collect(),
            Pad::Bucket => {
                let mut batches: Vec<Vec<usize>> = Vec::new();
                for pool in order.chunks(batch * 50) {
                    let mut pool = pool.to_vec();
                    pool.sort_by_key(|&r| self.ids[r].len());
                    batches.extend(pool.chunks(batch).map(<[usize]>::to_vec));
                }
                batches.shuffle(rng);
                batches
            }
        }
    }
}

/// Token ids as a [B, L] tensor in Kim's layout up to `layout_longest`:
/// `side` zero pads on the left, zeros on the right up to `layout_longest +
/// side`, at least `min_width` (the widest filter) in all; then cut after the
/// batch's longest sentence, its right-hand pads and one more column where
/// the layout has it. Zero is the pad row, which the embedding keeps at zero,
/// so every window of pads alone gives each map exactly relu(bias): the
/// columns cut off only add more copies of a value the batch still has (one
/// window of pads alone remains wherever the layout has one). So the pooled
/// features, the logits and the gradients are those of the full layout (ties
/// between windows aside, which amax splits evenly), at the batch's width.
pub fn padded_batch(ids: &[&[i64]], layout_longest: usize, side: usize, min_width: usize, device: Device) -> Tensor {
    let longest = ids.iter().map(|r| r.len()).max().unwrap_or(0);
    laid_out(ids, trimmed_width(longest, layout_longest, side, min_width), side).to(device)
}

/// [B, width]: `side` zero pads on the left of each row, zeros on the right.
fn laid_out(ids: &[&[i64]], width: usize, side: usize) -> Tensor {
    let mut flat = vec![0i64; ids.len() * width];
    for (b, row) in ids.iter().enumerate() {
        flat[b * width + side..b * width + side + row.len()].copy_from_slice(row);
    }
    Tensor::from_slice(&flat).view([ids.len() as i64, width as i64])
}

/// The columns a batch whose longest sentence has `longest` tokens needs:
/// every window that touches a token, and one window of pads alone where the
/// layout (up to `layout_longest`) gives that sentence one.
fn trimmed_width(longest: usize, layout_longest: usize, side: usize, min_width: usize) -> usize {
    (longest + 2 * side + usize::from(layout_longest > longest)).max(min_width)
}

/// Kim's layout in full, every row padded to `layout_longest + side`: what
/// the trimmed batch must compute the same as (tests).
#[cfg(test)]
pub(crate) fn full_batch(ids: &[&[i64]], layout_longest: usize, side: usize, min_width: usize) -> Tensor {
    laid_out(ids, (layout_longest + 2 * side).max(min_width), side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_one_window_of_pads_where_the_layout_has_one() {
        // Widest filter 5: 4 pads a side. A longest sentence of 10 in a layout of 20 has,
        // at the right, windows of pads alone; cut at 10 + 8 + 1 it keeps one.
        assert_eq!(trimmed_width(10, 20, 4, 5), 19);
        // As long as the layout's longest: it has none, and gets none.
        assert_eq!(trimmed_width(20, 20, 4, 5), 28);
        // At least the widest filter, even for empty sentences with no side pads.
        assert_eq!(trimmed_width(0, 0, 0, 3), 3);
        let ids: Vec<Vec<i64>> = vec![vec![2; 3], vec![3; 30], vec![4; 1]];
        let rows: Vec<&[i64]> = ids.iter().map(Vec::as_slice).collect();
        let x = padded_batch(&rows, 50, 4, 5, Device::Cpu);
        assert_eq!(x.size(), vec![3, 39]);
        assert!(x.equal(&full_batch(&rows, 50, 4, 5).narrow(1, 0, 39)), "the full layout's first columns");
        assert_eq!(padded_batch(&[], 0, 4, 5, Device::Cpu).size(), vec![0, 8]);
    }
}
