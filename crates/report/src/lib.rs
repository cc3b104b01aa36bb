//! The `aggregate` stage: collects the metrics of many train/evaluate runs
//! (folds, seeds, variants, data sets) into `results.parquet` (one row per
//! run) and a Markdown table in the layout of Kim's Table 2 (data set x
//! variant: mean, standard deviation, n), with Kim's published figure beside
//! each cell, and `results.svg`, the same as box plots.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use serde::{Deserialize, Serialize};

mod plot;
pub use plot::plot;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}: {1}")]
    Bad(String, String),
}

/// One evaluated run, as `metrics.json` of the evaluate stage gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub dataset: String,
    pub variant: String,
    /// -1 for data sets with given splits.
    pub fold: i32,
    pub seed: u64,
    /// 0-1.
    pub accuracy: f64,
    pub macro_f1: f64,
    pub epochs: u32,
    pub best_epoch: u32,
    pub pad: String,
    pub init: String,
}

impl RunResult {
    /// Reads the fields of a metrics JSON; `name` names it in errors.
    pub fn from_metrics(name: &str, v: &serde_json::Value) -> Result<RunResult, ReportError> {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from).ok_or_else(|| ReportError::Bad(name.into(), format!("no `{k}`")));
        let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).ok_or_else(|| ReportError::Bad(name.into(), format!("no `{k}`")));
        Ok(RunResult {
            dataset: s("dataset")?,
            variant: s("variant")?,
            fold: v.get("fold").and_then(|x| x.as_i64()).unwrap_or(-1) as i32,
            seed: f("seed")? as u64,
            accuracy: f("accuracy")?,
            macro_f1: f("macro_f1")?,
            epochs: f("epochs")? as u32,
            best_epoch: f("best_epoch")? as u32,
            pad: s("pad")?,
            init: s("init")?,
        })
    }
}

/// Kim (2014), Table 2, accuracy %.
pub fn kim_2014(dataset: &str, variant: &str) -> Option<f64> {
    let col = ["mr", "sst1", "sst2", "subj", "trec"].iter().position(|d| *d == dataset)?;
    let row: [f64; 5] = match variant {
        "rand" => [76.1, 45.0, 82.7, 89.6, 91.2],
        "static" => [81.0, 45.5, 86.8, 93.0, 92.8],
        "non-static" => [81.5, 48.0, 87.2, 93.4, 93.6],
        "multichannel" => [81.1, 47.4, 88.1, 93.2, 92.2],
        _ => return None,
    };
    Some(row[col])
}

const VARIANTS: [&str; 4] = ["rand", "static", "non-static", "multichannel"];
const DATASETS: [&str; 6] = ["mr", "sst1", "sst2", "subj", "trec", "nsmc"];

/// The data sets the rows hold: Kim's order, then any others in order of appearance.
fn datasets_of(rows: &[RunResult]) -> Vec<&str> {
    let mut datasets: Vec<&str> = DATASETS.iter().copied().filter(|d| rows.iter().any(|r| r.dataset == *d)).collect();
    for r in rows {
        if !datasets.contains(&r.dataset.as_str()) {
            datasets.push(&r.dataset);
        }
    }
    datasets
}

