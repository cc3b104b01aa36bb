//! The `aggregate` and `report` stages. `aggregate` collects the metrics of
//! many train/evaluate runs (folds, seeds, variants, data sets) into
//! `results.parquet` (one row per run), a Markdown table in the layout of
//! Kim's Table 2 (data set x variant: mean, standard deviation, n) with
//! Kim's published figure beside each cell, and the same as a figure.
//! `report` turns whatever the pipeline computed into one self-contained
//! HTML page of tables and figures (`page`), with a Markdown twin.

use kimcnn_schema::{Metrics, Pad, RunResult, Variant};
use kimcnn_stage::{Job, Kind, RunInfo, StageError};
use serde::{Deserialize, Serialize};

mod copy;
mod datasets;
mod figure;
mod figures;
pub mod fonts;
mod page;
pub use copy::{appendix, StageTime};
pub use page::{AccuracyBenchmark, ReportKind, ReportParams, FIGURES};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A font the labels need is not installed: the message names the package.
    #[error("{0}")]
    Font(String),
    #[error("figure `{0}`: {1}")]
    Draw(String, String),
    #[error("{0}: {1}")]
    Io(String, String),
}

/// An `aggregate` stage: every `metrics.*` input -> `results` (parquet),
/// `table` (Markdown, Kim's layout), `plot` (SVG: a dot per run, the mean,
/// boxes from 8 runs, Kim's figure).
pub struct AggregateKind;

/// An `aggregate` stage takes no params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl Kind for AggregateKind {
    const NAME: &'static str = "aggregate";
    /// 3: `fold` is null (not -1) for data sets with given splits; a
    /// variant's own init does not split the table. 4: the plot shows
    /// every run and the mean; boxes only from 8 runs.
    const VERSION: u32 = 4;
    const OUTPUTS: &'static [&'static str] = &["results", "table", "plot"];
    type Params = NoParams;

    /// The plot's text is laid out with the installed font's metrics.
    fn fingerprint(&self, _: &NoParams, _: &kimcnn_stage::Env) -> Result<Option<String>, StageError> {
        Ok(Some(format!("fonts {}", fonts::fingerprint())))
    }

    fn check_inputs(&self, _: &NoParams, inputs: &[&str]) -> Result<(), String> {
        if inputs.is_empty() || inputs.iter().any(|i| !i.starts_with("metrics")) {
            return Err("an `aggregate` stage takes `metrics` inputs, e.g. `metrics: evaluate.*.metrics`".into());
        }
        Ok(())
    }

    fn run(&self, _: &NoParams, job: &Job) -> Result<RunInfo, StageError> {
        let mut rows = Vec::new();
        for (name, path) in &job.inputs {
            let m: Metrics = kimcnn_schema::read_json(path).map_err(|e| StageError::BadInput(format!("input `{name}`: {e}")))?;
            rows.push(RunResult::from(&m));
        }
        kimcnn_schema::write_results(&job.outputs["results"], &rows)?;
        std::fs::write(&job.outputs["table"], kim_table(&rows))?;
        std::fs::write(&job.outputs["plot"], figure::svg(&figures::Accuracy { rows: &rows }, "accuracy")?)?;
        Ok(RunInfo::default())
    }
}

/// Kim (2014), Table 2, accuracy %.
pub fn kim_2014(dataset: &str, variant: Variant) -> Option<f64> {
    let col = ["mr", "sst1", "sst2", "subj", "trec"].iter().position(|d| *d == dataset)?;
    let row: [f64; 5] = match variant {
        Variant::Rand => [76.1, 45.0, 82.7, 89.6, 91.2],
        Variant::Static => [81.0, 45.5, 86.8, 93.0, 92.8],
        Variant::NonStatic => [81.5, 48.0, 87.2, 93.4, 93.6],
        Variant::Multichannel => [81.1, 47.4, 88.1, 93.2, 92.2],
    };
    Some(row[col])
}

pub(crate) const VARIANTS: [Variant; 4] = [Variant::Rand, Variant::Static, Variant::NonStatic, Variant::Multichannel];
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

/// The (pad, init) settings a variant's runs used, sorted.
fn settings(rows: &[RunResult], v: Variant) -> Vec<(Pad, &str)> {
    let mut c: Vec<(Pad, &str)> = rows.iter().filter(|r| r.variant == v).map(|r| (r.pad, r.init.as_str())).collect();
    c.sort();
    c.dedup();
    c
}

