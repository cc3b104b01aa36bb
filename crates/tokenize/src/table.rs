use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, ListArray, ListBuilder, RecordBatch, StringArray, StringBuilder, UInt32Array};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, UInt32Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::{Result, TokenizeError};

/// `tokens.parquet` in memory: one row per sentence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokensTable {
    pub id: Vec<u32>,
    pub label: Vec<String>,
    pub tokens: Vec<Vec<String>>,
    /// `train`, `dev` or `test`.
    pub split: Vec<String>,
    /// The k-fold assignment, -1 where the data set has given splits.
    pub fold: Vec<i32>,
    /// `<input>:<line>`: where the sentence was read.
    pub origin: Vec<String>,
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt32, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("tokens", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false),
        Field::new("split", DataType::Utf8, false),
        Field::new("fold", DataType::Int32, false),
        Field::new("origin", DataType::Utf8, false),
    ]))
}

impl TokensTable {
    /// The rows a stage may learn from: `train` rows (never dev or test),
    /// outside `exclude_fold` (a CV test fold) when given.
    pub fn training_rows(&self, exclude_fold: Option<i32>) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.split[i] == "train" && exclude_fold.is_none_or(|f| self.fold[i] != f)).collect()
    }

    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let err = |m: String| TokenizeError::Table { path: path.into(), message: m };
        let mut tokens = ListBuilder::new(StringBuilder::new());
        for row in &self.tokens {
            for t in row {
                tokens.values().append_value(t);
            }
            tokens.append(true);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(self.id.clone())),
            Arc::new(StringArray::from_iter_values(&self.label)),
            Arc::new(tokens.finish()),
            Arc::new(StringArray::from_iter_values(&self.split)),
            Arc::new(Int32Array::from(self.fold.clone())),
            Arc::new(StringArray::from_iter_values(&self.origin)),
        ];
        let batch = RecordBatch::try_new(schema(), cols).map_err(|e| err(e.to_string()))?;
        let f = File::create(path).map_err(|source| TokenizeError::Io { path: path.into(), source })?;
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let mut w = ArrowWriter::try_new(f, schema(), Some(props)).map_err(|e| err(e.to_string()))?;
        w.write(&batch).map_err(|e| err(e.to_string()))?;
        w.close().map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    pub fn read(path: &Path) -> Result<TokensTable> {
        let err = |m: String| TokenizeError::Table { path: path.into(), message: format!("not a tokens table: {m}") };
        let f = File::open(path).map_err(|source| TokenizeError::Io { path: path.into(), source })?;
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| err(e.to_string()))?.build().map_err(|e| err(e.to_string()))?;
        let mut t = TokensTable::default();
        for batch in reader {
            let b = batch.map_err(|e| err(e.to_string()))?;
            let col = |name: &str| b.column_by_name(name).cloned().ok_or_else(|| err(format!("no `{name}` column")));
            let strings = |name: &str| -> Result<Vec<String>> {
                let c = col(name)?;
                let a = c.as_string_opt::<i32>().ok_or_else(|| err(format!("`{name}` is not text")))?;
                Ok(a.iter().map(|s| s.unwrap_or("").to_string()).collect())
            };
            let id = col("id")?;
            t.id.extend(id.as_primitive_opt::<UInt32Type>().ok_or_else(|| err("`id` is not u32".into()))?.values().iter());
            t.label.extend(strings("label")?);
            let toks = col("tokens")?;
            let list: &ListArray = toks.as_list_opt::<i32>().ok_or_else(|| err("`tokens` is not a list".into()))?;
            for i in 0..list.len() {
                let v = list.value(i);
                let s = v.as_string_opt::<i32>().ok_or_else(|| err("`tokens` items are not text".into()))?;
                t.tokens.push(s.iter().map(|x| x.unwrap_or("").to_string()).collect());
            }
            t.split.extend(strings("split")?);
            let fold = col("fold")?;
            t.fold.extend(fold.as_primitive_opt::<Int32Type>().ok_or_else(|| err("`fold` is not i32".into()))?.values().iter());
            t.origin.extend(strings("origin")?);
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.parquet");
        let t = TokensTable {
            id: vec![0, 1],
            label: vec!["pos".into(), "neg".into()],
            tokens: vec![vec!["a".into(), "b".into()], vec![]],
            split: vec!["train".into(), "test".into()],
            fold: vec![3, -1],
            origin: vec!["pos:1".into(), "neg:1".into()],
        };
        t.write(&p).unwrap();
        assert_eq!(TokensTable::read(&p).unwrap(), t);
        let bytes = std::fs::read(&p).unwrap();
        t.write(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "byte-identical rewrite (the cache relies on it)");
        std::fs::write(&p, b"not parquet").unwrap();
        assert!(TokensTable::read(&p).unwrap_err().to_string().contains("not a tokens table"));
    }
}
