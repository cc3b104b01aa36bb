//! What a study writes: `trials.parquet`, a row per trial per epoch in the
//! columns the origin project's Ray Tune dataframe had, and `best.json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::table::{write_batch, Batches};
use crate::{Result, SchemaError};

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    Running,
    /// Ended early by the study's stopping rule.
    Stopped,
    Completed,
    /// Crashed, diverged or refused its input: `error` says why.
    Failed,
}

impl TrialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TrialStatus::Running => "running",
            TrialStatus::Stopped => "stopped",
            TrialStatus::Completed => "completed",
            TrialStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<TrialStatus> {
        Some(match s {
            "running" => TrialStatus::Running,
            "stopped" => TrialStatus::Stopped,
            "completed" => TrialStatus::Completed,
            "failed" => TrialStatus::Failed,
            _ => return None,
        })
    }
}

/// One epoch of one trial: a row of `trials.parquet`. A trial that failed
/// before its first epoch has one row with `training_iteration` 0 and NaN
/// figures.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRow {
    pub trial_id: u32,
    /// The searched params' values: columns `config/<param>`, typed by their
    /// values (all strings: text; all integers: int64; all numbers: float64;
    /// anything else: JSON text).
    pub config: BTreeMap<String, Value>,
    /// The epoch (1-based).
    pub training_iteration: u32,
    /// Training loss.
    pub loss: f64,
    /// Dev accuracy: what a study selects on by default.
    pub accuracy: f64,
    /// Dev loss (a study may select on it instead).
    pub dev_loss: f64,
    /// Recorded, never selected on.
    pub test_accuracy: f64,
    pub time_this_iter_s: f64,
    /// The trial's worker's peak resident memory, MiB (NaN: not measured).
    pub peak_rss_mb: f64,
    pub status: TrialStatus,
    pub error: Option<String>,
}

const F64: [&str; 6] = ["loss", "accuracy", "dev_loss", "test_accuracy", "time_this_iter_s", "peak_rss_mb"];

pub fn write_trials(path: &Path, rows: &[TrialRow]) -> Result<()> {
    let params: std::collections::BTreeSet<&String> = rows.iter().flat_map(|r| r.config.keys()).collect();
    let mut fields = vec![Field::new("trial_id", DataType::UInt32, false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.trial_id)))];
    for p in params {
        let vals: Vec<Option<&Value>> = rows.iter().map(|r| r.config.get(p)).collect();
        let name = format!("config/{p}");
        let (ty, col): (DataType, ArrayRef) = if vals.iter().flatten().all(|v| v.is_string()) {
            (DataType::Utf8, Arc::new(vals.iter().map(|v| v.and_then(Value::as_str)).collect::<StringArray>()))
        } else if vals.iter().flatten().all(|v| v.is_i64()) {
            (DataType::Int64, Arc::new(vals.iter().map(|v| v.and_then(Value::as_i64)).collect::<Int64Array>()))
        } else if vals.iter().flatten().all(|v| v.is_number()) {
            (DataType::Float64, Arc::new(vals.iter().map(|v| v.and_then(Value::as_f64)).collect::<Float64Array>()))
        } else {
            (DataType::Utf8, Arc::new(vals.iter().map(|v| v.map(Value::to_string)).collect::<StringArray>()))
        };
        fields.push(Field::new(name, ty, true));
        cols.push(col);
    }
    fields.push(Field::new("training_iteration", DataType::UInt32, false));
    cols.push(Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.training_iteration))));
    let f64s: [fn(&TrialRow) -> f64; 6] =
        [|r| r.loss, |r| r.accuracy, |r| r.dev_loss, |r| r.test_accuracy, |r| r.time_this_iter_s, |r| r.peak_rss_mb];
    for (name, f) in F64.iter().zip(f64s) {
        fields.push(Field::new(*name, DataType::Float64, false));
        cols.push(Arc::new(Float64Array::from_iter_values(rows.iter().map(f))));
    }
    fields.push(Field::new("status", DataType::Utf8, false));
    cols.push(Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.status.as_str()))));
    fields.push(Field::new("error", DataType::Utf8, true));
    cols.push(Arc::new(rows.iter().map(|r| r.error.as_deref()).collect::<StringArray>()));
    write_batch(path, fields, cols)
}

pub fn read_trials(path: &Path) -> Result<Vec<TrialRow>> {
    let t = Batches::read(path)?;
    let mut out = Vec::new();
    for b in &t.batches {
        let id = t.u32s(b, "trial_id")?;
        let iteration = t.u32s(b, "training_iteration")?;
        let v: Vec<Vec<f64>> = F64.iter().map(|n| t.f64s(b, n)).collect::<Result<_>>()?;
        let status = t.strings(b, "status")?;
        let error = t.column(b, "error", &DataType::Utf8, true)?;
        let error = error.as_string::<i32>();
        let mut config: Vec<BTreeMap<String, Value>> = vec![BTreeMap::new(); b.num_rows()];
        for (field, col) in b.schema().fields().iter().zip(b.columns()) {
            let Some(p) = field.name().strip_prefix("config/") else { continue };
            for (i, slot) in config.iter_mut().enumerate() {
                if col.is_null(i) {
                    continue;
                }
                let v = match col.data_type() {
                    DataType::Utf8 => Value::from(col.as_string::<i32>().value(i)),
                    DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(i)),
                    DataType::Float64 => Value::from(col.as_primitive::<Float64Type>().value(i)),
                    other => return Err(SchemaError::new(path, format!("column `{}`: {other} is not a config type", field.name()))),
                };
                slot.insert(p.to_string(), v);
            }
        }
        for (i, config) in config.into_iter().enumerate() {
            let st = TrialStatus::parse(&status[i])
                .ok_or_else(|| SchemaError::new(path, format!("column `status`: `{}` is not a trial status", status[i])))?;
            out.push(TrialRow {
                trial_id: id[i],
                config,
                training_iteration: iteration[i],
                loss: v[0][i],
                accuracy: v[1][i],
                dev_loss: v[2][i],
                test_accuracy: v[3][i],
                time_this_iter_s: v[4][i],
                peak_rss_mb: v[5][i],
                status: st,
                error: (!error.is_null(i)).then(|| error.value(i).to_string()),
            });
        }
    }
    Ok(out)
}