/// Whether some variant ran with more than one (pad, init): then rows and
/// boxes are labelled with them. (Variants differ in init by design:
/// CNN-rand draws every word, the others only the unknown ones.)
fn mixed_settings(rows: &[RunResult]) -> bool {
    VARIANTS.iter().any(|&v| settings(rows, v).len() > 1)
}

/// Kim's layout: a row per variant, a column per data set; each cell
/// `mean ± sd (n)` in %, then Kim's figure. A variant run with several pads
/// or inits gets a row for each. The header row first.
pub fn kim_rows(rows: &[RunResult]) -> Vec<Vec<String>> {
    let datasets = datasets_of(rows);
    let many = mixed_settings(rows);
    let mut head: Vec<String> = if many { vec!["pad / init".into()] } else { Vec::new() };
    head.push("model".into());
    head.extend(datasets.iter().map(|d| d.to_string()));
    let mut out = vec![head];
    for v in VARIANTS {
        for (pad, init) in settings(rows, v) {
            let mut row: Vec<String> = if many { vec![format!("{pad} / {init}")] } else { Vec::new() };
            row.push(format!("CNN-{v}"));
            row.extend(datasets.iter().map(|d| {
                let accs: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.variant == v && r.pad == pad && r.init == init && r.dataset == *d)
                    .map(|r| 100.0 * r.accuracy)
                    .collect();
                let kim = kim_2014(d, v).map(|k| format!(" / {k:.1}")).unwrap_or_default();
                if accs.is_empty() {
                    format!("–{kim}")
                } else {
                    let (m, s) = mean_std(&accs);
                    format!("{m:.1} ± {s:.1} ({}){kim}", accs.len())
                }
            }));
            out.push(row);
        }
    }
    out
}

/// [`kim_rows`] as a Markdown table, with a line saying what the cells are.
pub fn kim_table(rows: &[RunResult]) -> String {
    let t = kim_rows(rows);
    let mut out = String::from("Test accuracy %, mean ± sd over folds/seeds (n runs); Kim (2014) after the slash.\n\n");
    out.push_str(&format!("| {} |\n", t[0].join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(t[0].len())));
    for r in &t[1..] {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A run's result for tests (fold -1: given splits).
    pub(crate) fn r(d: &str, variant: Variant, fold: i32, acc: f64) -> RunResult {
        RunResult {
            dataset: d.into(),
            variant,
            fold: (fold >= 0).then_some(fold),
            seed: 1,
            accuracy: acc,
            macro_f1: acc,
            epochs: 25,
            best_epoch: 3,
            pad: Pad::Kim,
            init: "uniform".into(),
        }
    }

    #[test]
    fn table_in_kims_layout_with_his_figures() {
        let rows = vec![r("mr", Variant::Rand, 0, 0.75), r("mr", Variant::Rand, 1, 0.77), r("trec", Variant::NonStatic, -1, 0.9)];
        let t = kim_table(&rows);
        assert!(t.contains("| model | mr | trec |"), "{t}");
        assert!(t.contains("| CNN-rand | 76.0 ± 1.4 (2) / 76.1 | – / 91.2 |"), "{t}");
        assert!(t.contains("| CNN-non-static | – / 81.5 | 90.0 ± 0.0 (1) / 93.6 |"), "{t}");
        assert!(!t.contains("multichannel"));
    }

    #[test]
    fn rows_split_by_setting_only_where_a_variant_ran_with_several() {
        let mut rows = vec![r("mr", Variant::Rand, 0, 0.7), r("mr", Variant::Static, 0, 0.75)];
        rows[0].init = "uniform a=0.250".into();
        let t = kim_table(&rows);
        assert!(t.contains("| model | mr |") && t.contains("| CNN-rand | 70.0 ± 0.0 (1) / 76.1 |"), "CNN-rand's own init is no split: {t}");
        rows.push(RunResult { pad: Pad::Bucket, accuracy: 0.8, ..rows[1].clone() });
        let t = kim_table(&rows);
        assert!(t.contains("| pad / init | model | mr |"), "{t}");
        assert!(t.contains("| kim / uniform | CNN-static | 75.0") && t.contains("| bucket / uniform | CNN-static | 80.0"), "{t}");
    }
}
