//! The `tokenize` stage: turns a data set's raw files into `tokens.parquet`.
//!
//! - [`Format`] readers: MR/Subj line files (one input per class), TREC
//!   (`COARSE:fine question`), SST (`label sentence`), NSMC (TSV with
//!   header) and a generic TSV/CSV with `text` and `label` columns.
//! - Encoding: UTF-8, with an explicit, counted Latin-1 fallback per line for
//!   the formats whose originals need it (MR, Subj, TREC); strict UTF-8 for
//!   the rest.
//! - [`Cleaner`]: Kim's `clean_str` (and his SST variant), a Unicode-aware
//!   variant for Korean and other scripts, and plain whitespace splitting.
//! - Splits: the given train/dev/test files; else a seeded k-fold column;
//!   a seeded dev carve-out from train; or exact splits from a JSON file.
//!
//! [`TokensTable`] is the table's in-memory form, read back by the stages
//! downstream (vocab, train, evaluate).

mod clean;
mod corpus;
mod kind;
mod read;
mod split;
mod table;

pub use clean::{tokenize as tokenize_text, Cleaner};
pub use corpus::read_corpus;
pub use kind::{FormatName, Params, TokenizeKind};
pub use read::{Encoding, Format, Row};
pub use split::{carve_dev, kfold};
pub use table::TokensTable;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kimcnn_schema::TokenizeSummary as Summary;

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A problem with one line of an input file.
    #[error("{input} line {line}: {message}")]
    Line { input: String, line: usize, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {message}")]
    Table { path: PathBuf, message: String },
    /// A problem with the `splits` input (the exact train/dev/test ids).
    #[error("input `splits`: {0}")]
    Splits(String),
}

pub type Result<T, E = TokenizeError> = std::result::Result<T, E>;

/// One raw input file of the stage (`pos`, `neg`; or `train`, `dev`, `test`).
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub path: PathBuf,
}

/// Reads the inputs, cleans and splits, writes `tokens.parquet` to
/// `out_tokens` and returns the summary. `splits_json`, if given, assigns
/// train/dev/test by id exactly (`{"train": [ids], "dev": [...], "test": [...]}`).
pub fn tokenize(p: &Params, inputs: &[Input], splits_json: Option<&Path>, out_tokens: &Path) -> Result<Summary> {
    let (rows, stats) = read::read_all(p, inputs)?;
    let mut split_col: Vec<&'static str> = Vec::with_capacity(rows.len());
    let mut fold_col: Vec<i32> = vec![-1; rows.len()];
    for r in &rows {
        split_col.push(r.split);
    }
    if let Some(path) = splits_json {
        split::from_json(path, &mut split_col)?;
    } else {
        let has_test = split_col.contains(&"test");
        match (p.folds, has_test) {
            (Some(k), false) => fold_col = kfold(rows.len(), k, p.seed),
            (Some(_), true) => {
                return Err(TokenizeError::Invalid("`folds` is for data sets without a test split; this one has one".into()))
            }
            (None, _) => {}
        }
        if !split_col.contains(&"dev") && p.folds.is_none() && p.dev_fraction > 0.0 {
            let train: Vec<usize> = (0..rows.len()).filter(|&i| split_col[i] == "train").collect();
            for i in carve_dev(&train, p.dev_fraction, p.seed) {
                split_col[i] = "dev";
            }
        }
    }
    let spec = p.tokenizer();
    let mut tokens: Vec<Vec<String>> = Vec::with_capacity(rows.len());
    let mut empty = 0;
    for r in &rows {
        let t = clean::tokenize(&spec, &r.text);
        if t.is_empty() {
            empty += 1;
        }
        tokens.push(t);
    }
    let table = TokensTable {
        id: (0..rows.len() as u32).collect(),
        label: rows.iter().map(|r| r.label.clone()).collect(),
        tokens,
        split: split_col.iter().map(|s| s.to_string()).collect(),
        fold: fold_col,
        origin: rows.iter().map(|r| format!("{}:{}", r.input, r.line)).collect(),
    };
    table.write(out_tokens)?;

    let mut classes = BTreeMap::new();
    for l in &table.label {
        *classes.entry(l.clone()).or_insert(0) += 1;
    }
    let mut splits = BTreeMap::new();
    for s in &table.split {
        *splits.entry(s.clone()).or_insert(0) += 1;
    }
    let lens: Vec<usize> = table.tokens.iter().map(Vec::len).collect();
    let total: usize = lens.iter().sum();
    Ok(Summary {
        rows: rows.len(),
        classes,
        splits,
        folds: p.folds,
        tokens: total,
        mean_len: if rows.is_empty() { 0.0 } else { total as f64 / rows.len() as f64 },
        max_len: lens.iter().copied().max().unwrap_or(0),
        empty_after_cleaning: empty,
        skipped_blank: stats.skipped,
        redecoded_latin1: stats.redecoded,
        tokenizer: spec,
    })
}

#[cfg(test)]
mod tests;
