//! The Parquet artifacts: a training history (a row per epoch), predictions
//! (a row per test sentence) and the results table (a row per run), each
//! written and read through one row type.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Builder, Float64Array, Int32Array, ListBuilder, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int32Type, Schema, UInt32Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::{Named, Pad, Result, RunResult, SchemaError, Variant};

/// One epoch of training: a row of `history.parquet`. What it computed
/// only; how long it took is in the `timings` output
/// ([`crate::EpochTiming`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    /// Over the epoch's batches, with dropout on.
    pub train_accuracy: f64,
    pub dev_loss: f64,
    pub dev_accuracy: f64,
    /// Recorded for studies and reports, never used to select: the epoch a
    /// run keeps is chosen on dev. With it, the first N rows of a longer
    /// run are an N-epoch run's whole history (nothing in training depends
    /// on the total epochs), so one run answers every shorter budget. NaN
    /// where the data has no test rows.
    pub test_accuracy: f64,
}

/// One test sentence's prediction: a row of `predictions.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub id: u32,
    pub gold: String,
    pub predicted: String,
    /// In the model's class order.
    pub probabilities: Vec<f32>,
}

/// Writes one record batch of these columns to a Parquet file (Snappy).
pub fn write_batch(path: &Path, fields: Vec<Field>, cols: Vec<ArrayRef>) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| SchemaError::new(path, e);
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| err(&e))?;
    let f = File::create(path).map_err(|e| err(&e))?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut w = ArrowWriter::try_new(f, schema, Some(props)).map_err(|e| err(&e))?;
    w.write(&batch).map_err(|e| err(&e))?;
    w.close().map_err(|e| err(&e))?;
    Ok(())
}

/// Every record batch of a Parquet file, and a way to take its columns by
/// name and type with errors that name the column.
pub(crate) struct Batches<'a> {
    pub(crate) path: &'a Path,
    pub(crate) batches: Vec<RecordBatch>,
}

impl<'a> Batches<'a> {
    pub(crate) fn read(path: &'a Path) -> Result<Batches<'a>> {
        let err = |e: &dyn std::fmt::Display| SchemaError::new(path, e);
        let f = File::open(path).map_err(|e| err(&e))?;
        let r = ParquetRecordBatchReaderBuilder::try_new(f).and_then(|b| b.build()).map_err(|e| err(&e))?;
        let batches = r.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| err(&e))?;
        Ok(Batches { path, batches })
    }

    pub(crate) fn column(&self, b: &RecordBatch, name: &str, want: &DataType, nullable: bool) -> Result<ArrayRef> {
        let c = b.column_by_name(name).ok_or_else(|| SchemaError::new(self.path, format!("column `{name}`: missing")))?;
        if c.data_type() != want {
            return Err(SchemaError::new(self.path, format!("column `{name}`: {} where {want} was expected", c.data_type())));
        }
        if !nullable && c.null_count() > 0 {
            return Err(SchemaError::new(self.path, format!("column `{name}`: {} null values", c.null_count())));
        }
        Ok(c.clone())
    }

    pub(crate) fn f64s(&self, b: &RecordBatch, name: &str) -> Result<Vec<f64>> {
        Ok(self.column(b, name, &DataType::Float64, false)?.as_primitive::<Float64Type>().values().to_vec())
    }

    pub(crate) fn u32s(&self, b: &RecordBatch, name: &str) -> Result<Vec<u32>> {
        Ok(self.column(b, name, &DataType::UInt32, false)?.as_primitive::<UInt32Type>().values().to_vec())
    }

    pub(crate) fn strings(&self, b: &RecordBatch, name: &str) -> Result<Vec<String>> {
        Ok(self.column(b, name, &DataType::Utf8, false)?.as_string::<i32>().iter().map(|s| s.unwrap_or_default().to_string()).collect())
    }

    fn named<T: Named>(&self, b: &RecordBatch, name: &str) -> Result<Vec<T>> {
        self.strings(b, name)?
            .iter()
            .map(|s| T::parse(s).map_err(|e| SchemaError::new(self.path, format!("column `{name}`: {e}"))))
            .collect()
    }
}