/// One trial at one epoch budget, as `trials.parquet` holds it (its rows,
/// grouped by trial and config), with the epoch selected within it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialCell<'a> {
    pub trial: u32,
    /// Its searched params (`epochs` = the budget where the study searches epochs).
    pub config: &'a BTreeMap<String, Value>,
    pub status: TrialStatus,
    pub error: Option<&'a str>,
    /// (epoch, metric, dev accuracy, test accuracy) of the epoch selected
    /// on the study's metric (ties: the later epoch, as `train` selects);
    /// None where no epoch finished.
    pub selected: Option<Selected>,
    /// The last epoch it reached.
    pub epochs: u32,
}

/// The epoch a cell selected, and its figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Selected {
    pub epoch: u32,
    /// The study's metric at that epoch.
    pub value: f64,
    pub dev_accuracy: f64,
    pub test_accuracy: f64,
}

impl TrialCell<'_> {
    /// Its epoch budget: the `epochs` param where searched, else its last epoch.
    pub fn budget(&self) -> u64 {
        self.config.get("epochs").and_then(Value::as_u64).unwrap_or(self.epochs as u64)
    }
}

/// How a study selects: its metric (a `trials.parquet` column: `accuracy`,
/// `dev_loss` or `loss`) and whether larger is better; from `best.json`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Selection<'a> {
    pub metric: &'a str,
    pub maximize: bool,
}

impl<'a> Selection<'a> {
    pub fn of(best: &'a StudyBest) -> Selection<'a> {
        Selection { metric: &best.metric, maximize: best.mode == "max" }
    }

    fn value(&self, r: &TrialRow) -> Option<f64> {
        match self.metric {
            "accuracy" => Some(r.accuracy),
            "dev_loss" => Some(r.dev_loss),
            "loss" => Some(r.loss),
            _ => None,
        }
    }

    /// Whether `a` is better than `b`.
    pub fn better(&self, a: f64, b: f64) -> bool {
        (a > b) == self.maximize && a != b
    }
}

/// `trials.parquet`'s rows as cells, in file order, each selecting its
/// epoch as the study did. A metric `trials.parquet` does not hold is an
/// error naming it.
pub fn trial_cells<'a>(rows: &'a [TrialRow], how: Selection) -> std::result::Result<Vec<TrialCell<'a>>, String> {
    if rows.first().is_some_and(|r| how.value(r).is_none()) {
        return Err(format!("a study selecting on `{}`: trials.parquet has no such column (accuracy, dev_loss, loss)", how.metric));
    }
    let mut cells = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let mut j = i;
        while j < rows.len() && rows[j].trial_id == rows[i].trial_id && rows[j].config == rows[i].config {
            j += 1;
        }
        let group = &rows[i..j];
        let mut selected: Option<Selected> = None;
        for r in group.iter().filter(|r| r.training_iteration > 0) {
            let Some(v) = how.value(r).filter(|v| v.is_finite()) else { continue };
            if selected.is_none_or(|s| v == s.value || how.better(v, s.value)) {
                selected =
                    Some(Selected { epoch: r.training_iteration, value: v, dev_accuracy: r.accuracy, test_accuracy: r.test_accuracy });
            }
        }
        cells.push(TrialCell {
            trial: rows[i].trial_id,
            config: &rows[i].config,
            status: rows[i].status,
            error: group.iter().find_map(|r| r.error.as_deref()),
            selected,
            epochs: group.iter().map(|r| r.training_iteration).max().unwrap_or(0),
        });
        i = j;
    }
    Ok(cells)
}

/// The best completed cell at each budget by the study's metric (ties: the
/// lower trial id).
pub fn best_per_budget<'a, 'c>(cells: &'c [TrialCell<'a>], how: Selection) -> BTreeMap<u64, &'c TrialCell<'a>> {
    let mut out: BTreeMap<u64, &TrialCell> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.status == TrialStatus::Completed) {
        let Some(s) = c.selected else { continue };
        match out.get(&c.budget()).and_then(|b| b.selected) {
            Some(b) if !how.better(s.value, b.value) => {}
            _ => {
                out.insert(c.budget(), c);
            }
        }
    }
    out
}

/// A config value as a person reads it: text without quotes, numbers as JSON writes them (`0.5`, `1e+30`).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `k=v` pairs of a config, in key order.
pub fn config_text(c: &BTreeMap<String, Value>) -> String {
    c.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect::<Vec<_>>().join(" ")
}

/// A study's `best.json`: the best trial by its metric (on dev, never test),
/// at its selected epoch, and the full params to train it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyBest {
    /// `accuracy` (dev).
    pub metric: String,
    /// `max` or `min`.
    pub mode: String,
    pub value: f64,
    pub trial_id: u32,
    /// Its searched params (with `epochs`, the budget, where the study
    /// searches epochs).
    pub config: BTreeMap<String, Value>,
    /// The epoch selected on dev within the budget.
    pub epoch: usize,
    pub test_accuracy: f64,
    /// The `train` params that reproduce it (canonical; epochs = the budget).
    pub params: Value,
    /// Trials by how they ended.
    pub completed: usize,
    pub stopped: usize,
    pub failed: usize,
}
