use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{Result, TokenizeError};

/// A seeded assignment of `n` rows to `k` folds of equal size (the first
/// `n % k` folds one larger, as numpy's array_split).
pub fn kfold(n: usize, k: u32, seed: u64) -> Vec<i32> {
    let k = k.max(1) as usize;
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut fold = vec![0i32; n];
    let (base, extra) = (n / k, n % k);
    let mut pos = 0;
    for f in 0..k {
        let size = base + usize::from(f < extra);
        for &row in &perm[pos..pos + size] {
            fold[row] = f as i32;
        }
        pos += size;
    }
    fold
}

/// A seeded choice of `round(fraction * len)` of `rows` to serve as dev.
/// Deterministic in (rows, fraction, seed).
pub fn carve_dev(rows: &[usize], fraction: f64, seed: u64) -> Vec<usize> {
    let mut perm = rows.to_vec();
    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0xd5e7_0000));
    let n = (fraction * rows.len() as f64).round() as usize;
    let mut dev = perm[..n.min(perm.len())].to_vec();
    dev.sort_unstable();
    dev
}

/// Exact splits from a JSON file `{"train": [ids], "dev": [ids], "test": [ids]}`
/// (the reference implementation's `--dump-split`): every row must be named once.
/// Errors name the stage's input (`input \`splits\``), not the object's path.
pub(crate) fn from_json(path: &Path, split: &mut [&'static str]) -> Result<()> {
    let err = |m: String| TokenizeError::Splits(m);
    let text = std::fs::read_to_string(path).map_err(|source| TokenizeError::Io { path: path.into(), source })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
    let mut seen: Vec<Option<&'static str>> = vec![None; split.len()];
    for name in ["train", "dev", "test"] {
        let ids = v.get(name).and_then(|x| x.as_array()).ok_or_else(|| err(format!("no `{name}` list")))?;
        for id in ids {
            let i = id.as_u64().ok_or_else(|| err(format!("`{name}` holds {id}, which is not a row id (an integer from 0)")))? as usize;
            if i >= split.len() {
                return Err(err(format!("id {i} in `{name}` is past the last row ({})", split.len() as i64 - 1)));
            }
            if let Some(first) = seen[i] {
                let place = if first == name { format!("twice in `{name}`") } else { format!("in `{first}` and in `{name}`") };
                return Err(err(format!("id {i} is listed {place}")));
            }
            seen[i] = Some(name);
            split[i] = name;
        }
    }
    if let Some(i) = seen.iter().position(Option::is_none) {
        return Err(err(format!("row {i} is in no split ({} rows in all)", split.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_balanced_seeded_and_cover_everything() {
        let f = kfold(10_662, 10, 1);
        let mut counts = [0; 10];
        for &x in &f {
            counts[x as usize] += 1;
        }
        assert_eq!(counts[..2], [1067, 1067]);
        assert_eq!(counts[2..], [1066; 8]);
        assert_eq!(f, kfold(10_662, 10, 1));
        assert_ne!(f, kfold(10_662, 10, 2));
    }

    #[test]
    fn dev_is_ten_percent_and_seeded() {
        let rows: Vec<usize> = (100..5552).collect();
        let d = carve_dev(&rows, 0.1, 3);
        assert_eq!(d.len(), 545);
        assert!(d.iter().all(|i| rows.contains(i)));
        assert_eq!(d, carve_dev(&rows, 0.1, 3));
    }
}
