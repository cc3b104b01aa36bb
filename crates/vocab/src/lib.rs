//! The `vocab` stage: builds the vocabulary from a tokens table.
//!
//! Id 0 is `<pad>`, id 1 is `<unk>`; words follow in order of first
//! appearance (as Kim's code numbered them) or by descending count. Kim built
//! it from all the text of a data set (train, dev and test: the words only,
//! never the labels); `from: train` restricts it to the training rows (and
//! `exclude_fold` leaves out a CV test fold). `min_count` and `max_size`
//! send rare words to `<unk>`.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, UInt32Type, UInt64Type};
use kimcnn_schema::VocabSummary as Summary;
use kimcnn_stage::{Job, Kind, RunInfo, StageError};
use kimcnn_tokenize::TokensTable;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

pub const PAD: &str = "<pad>";
pub const UNK: &str = "<unk>";

#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    #[error("{path}: {message}")]
    Table { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = VocabError> = std::result::Result<T, E>;

kimcnn_schema::named_enum! {
    /// The rows a vocabulary counts.
    pub enum Source {
        /// Every row (Kim's choice).
        All = "all",
        /// Rows whose split is `train` (not dev, not test).
        Train = "train",
    }
}

kimcnn_schema::named_enum! {
    /// How ids are given to words.
    pub enum Order { FirstSeen = "first", Count = "count" }
}

/// A `vocab` stage's params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    pub from: Source,
    /// With k-fold data: leave this fold's rows out.
    pub exclude_fold: Option<i32>,
    /// Words seen fewer times become `<unk>` (0 and 1 keep every word).
    pub min_count: u64,
    /// At most this many rows, `<pad>` and `<unk>` included.
    pub max_size: Option<usize>,
    pub order: Order,
}

impl Default for Params {
    fn default() -> Params {
        Params { from: Source::All, exclude_fold: None, min_count: 1, max_size: None, order: Order::FirstSeen }
    }
}

/// A `vocab` stage: `tokens` -> `vocab` (parquet) + `summary`.
pub struct VocabKind;

impl Kind for VocabKind {
    const NAME: &'static str = "vocab";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["vocab", "summary"];
    type Params = Params;

    /// `min_count: 0` keeps every word, as 1 does: the same stage.
    fn check(&self, p: &mut Params) -> std::result::Result<(), String> {
        p.min_count = p.min_count.max(1);
        Ok(())
    }

    fn check_inputs(&self, _: &Params, inputs: &[&str]) -> std::result::Result<(), String> {
        if inputs != ["tokens"] {
            return Err("a `vocab` stage takes one input, `tokens`".into());
        }
        Ok(())
    }

    fn run(&self, p: &Params, job: &Job) -> std::result::Result<RunInfo, StageError> {
        let table = TokensTable::read(&job.inputs["tokens"]).map_err(|e| StageError::BadInput(format!("input `tokens`: {e}")))?;
        let (vocab, summary) = Vocab::build(&table, p).map_err(|e| StageError::BadInput(e.to_string()))?;
        vocab.write(&job.outputs["vocab"])?;
        kimcnn_schema::write_json(&job.outputs["summary"], &summary)?;
        Ok(RunInfo::default())
    }
}

/// The vocabulary: `tokens[id]`, `counts[id]` (the count of `<unk>` is the
/// number of token occurrences sent to it).
#[derive(Debug, Clone, PartialEq)]
pub struct Vocab {
    pub tokens: Vec<String>,
    pub counts: Vec<u64>,
}

