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
    /// Dev accuracy: what the study selects on.
    pub accuracy: f64,
    /// Recorded, never selected on.
    pub test_accuracy: f64,
    pub time_this_iter_s: f64,
    /// The trial's worker's peak resident memory, MiB (NaN: not measured).
    pub peak_rss_mb: f64,
    pub status: TrialStatus,
    pub error: Option<String>,
}

const F64: [&str; 5] = ["loss", "accuracy", "test_accuracy", "time_this_iter_s", "peak_rss_mb"];

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
    let f64s: [fn(&TrialRow) -> f64; 5] = [|r| r.loss, |r| r.accuracy, |r| r.test_accuracy, |r| r.time_this_iter_s, |r| r.peak_rss_mb];
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
                test_accuracy: v[2][i],
                time_this_iter_s: v[3][i],
                peak_rss_mb: v[4][i],
                status: st,
                error: (!error.is_null(i)).then(|| error.value(i).to_string()),
            });
        }
    }
    Ok(out)
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