/// Mean and sample standard deviation.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 { xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// Kim's layout: a row per variant, a column per data set; each cell
/// `mean ± sd (n)` in %, then Kim's figure. Rows grouped further by pad and
/// init when the results hold more than one of them.
pub fn kim_table(rows: &[RunResult]) -> String {
    let datasets = datasets_of(rows);
    let mut groups: BTreeMap<(String, String), Vec<&RunResult>> = BTreeMap::new();
    for r in rows {
        groups.entry((r.pad.clone(), r.init.clone())).or_default().push(r);
    }
    let many = groups.len() > 1;
    let mut out = String::from("Test accuracy %, mean ± sd over folds/seeds (n runs); Kim (2014) after the slash.\n\n");
    out.push_str(&format!("| {}model | {} |\n", if many { "pad / init | " } else { "" }, datasets.join(" | ")));
    out.push_str(&format!("|{}---|{}\n", if many { "---|" } else { "" }, "---|".repeat(datasets.len())));
    for ((pad, init), rs) in &groups {
        for v in VARIANTS {
            if !rs.iter().any(|r| r.variant == v) {
                continue;
            }
            let cells: Vec<String> = datasets
                .iter()
                .map(|d| {
                    let accs: Vec<f64> = rs.iter().filter(|r| r.variant == v && r.dataset == *d).map(|r| 100.0 * r.accuracy).collect();
                    let kim = kim_2014(d, v).map(|k| format!(" / {k:.1}")).unwrap_or_default();
                    if accs.is_empty() {
                        format!("–{kim}")
                    } else {
                        let (m, s) = mean_std(&accs);
                        format!("{m:.1} ± {s:.1} ({}){kim}", accs.len())
                    }
                })
                .collect();
            let lead = if many { format!("{pad} / {init} | ") } else { String::new() };
            out.push_str(&format!("| {lead}CNN-{v} | {} |\n", cells.join(" | ")));
        }
    }
    out
}

pub fn write_results(path: &Path, rows: &[RunResult]) -> Result<(), ReportError> {
    let err = |e: String| ReportError::Bad(path.display().to_string(), e);
    let schema = Arc::new(Schema::new(vec![
        Field::new("dataset", DataType::Utf8, false),
        Field::new("variant", DataType::Utf8, false),
        Field::new("fold", DataType::Int32, false),
        Field::new("seed", DataType::UInt64, false),
        Field::new("accuracy", DataType::Float64, false),
        Field::new("macro_f1", DataType::Float64, false),
        Field::new("epochs", DataType::UInt32, false),
        Field::new("best_epoch", DataType::UInt32, false),
        Field::new("pad", DataType::Utf8, false),
        Field::new("init", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.dataset))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.variant))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.fold))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.seed))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.accuracy))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.macro_f1))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.epochs))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.best_epoch))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.pad))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.init))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| err(e.to_string()))?;
    let f = File::create(path).map_err(|e| err(e.to_string()))?;
    let mut w = ArrowWriter::try_new(f, schema, None).map_err(|e| err(e.to_string()))?;
    w.write(&batch).map_err(|e| err(e.to_string()))?;
    w.close().map_err(|e| err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(d: &str, v: &str, fold: i32, acc: f64) -> RunResult {
        RunResult { dataset: d.into(), variant: v.into(), fold, seed: 1, accuracy: acc, macro_f1: acc, epochs: 25, best_epoch: 3, pad: "kim".into(), init: "uniform".into() }
    }

    #[test]
    fn table_in_kims_layout_with_his_figures() {
        let rows = vec![r("mr", "rand", 0, 0.75), r("mr", "rand", 1, 0.77), r("trec", "non-static", -1, 0.9)];
        let t = kim_table(&rows);
        assert!(t.contains("| model | mr | trec |"), "{t}");
        assert!(t.contains("| CNN-rand | 76.0 ± 1.4 (2) / 76.1 | – / 91.2 |"), "{t}");
        assert!(t.contains("| CNN-non-static | – / 81.5 | 90.0 ± 0.0 (1) / 93.6 |"), "{t}");
        assert!(!t.contains("multichannel"));
    }

    #[test]
    fn metrics_json_to_rows_and_parquet() {
        let v = serde_json::json!({"dataset": "mr", "variant": "static", "fold": 3, "seed": 1, "accuracy": 0.7, "macro_f1": 0.69, "epochs": 25, "best_epoch": 4, "pad": "bucket", "init": "uniform", "n": 1066});
        let row = RunResult::from_metrics("m", &v).unwrap();
        assert_eq!((row.fold, row.best_epoch), (3, 4));
        let e = RunResult::from_metrics("evaluate.x", &serde_json::json!({"dataset": "mr"})).unwrap_err().to_string();
        assert_eq!(e, "evaluate.x: no `variant`");
        let d = tempfile::tempdir().unwrap();
        write_results(&d.path().join("r.parquet"), &[row]).unwrap();
    }
}
