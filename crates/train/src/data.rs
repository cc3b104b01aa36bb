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

    /// `rows` packed for the network ([`PackedBatch`]), each sentence
    /// computed as in Kim's layout up to the data set's longest
    /// (`Pad::Kim`) or the batch's longest (`Pad::Bucket`).
    pub fn batch(&self, rows: &[usize], pad: Pad, widths: &[i64], device: Device) -> PackedBatch {
        let ids: Vec<&[i64]> = rows.iter().map(|&r| self.ids[r].as_slice()).collect();
        let layout_longest = match pad {
            Pad::Kim => self.max_len,
            Pad::Bucket => ids.iter().map(|r| r.len()).max().unwrap_or(0),
        };
        PackedBatch::new(&ids, layout_longest, widths, device)
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

/// The packed tokens' length is rounded up to a multiple of this: on CPU,
/// oneDNN creates and JIT-compiles a convolution for each input shape it
/// meets, and a cache of 1,024 of them thrashed when every batch had its own
/// shape (2x slower); rounded, MR's batches come in a few dozen lengths, at
/// under 3% more columns.
const ROUND_TOKENS: usize = 64;

/// A batch as the network computes it: every sentence in one row of token
/// ids, `G` pads (the widest filter) before each and after the last, so that
/// no window of a filter touches two sentences and every gap holds a window
/// of pads alone of every width; and for each filter width, the windows
/// each sentence max-pools over.
///
/// Kim pads every sentence to the data set's longest (`layout_longest`),
/// with `side` = widest - 1 pads on the left and at least `side` on the
/// right, and max-pools each map over every window of that layout. A window
/// that touches the sentence sees its tokens and zero pads, as the same
/// window in the packed row does; a window of pads alone gives each map
/// relu(bias) whatever its position, so the layout's many such windows are
/// one value, which a sentence gets (its gap's first window) wherever its
/// layout has one. So the pooled features, the logits and the gradients are
/// those of Kim's layout (ties between windows aside, which amax splits
/// evenly), computed over the sentences' own tokens plus `G` columns each:
/// on MR's random batches (rounding included) 2.0x fewer columns than each
/// padded to its longest sentence, 2.5x fewer than Kim's layout.
#[derive(Debug)]
pub struct PackedBatch {
    /// [T], T a multiple of [`ROUND_TOKENS`]; 0 is the pad.
    pub tokens: Tensor,
    /// Per filter width (in the config's order), [B, n]: the columns of
    /// that width's convolution output over `tokens` each sentence pools
    /// over (its windows, then its window of pads alone or again its first
    /// window, up to the batch's widest row).
    pub windows: Vec<Tensor>,
}

impl PackedBatch {
    pub fn new(ids: &[&[i64]], layout_longest: usize, widths: &[i64], device: Device) -> PackedBatch {
        let widest = widths.iter().copied().max().unwrap_or(1).max(1) as usize;
        let (gap, side) = (widest, widest - 1);
        // Kim's layout: `side` pads, the sentence, pads up to `layout_longest + side`.
        let layout_width = (layout_longest + 2 * side).max(widest);
        let mut tokens = vec![0i64; gap];
        let mut starts = Vec::with_capacity(ids.len());
        for row in ids {
            starts.push(tokens.len());
            tokens.extend_from_slice(row);
            tokens.resize(tokens.len() + gap, 0);
        }
        tokens.resize(tokens.len().div_ceil(ROUND_TOKENS) * ROUND_TOKENS, 0);
        let longest = ids.iter().map(|r| r.len()).max().unwrap_or(0);
        let windows = widths
            .iter()
            .map(|&k| {
                let k = k as usize;
                // A sentence of n tokens has n + k - 1 windows that touch it (none if empty).
                let n = longest + k; // room for the longest's windows and one more
                let mut cols = Vec::with_capacity(ids.len() * n);
                for (row, &start) in ids.iter().zip(&starts) {
                    let own = if row.is_empty() { 0..0 } else { start + 1 - k..start + row.len() };
                    // Where Kim's layout has a window of pads alone: left of the sentence
                    // (side >= k) or right of it (layout_width - k >= side + len).
                    let pads_alone = row.is_empty() || side >= k || layout_width >= side + row.len() + k;
                    let fill = if pads_alone { start + row.len() } else { own.start };
                    let before = cols.len();
                    cols.extend(own.map(|c| c as i64));
                    cols.resize(before + n, fill as i64);
                }
                Tensor::from_slice(&cols).view([ids.len() as i64, n as i64]).to(device)
            })
            .collect();
        PackedBatch { tokens: Tensor::from_slice(&tokens).to(device), windows }
    }
}

/// Kim's layout in full, every row padded to `layout_longest + side`, [B,
/// L]: what a packed batch must compute the same as (tests).
#[cfg(test)]
pub(crate) fn full_layout(ids: &[&[i64]], layout_longest: usize, widths: &[i64]) -> Tensor {
    let widest = widths.iter().copied().max().unwrap_or(1).max(1) as usize;
    let side = widest - 1;
    let width = (layout_longest + 2 * side).max(widest);
    let mut flat = vec![0i64; ids.len() * width];
    for (b, row) in ids.iter().enumerate() {
        flat[b * width + side..b * width + side + row.len()].copy_from_slice(row);
    }
    Tensor::from_slice(&flat).view([ids.len() as i64, width as i64])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_batch_keeps_each_sentences_windows_and_one_of_pads_where_the_layout_has_one() {
        // Widths 2 and 3: gaps of 3 pads; Kim's side pads are 2.
        let ids: Vec<Vec<i64>> = vec![vec![7, 8], vec![], vec![9, 10, 11]];
        let rows: Vec<&[i64]> = ids.iter().map(Vec::as_slice).collect();
        let b = PackedBatch::new(&rows, 3, &[2, 3], Device::Cpu);
        let tokens = Vec::<i64>::try_from(&b.tokens).unwrap();
        assert_eq!(tokens.len(), ROUND_TOKENS);
        assert_eq!(&tokens[..14], &[0, 0, 0, 7, 8, 0, 0, 0, 0, 0, 0, 9, 10, 11]);
        assert!(tokens[14..].iter().all(|&t| t == 0));
        let cols = |i: usize| Vec::<i64>::try_from(b.windows[i].flatten(0, -1)).unwrap();
        // Width 2 (< widest: Kim's left pads hold a window of pads alone for every row):
        // 2 tokens at 3: windows 2..=4, then the gap's first window, 5.
        assert_eq!(b.windows[0].size(), vec![3, 5]);
        assert_eq!(cols(0), vec![2, 3, 4, 5, 5, /* empty */ 8, 8, 8, 8, 8, /* 3 at 11 */ 10, 11, 12, 13, 14]);
        // Width 3: the layout (3 + 2 * 2 = 7 columns) has a window of pads alone right of
        // a sentence of 2 (columns 4..=6) and none right of the longest, which repeats its first.
        assert_eq!(cols(1), vec![1, 2, 3, 4, 5, 5, /* empty */ 8, 8, 8, 8, 8, 8, /* 3 at 11 */ 9, 10, 11, 12, 13, 9]);
        let empty = PackedBatch::new(&[], 0, &[3, 4, 5], Device::Cpu);
        assert_eq!((empty.tokens.size(), empty.windows[2].size()), (vec![ROUND_TOKENS as i64], vec![0, 5]));
    }
}