impl Vocab {
    pub fn build(t: &TokensTable, p: &Params) -> Result<(Vocab, Summary)> {
        let mut order: Vec<&str> = Vec::new();
        let mut counts: HashMap<&str, u64> = HashMap::new();
        let mut rows = 0;
        let mut total = 0u64;
        for i in 0..t.len() {
            if p.from == Source::Train && t.split[i] != "train" {
                continue;
            }
            if p.exclude_fold.is_some_and(|f| t.fold[i] == f) {
                continue;
            }
            rows += 1;
            for w in &t.tokens[i] {
                total += 1;
                let c = counts.entry(w.as_str()).or_insert_with(|| {
                    order.push(w.as_str());
                    0
                });
                *c += 1;
            }
        }
        if rows == 0 {
            return Err(VocabError::Invalid("no rows to build a vocabulary from (check `from` and `exclude_fold`)".into()));
        }
        let mut kept: Vec<&str> = order.iter().copied().filter(|w| counts[w] >= p.min_count && *w != PAD && *w != UNK).collect();
        if p.order == Order::Count {
            // Stable: ties keep first-seen order.
            kept.sort_by(|a, b| counts[b].cmp(&counts[a]));
        }
        if let Some(m) = p.max_size {
            kept.truncate(m.saturating_sub(2));
        }
        let kept_total: u64 = kept.iter().map(|w| counts[w]).sum();
        let mut v = Vocab { tokens: vec![PAD.into(), UNK.into()], counts: vec![0, total - kept_total] };
        for w in &kept {
            v.tokens.push(w.to_string());
            v.counts.push(counts[w]);
        }
        let s = Summary {
            size: v.tokens.len(),
            rows_counted: rows,
            tokens_counted: total,
            distinct_words: order.len(),
            dropped_words: order.len() - kept.len(),
            unk_occurrences: total - kept_total,
        };
        Ok((v, s))
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// word -> id.
    pub fn index(&self) -> HashMap<&str, u32> {
        self.tokens.iter().enumerate().map(|(i, w)| (w.as_str(), i as u32)).collect()
    }

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("token", DataType::Utf8, false),
            Field::new("id", DataType::UInt32, false),
            Field::new("count", DataType::UInt64, false),
        ]))
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let err = |m: String| VocabError::Table { path: path.into(), message: m };
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(&self.tokens)),
            Arc::new(UInt32Array::from_iter_values(0..self.tokens.len() as u32)),
            Arc::new(UInt64Array::from(self.counts.clone())),
        ];
        let batch = RecordBatch::try_new(Self::schema(), cols).map_err(|e| err(e.to_string()))?;
        let f = File::create(path).map_err(|source| VocabError::Io { path: path.into(), source })?;
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let mut w = ArrowWriter::try_new(f, Self::schema(), Some(props)).map_err(|e| err(e.to_string()))?;
        w.write(&batch).map_err(|e| err(e.to_string()))?;
        w.close().map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    pub fn read(path: &Path) -> Result<Vocab> {
        let err = |m: String| VocabError::Table { path: path.into(), message: format!("not a vocabulary: {m}") };
        let f = File::open(path).map_err(|source| VocabError::Io { path: path.into(), source })?;
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| err(e.to_string()))?.build().map_err(|e| err(e.to_string()))?;
        let mut v = Vocab { tokens: Vec::new(), counts: Vec::new() };
        for batch in reader {
            let b = batch.map_err(|e| err(e.to_string()))?;
            let col = |n: &str| b.column_by_name(n).cloned().ok_or_else(|| err(format!("no `{n}` column")));
            let tok = col("token")?;
            let tok = tok.as_string_opt::<i32>().ok_or_else(|| err("`token` is not text".into()))?;
            let ids = col("id")?;
            let ids = ids.as_primitive_opt::<UInt32Type>().ok_or_else(|| err("`id` is not u32".into()))?;
            let cnt = col("count")?;
            let cnt = cnt.as_primitive_opt::<UInt64Type>().ok_or_else(|| err("`count` is not u64".into()))?;
            for i in 0..tok.len() {
                if ids.value(i) as usize != v.tokens.len() {
                    return Err(err(format!("ids are not 0, 1, 2, ... (row {i} has id {})", ids.value(i))));
                }
                v.tokens.push(tok.value(i).to_string());
                v.counts.push(cnt.value(i));
            }
        }
        if v.tokens.len() < 2 || v.tokens[0] != PAD || v.tokens[1] != UNK {
            return Err(err("ids 0 and 1 must be <pad> and <unk>".into()));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TokensTable {
        let rows: [(&[&str], &str, i32); 3] = [(&["b", "a", "b"], "train", 0), (&["c", "a"], "dev", 1), (&["d"], "test", 1)];
        TokensTable {
            id: vec![0, 1, 2],
            label: vec!["x".into(); 3],
            tokens: rows.iter().map(|r| r.0.iter().map(|s| s.to_string()).collect()).collect(),
            split: rows.iter().map(|r| r.1.to_string()).collect(),
            fold: rows.iter().map(|r| r.2).collect(),
            origin: vec![String::new(); 3],
        }
    }

    fn params() -> Params {
        Params::default()
    }

    #[test]
    fn first_seen_order_with_pad_and_unk() {
        let (v, s) = Vocab::build(&table(), &params()).unwrap();
        assert_eq!(v.tokens, ["<pad>", "<unk>", "b", "a", "c", "d"]);
        assert_eq!(v.counts, [0, 0, 2, 2, 1, 1]);
        assert_eq!(s.tokens_counted, 6);
    }

    #[test]
    fn train_only_min_count_max_size_and_folds() {
        let mut p = params();
        p.from = Source::Train;
        assert_eq!(Vocab::build(&table(), &p).unwrap().0.tokens, ["<pad>", "<unk>", "b", "a"]);
        let mut p = params();
        p.min_count = 2;
        let (v, s) = Vocab::build(&table(), &p).unwrap();
        assert_eq!(v.tokens, ["<pad>", "<unk>", "b", "a"]);
        assert_eq!((v.counts[1], s.dropped_words), (2, 2));
        let mut p = params();
        p.max_size = Some(3);
        p.order = Order::Count;
        assert_eq!(Vocab::build(&table(), &p).unwrap().0.tokens, ["<pad>", "<unk>", "b"]);
        let mut p = params();
        p.exclude_fold = Some(1);
        assert_eq!(Vocab::build(&table(), &p).unwrap().0.tokens, ["<pad>", "<unk>", "b", "a"]);
    }

    #[test]
    fn round_trip_and_refusals() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v.parquet");
        let (v, _) = Vocab::build(&table(), &params()).unwrap();
        v.write(&p).unwrap();
        assert_eq!(Vocab::read(&p).unwrap(), v);
        Vocab { tokens: vec!["x".into()], counts: vec![1] }.write(&p).unwrap();
        assert!(Vocab::read(&p).unwrap_err().to_string().contains("<pad> and <unk>"));
    }
}