const HISTORY_F64: [&str; 5] = ["train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "test_accuracy"];

pub fn write_history(path: &Path, h: &[EpochRow]) -> Result<()> {
    let mut fields = vec![Field::new("epoch", DataType::UInt32, false)];
    fields.extend(HISTORY_F64.iter().map(|n| Field::new(*n, DataType::Float64, false)));
    let f64col = |f: fn(&EpochRow) -> f64| Arc::new(Float64Array::from_iter_values(h.iter().map(f))) as ArrayRef;
    let cols = vec![
        Arc::new(UInt32Array::from_iter_values(h.iter().map(|e| e.epoch as u32))) as ArrayRef,
        f64col(|e| e.train_loss),
        f64col(|e| e.train_accuracy),
        f64col(|e| e.dev_loss),
        f64col(|e| e.dev_accuracy),
        f64col(|e| e.test_accuracy),
    ];
    write_batch(path, fields, cols)
}

pub fn read_history(path: &Path) -> Result<Vec<EpochRow>> {
    let t = Batches::read(path)?;
    let mut out = Vec::new();
    for b in &t.batches {
        let epoch = t.u32s(b, "epoch")?;
        let v: Vec<Vec<f64>> = HISTORY_F64.iter().map(|n| t.f64s(b, n)).collect::<Result<_>>()?;
        for i in 0..b.num_rows() {
            out.push(EpochRow {
                epoch: epoch[i] as usize,
                train_loss: v[0][i],
                train_accuracy: v[1][i],
                dev_loss: v[2][i],
                dev_accuracy: v[3][i],
                test_accuracy: v[4][i],
            });
        }
    }
    Ok(out)
}

fn probabilities_field() -> Field {
    Field::new("probabilities", DataType::List(Arc::new(Field::new("item", DataType::Float32, true))), false)
}

pub fn write_predictions(path: &Path, p: &[Prediction]) -> Result<()> {
    let fields = vec![
        Field::new("id", DataType::UInt32, false),
        Field::new("gold", DataType::Utf8, false),
        Field::new("predicted", DataType::Utf8, false),
        probabilities_field(),
    ];
    let mut probs = ListBuilder::new(Float32Builder::new());
    for x in p {
        probs.values().append_slice(&x.probabilities);
        probs.append(true);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(p.iter().map(|x| x.id))),
        Arc::new(StringArray::from_iter_values(p.iter().map(|x| &x.gold))),
        Arc::new(StringArray::from_iter_values(p.iter().map(|x| &x.predicted))),
        Arc::new(probs.finish()),
    ];
    write_batch(path, fields, cols)
}

pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>> {
    let t = Batches::read(path)?;
    let mut out = Vec::new();
    for b in &t.batches {
        let (id, gold, predicted) = (t.u32s(b, "id")?, t.strings(b, "gold")?, t.strings(b, "predicted")?);
        let probs = t.column(b, "probabilities", probabilities_field().data_type(), false)?;
        let probs = probs.as_list::<i32>();
        for i in 0..b.num_rows() {
            let row = probs.value(i);
            out.push(Prediction {
                id: id[i],
                gold: gold[i].clone(),
                predicted: predicted[i].clone(),
                probabilities: row.as_primitive::<Float32Type>().values().to_vec(),
            });
        }
    }
    Ok(out)
}

pub fn write_results(path: &Path, rows: &[RunResult]) -> Result<()> {
    let fields = vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("variant", DataType::Utf8, false),
        Field::new("fold", DataType::Int32, true),
        Field::new("seed", DataType::UInt64, false),
        Field::new("accuracy", DataType::Float64, false),
        Field::new("macro_f1", DataType::Float64, false),
        Field::new("epochs", DataType::UInt32, false),
        Field::new("best_epoch", DataType::UInt32, false),
        Field::new("pad", DataType::Utf8, false),
        Field::new("init", DataType::Utf8, false),
    ];
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.dataset))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.variant.name()))),
        Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.fold))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.seed))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.accuracy))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.macro_f1))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.epochs))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.best_epoch))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.pad.name()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.init))),
    ];
    write_batch(path, fields, cols)
}

pub fn read_results(path: &Path) -> Result<Vec<RunResult>> {
    let t = Batches::read(path)?;
    let mut out = Vec::new();
    for b in &t.batches {
        let (dataset, init) = (t.strings(b, "dataset")?, t.strings(b, "init")?);
        let variant: Vec<Variant> = t.named(b, "variant")?;
        let pad: Vec<Pad> = t.named(b, "pad")?;
        let fold = t.column(b, "fold", &DataType::Int32, true)?;
        let fold = fold.as_primitive::<Int32Type>();
        let seed = t.column(b, "seed", &DataType::UInt64, false)?;
        let seed = seed.as_primitive::<UInt64Type>();
        let (accuracy, macro_f1) = (t.f64s(b, "accuracy")?, t.f64s(b, "macro_f1")?);
        let (epochs, best_epoch) = (t.u32s(b, "epochs")?, t.u32s(b, "best_epoch")?);
        for i in 0..b.num_rows() {
            out.push(RunResult {
                dataset: dataset[i].clone(),
                variant: variant[i],
                fold: fold.is_valid(i).then(|| fold.value(i)),
                seed: seed.value(i),
                accuracy: accuracy[i],
                macro_f1: macro_f1[i],
                epochs: epochs[i],
                best_epoch: best_epoch[i],
                pad: pad[i],
                init: init[i].clone(),
            });
        }
    }
    Ok(out)
}
