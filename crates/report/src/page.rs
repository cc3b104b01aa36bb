//! The `report` stage: whatever the pipeline has computed, as one HTML page
//! with no external resource (figures inline as SVG, a PNG and the data as
//! Parquet beside each) and a Markdown twin.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use kimcnn_schema::{
    best_per_budget, config_text, read_history, read_json, read_neighbours, read_trials, read_tsne, trial_cells, Coverage, EpochRow,
    Metrics, ModelMeta, Neighbour, RunResult, Selection, StudyBest, TokenizeSummary, TrainTimings, TrialRow, TrialStatus, TsnePoint,
    TsneSummary, VocabSummary,
};
use kimcnn_stage::{Env, Job, Kind, RunInfo, StageError};

use crate::figure::{self, Plot};
use crate::figures::{Accuracy, Budgets, Confusion, Curves, Map, Run, Runtime, StudyView, Tsne};
use crate::{fonts, kim_rows, mean_std};

/// The figures, in page order: each is three outputs, `<name>_svg`,
/// `<name>_png` and `<name>_data` (Parquet).
pub const FIGURES: [&str; 6] = ["accuracy", "curves", "confusion", "budgets", "runtime", "tsne"];

/// What a `report` input may be, by the name before its first dot (a glob
/// input `metrics: evaluate.*.metrics` arrives as `metrics.<stage>`).
const INPUTS: [(&str, &str); 12] = [
    ("tsne", "a tsne stage's points"),
    ("tsne_summary", "a tsne stage's summary"),
    ("neighbours", "a neighbours stage's table"),
    ("metrics", "an evaluate stage's metrics"),
    ("model", "a train stage's model"),
    ("history", "a train stage's history"),
    ("timings", "a train stage's timings"),
    ("trials", "a study's trials"),
    ("best", "a study's best"),
    ("tokens", "a tokenize stage's summary"),
    ("vocab", "a vocab stage's summary"),
    ("coverage", "an embed stage's coverage"),
];

/// A `report` stage's params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportParams {
    /// The page's heading.
    pub title: String,
    /// The tuning benchmark's measured file (`bench/study.py`'s JSON, which
    /// `make bench` writes to `bench/out/study.json`), relative to the
    /// project; its content is part of the key. None: the running-time
    /// figure says it was not measured.
    pub study_benchmark: Option<String>,
    /// The side-by-side accuracy file (`bench/accuracy.py`'s JSON, which
    /// `make accuracy` writes to `bench/out/accuracy.json`): kimcnn, the
    /// reference implementation and fastText on the reference's splits,
    /// shown beside Table 2. None: not shown.
    pub accuracy_benchmark: Option<String>,
}

impl Default for ReportParams {
    fn default() -> ReportParams {
        ReportParams { title: "kimcnn: results".into(), study_benchmark: None, accuracy_benchmark: None }
    }
}

/// `bench/study.py`'s result file, the parts the report reads.
#[derive(Debug, Deserialize)]
struct StudyBenchmark {
    budgets: Vec<u64>,
    grid: BenchGrid,
    ways: BTreeMap<String, BenchWay>,
}

#[derive(Debug, Deserialize)]
struct BenchGrid {
    variants: Vec<String>,
    pads: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct BenchWay {
    wall_s: f64,
    peak: BenchPeak,
}

#[derive(Debug, Deserialize)]
struct BenchPeak {
    rss_sum_mb: f64,
}

/// `bench/accuracy.py`'s result file (`make accuracy`), the parts the
/// report reads: test accuracy % per seed on the reference's splits.
#[derive(Debug, Deserialize)]
pub struct AccuracyBenchmark {
    epochs: usize,
    /// data set -> variant -> accuracy % per seed.
    kimcnn: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    reference: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    /// data set -> accuracy % per seed.
    fasttext: BTreeMap<String, Vec<f64>>,
}

impl AccuracyBenchmark {
    /// A row per (data set, variant) that kimcnn or the reference ran.
    fn rows(&self) -> Vec<Vec<String>> {
        let cell = |xs: Option<&Vec<f64>>| match xs {
            Some(xs) if !xs.is_empty() => {
                let (m, s) = mean_std(xs);
                format!("{m:.1} ± {s:.1} ({})", xs.len())
            }
            _ => "–".into(),
        };
        let mut out = vec![["data set", "variant", "kimcnn", "reference (PyTorch)", "fastText", "Kim (2014)"].map(String::from).to_vec()];
        let datasets: std::collections::BTreeSet<&String> = self.kimcnn.keys().chain(self.reference.keys()).collect();
        for d in datasets {
            let variants: std::collections::BTreeSet<&String> =
                self.kimcnn.get(d).into_iter().chain(self.reference.get(d)).flat_map(|m| m.keys()).collect();
            for v in variants {
                let kim = <kimcnn_schema::Variant as kimcnn_schema::Named>::parse(v)
                    .ok()
                    .and_then(|v| crate::kim_2014(d, v))
                    .map_or("–".into(), |k| format!("{k:.1}"));
                out.push(vec![
                    d.clone(),
                    v.clone(),
                    cell(self.kimcnn.get(d).and_then(|m| m.get(v))),
                    cell(self.reference.get(d).and_then(|m| m.get(v))),
                    cell(self.fasttext.get(d)),
                    kim,
                ]);
            }
        }
        out
    }
}

/// The benchmark's ways, in its order, as the origin project named them.
const WAYS: [(&str, &str); 3] = [("a", "sequential grid"), ("b", "Ray Tune, matrix put once"), ("c", "kimcnn tune")];

pub struct ReportKind;

impl Kind for ReportKind {
    const NAME: &'static str = "report";
    /// 2: a section per data set and per study. 3: section ids escaped.
    const VERSION: u32 = 3;
    const OUTPUTS: &'static [&'static str] = &[
        "page",
        "markdown",
        "accuracy_svg",
        "accuracy_png",
        "accuracy_data",
        "curves_svg",
        "curves_png",
        "curves_data",
        "confusion_svg",
        "confusion_png",
        "confusion_data",
        "budgets_svg",
        "budgets_png",
        "budgets_data",
        "runtime_svg",
        "runtime_png",
        "runtime_data",
        "tsne_svg",
        "tsne_png",
        "tsne_data",
    ];
    type Params = ReportParams;

    fn check_inputs(&self, _: &ReportParams, inputs: &[&str]) -> Result<(), String> {
        for i in inputs {
            let kind = i.split('.').next().unwrap_or(i);
            if !INPUTS.iter().any(|(k, _)| *k == kind) {
                let known: Vec<String> = INPUTS.iter().map(|(k, what)| format!("`{k}` ({what})")).collect();
                return Err(format!("a `report` stage takes no input `{i}`; its inputs are {}", known.join(", ")));
            }
        }
        Ok(())
    }

    fn fingerprint(&self, p: &ReportParams, env: &Env) -> Result<Option<String>, StageError> {
        // The page names kimcnn's version: another version, another page.
        let mut f = format!("kimcnn {}; fonts {}", env!("CARGO_PKG_VERSION"), fonts::fingerprint());
        for (param, file, maker) in
            [("study_benchmark", &p.study_benchmark, "make bench"), ("accuracy_benchmark", &p.accuracy_benchmark, "make accuracy")]
        {
            let Some(file) = file else { continue };
            let path = env.project_dir.join(file);
            let bytes = std::fs::read(&path).map_err(|e| {
                StageError::BadInput(format!("{param} `{}`: {e} (`{maker}` writes it; or leave the param out)", path.display()))
            })?;
            write!(f, "; {param} {}", blake3::hash(&bytes).to_hex()).ok();
        }
        Ok(Some(f))
    }

    fn run(&self, p: &ReportParams, job: &Job) -> Result<RunInfo, StageError> {
        let inputs = Inputs::read(job)?;
        let bench = match &p.study_benchmark {
            Some(b) => Some(read_benchmark(&job.env.project_dir.join(b))?),
            None => None,
        };
        let side = match &p.accuracy_benchmark {
            Some(b) => Some(read_json(&job.env.project_dir.join(b)).map_err(|e| StageError::BadInput(e.to_string()))?),
            None => None,
        };
        let report = Report::new(p, &inputs, bench, side)?;
        report.write(job)?;
        Ok(RunInfo::default())
    }
}

fn read_benchmark(path: &std::path::Path) -> Result<Runtime, StageError> {
    let b: StudyBenchmark = read_json(path).map_err(|e| StageError::BadInput(e.to_string()))?;
    let ways = WAYS.iter().filter_map(|(k, label)| b.ways.get(*k).map(|w| (label.to_string(), w.wall_s, w.peak.rss_sum_mb))).collect();
    let budgets: Vec<String> = b.budgets.iter().map(u64::to_string).collect();
    let setup =
        format!("MR fold 0, {} variants x {} pads, budgets {{{}}} epochs", b.grid.variants.len(), b.grid.pads.len(), budgets.join(","));
    Ok(Runtime { ways, setup })
}

/// Everything the inputs hold, by producing stage.
#[derive(Default)]
pub struct Inputs {
    pub metrics: Vec<(String, Metrics)>,
    pub models: BTreeMap<String, ModelMeta>,
    pub histories: BTreeMap<String, Vec<EpochRow>>,
    pub timings: BTreeMap<String, TrainTimings>,
    pub trials: BTreeMap<String, Vec<TrialRow>>,
    pub bests: BTreeMap<String, StudyBest>,
    pub tokens: BTreeMap<String, TokenizeSummary>,
    pub vocab: BTreeMap<String, VocabSummary>,
    pub coverage: BTreeMap<String, Coverage>,
    pub tsne: BTreeMap<String, Vec<TsnePoint>>,
    pub tsne_summary: BTreeMap<String, TsneSummary>,
    pub neighbours: BTreeMap<String, Vec<Neighbour>>,
    /// BLAKE3 over every input's name and content hash.
    pub digest: String,
}

impl Inputs {
    fn read(job: &Job) -> Result<Inputs, StageError> {
        let mut i = Inputs::default();
        let bad = |name: &str, e: kimcnn_schema::SchemaError| StageError::BadInput(format!("input `{name}`: {e}"));
        let mut digest = blake3::Hasher::new();
        for (name, path) in &job.inputs {
            let bytes = std::fs::read(path).map_err(|e| StageError::BadInput(format!("input `{name}`: {}: {e}", path.display())))?;
            digest.update(name.as_bytes());
            digest.update(blake3::hash(&bytes).as_bytes());
            // A glob input arrives as `<input>.<stage>`: the stage pairs a model with its history.
            let Some((kind, stage)) = name.split_once('.') else {
                return Err(StageError::BadInput(format!(
                    "input `{name}` names one stage; a report's inputs are globs (`{name}: \"train.*.{name}?\"`), so that each arrives named by its stage"
                )));
            };
            let stage = stage.to_string();
            match kind {
                "metrics" => i.metrics.push((stage, read_json(path).map_err(|e| bad(name, e))?)),
                "model" => drop(i.models.insert(stage, ModelMeta::read(path).map_err(|e| bad(name, e))?)),
                "history" => drop(i.histories.insert(stage, read_history(path).map_err(|e| bad(name, e))?)),
                "timings" => drop(i.timings.insert(stage, read_json(path).map_err(|e| bad(name, e))?)),
                "trials" => drop(i.trials.insert(stage, read_trials(path).map_err(|e| bad(name, e))?)),
                "best" => drop(i.bests.insert(stage, read_json(path).map_err(|e| bad(name, e))?)),
                "tokens" => drop(i.tokens.insert(stage, read_json(path).map_err(|e| bad(name, e))?)),
                "vocab" => drop(i.vocab.insert(stage, read_json(path).map_err(|e| bad(name, e))?)),
                "coverage" => drop(i.coverage.insert(stage, read_json(path).map_err(|e| bad(name, e))?)),
                "tsne" => drop(i.tsne.insert(stage, read_tsne(path).map_err(|e| bad(name, e))?)),
                "tsne_summary" => drop(i.tsne_summary.insert(stage, read_json(path).map_err(|e| bad(name, e))?)),
                "neighbours" => drop(i.neighbours.insert(stage, read_neighbours(path).map_err(|e| bad(name, e))?)),
                other => return Err(StageError::BadInput(format!("input `{name}`: a report takes no `{other}` input"))),
            }
        }
        for (stage, m) in &i.metrics {
            let k = m.classes.len();
            if m.confusion.len() != k || m.confusion.iter().any(|r| r.len() != k) {
                return Err(StageError::BadInput(format!(
                    "input `metrics.{stage}`: its confusion matrix is not {k} x {k} (one row and column per class)"
                )));
            }
        }
        i.digest = digest.finalize().to_hex()[..16].to_string();
        Ok(i)
    }

    /// t-SNE maps: points with their summary (same stage).
    pub fn maps(&self) -> Vec<Map> {
        self.tsne
            .iter()
            .filter_map(|(stage, points)| {
                Some(Map { stage: stage.clone(), summary: self.tsne_summary.get(stage)?.clone(), points: points.clone() })
            })
            .collect()
    }

    /// Training runs: a model with its history (same stage).
    pub fn runs(&self) -> Vec<Run> {
        self.models
            .iter()
            .filter_map(|(stage, m)| {
                let history = self.histories.get(stage)?.clone();
                Some(Run {
                    stage: stage.clone(),
                    dataset: m.config.dataset.clone(),
                    variant: m.config.variant,
                    fold: m.config.fold,
                    seed: m.config.seed,
                    history,
                    best_epoch: m.best_epoch,
                })
            })
            .collect()
    }
}

/// The page's content, built from the inputs.
pub struct Report<'a> {
    title: String,
    inputs: &'a Inputs,
    results: Vec<RunResult>,
    runs: Vec<Run>,
    studies: Vec<StudyView<'a>>,
    runtime: Runtime,
    maps: Vec<Map>,
    side: Option<AccuracyBenchmark>,
}

/// A rendered figure.
struct Rendered {
    name: &'static str,
    svg: String,
}

impl<'a> Report<'a> {
    pub fn new(
        p: &ReportParams,
        inputs: &'a Inputs,
        bench: Option<Runtime>,
        side: Option<AccuracyBenchmark>,
    ) -> Result<Report<'a>, StageError> {
        let results = inputs.metrics.iter().map(|(_, m)| RunResult::from(m)).collect();
        let mut studies = Vec::new();
        for (stage, rows) in &inputs.trials {
            // How it selected is in its best.json.
            let best = inputs.bests.get(stage).ok_or_else(|| {
                StageError::BadInput(format!("input `trials.{stage}` comes without `best.{stage}` (wire both: `best: study*.best?`)"))
            })?;
            let how = Selection::of(best);
            let cells = trial_cells(rows, how).map_err(|e| StageError::BadInput(format!("input `trials.{stage}`: {e}")))?;
            studies.push(StudyView::new(stage.clone(), cells, how));
        }
        Ok(Report {
            title: p.title.clone(),
            inputs,
            results,
            runs: inputs.runs(),
            studies,
            runtime: bench.unwrap_or(Runtime { ways: Vec::new(), setup: String::new() }),
            maps: inputs.maps(),
            side,
        })
    }

    /// The query words of every neighbours table (labelled on the maps too).
    fn queries(&self) -> Vec<String> {
        let mut q: Vec<String> = self.inputs.neighbours.values().flatten().map(|n| n.query.clone()).collect();
        q.sort();
        q.dedup();
        q
    }

    fn metrics(&self) -> Vec<Metrics> {
        self.inputs.metrics.iter().map(|(_, m)| m.clone()).collect()
    }

    /// Draws one figure to its three outputs.
    fn figure<P: Plot>(&self, job: &Job, name: &'static str, p: &P) -> Result<Rendered, StageError> {
        let out = |suffix: &str| -> Result<PathBuf, StageError> {
            job.outputs.get(&format!("{name}_{suffix}")).cloned().ok_or_else(|| StageError::Failed(format!("no output `{name}_{suffix}`")))
        };
        let svg = family_names(&figure::svg(p, name)?);
        std::fs::write(out("svg")?, &svg)?;
        figure::png(p, name, &out("png")?)?;
        p.data().write(&out("data")?)?;
        Ok(Rendered { name, svg })
    }

    pub fn write(&self, job: &Job) -> Result<(), StageError> {
        let metrics = self.metrics();
        let figs = [
            self.figure(job, "accuracy", &Accuracy { rows: &self.results })?,
            self.figure(job, "curves", &Curves { runs: &self.runs })?,
            self.figure(job, "confusion", &Confusion { metrics: &metrics })?,
            self.figure(job, "budgets", &Budgets { studies: &self.studies })?,
            self.figure(job, "runtime", &self.runtime)?,
            self.figure(job, "tsne", &Tsne { maps: &self.maps, also: &self.queries() })?,
        ];
        let figs: BTreeMap<&str, &Rendered> = figs.iter().map(|f| (f.name, f)).collect();
        let sections = self.sections();
        std::fs::write(&job.outputs["page"], self.html(&sections, &figs))?;
        std::fs::write(&job.outputs["markdown"], self.markdown(&sections))?;
        Ok(())
    }

    /// The page's sections: id, heading, lead text, tables (header + rows), figure.
    fn sections(&self) -> Vec<Section> {
        let mut out = Vec::new();
        let n = self.results.len();
        let datasets: Vec<&str> = crate::datasets_of(&self.results);
        // Kim's Table 2.
        let mut s = Section::new("table2", "Kim's Table 2, this run");
        if n == 0 {
            s.lead =
                "No evaluated runs yet: `kimcnn run` (or `make all`) trains and evaluates them; this page then shows their results.".into();
        } else {
            s.lead = format!(
                "Test accuracy %, mean ± sd over folds or seeds (n runs) of {n} evaluated runs on {}; Kim (2014) after the slash. Each run's epoch is selected on dev, never on test.",
                datasets.join(", ")
            );
            s.tables.push(kim_rows(&self.results));
        }
        if let Some(side) = &self.side {
            s.notes.push(format!(
                "Side by side on the reference implementation's splits ({} epochs, `make accuracy`): test accuracy %, mean ± sd over seeds (n); fastText per data set.",
                side.epochs
            ));
            s.tables.push(side.rows());
        }
        s.figure = Some("accuracy");
        out.push(s);
        let per = crate::datasets::sections(&self.inputs.metrics);
        if !per.is_empty() {
            let mut s = Section::new("datasets", "Results per data set");
            s.lead = "Each data set's runs per variant: the spread over folds or seeds, the epochs selected on dev, and each class's F1 (means over runs).".into();
            out.push(s);
            out.extend(per);
        }
        // Learning curves and confusion.
        let mut s = Section::new("curves", "Learning curves");
        s.lead = format!("{} training runs; each line is one run, coloured by variant.", self.runs.len());
        s.figure = Some("curves");
        out.push(s);
        let mut s = Section::new("confusion", "Confusion matrices");
        s.lead = "Where each data set's test errors go, per variant.".into();
        s.figure = Some("confusion");
        out.push(s);
        // Studies.
        let mut s = Section::new("studies", "Hyper-parameter studies");
        if self.studies.is_empty() {
            s.lead = "No study has run. `make study` runs the origin project's: variant x pad x epochs {10,15,20,30} on MR.".into();
        } else {
            s.lead = "Each trial is a cached train run; a budget's figures are its first epochs, selected on dev within them. Test accuracy is recorded, never selected on.".into();
        }
        s.figure = Some("budgets");
        out.push(s);
        for v in &self.studies {
            let mut s = Section::new(format!("study-{}", v.stage), &format!("Study {}", v.stage));
            s.level = 3;
            let best = self.inputs.bests.get(&v.stage);
            let count = |st: TrialStatus| {
                v.cells.iter().filter(|c| c.status == st).map(|c| c.trial).collect::<std::collections::BTreeSet<_>>().len()
            };
            let mut lines = vec![format!(
                "{} trials ({} completed, {} stopped early, {} failed).",
                v.cells.iter().map(|c| c.trial).collect::<std::collections::BTreeSet<_>>().len(),
                count(TrialStatus::Completed),
                count(TrialStatus::Stopped),
                count(TrialStatus::Failed)
            )];
            if let Some(b) = best {
                let value = if b.metric == "accuracy" { pct(b.value) } else { format!("{:.4}", b.value) };
                lines.push(format!(
                    "Best on dev {} ({}): trial {} ({}), epoch {}: {value} (test accuracy {}).",
                    b.metric,
                    b.mode,
                    b.trial_id,
                    config_text(&b.config),
                    b.epoch,
                    pct(b.test_accuracy)
                ));
            }
            s.notes.push(lines.join(" "));
            let mut t = vec![["budget", "trial", "config", "selected epoch", "dev accuracy", "test accuracy"].map(String::from).to_vec()];
            for (b, c) in best_per_budget(&v.cells, v.how) {
                let Some(sel) = c.selected else { continue };
                t.push(vec![
                    b.to_string(),
                    c.trial.to_string(),
                    config_text(c.config),
                    sel.epoch.to_string(),
                    pct(sel.dev_accuracy),
                    pct(sel.test_accuracy),
                ]);
            }
            if t.len() > 1 {
                s.tables.push(t);
            }
            // A trial fails once, whatever budgets it stood for.
            let mut failed: BTreeMap<u32, String> = BTreeMap::new();
            for c in v.cells.iter().filter(|c| c.status == TrialStatus::Failed) {
                let mut config = c.config.clone();
                config.remove("epochs");
                failed
                    .entry(c.trial)
                    .or_insert_with(|| format!("trial {} ({}): {}", c.trial, config_text(&config), c.error.unwrap_or("no error recorded")));
            }
            let failed: Vec<String> = failed.into_values().collect();
            if !failed.is_empty() {
                s.notes.push(format!("Failed: {}", failed.join("; ")));
            }
            out.push(s);
        }
        // Running time.
        let mut s = Section::new("runtime", "Running time of a search");
        s.lead = if self.runtime.ways.is_empty() {
            "The origin project's running-time comparison (sequential grid, Ray Tune with the matrix put once, kimcnn) is measured by `make bench`; this page shows it when the report's `study_benchmark` names that file.".into()
        } else {
            format!("Measured by `make bench` (bench/study.py) on {}.", self.runtime.setup)
        };
        s.figure = Some("runtime");
        out.push(s);
        // Word vectors: Kim's Table 3 and the maps.
        let mut s = Section::new("words", "Word vectors before and after fine-tuning");
        s.lead = "Kim's Table 3: each word's nearest words by cosine in the pretrained (static) vectors and in the fine-tuned ones. Below, t-SNE maps of the most frequent words.".into();
        for (stage, rows) in &self.inputs.neighbours {
            let Some(first) = rows.first() else { continue };
            s.notes.push(format!(
                "{stage}: {} CNN-{}, fine-tuned from the pretrained vectors.",
                first.dataset.to_uppercase(),
                first.variant
            ));
            let mut t = vec![["word", "static (pretrained)", "fine-tuned"].map(String::from).to_vec()];
            let mut queries: Vec<&str> = Vec::new();
            for r in rows {
                if !queries.contains(&r.query.as_str()) {
                    queries.push(&r.query);
                }
            }
            for q in queries {
                let mine: Vec<&Neighbour> = rows.iter().filter(|r| r.query == q).collect();
                if mine.iter().all(|r| r.rank == 0) {
                    t.push(vec![q.to_string(), "not in the vocabulary".into(), String::new()]);
                    continue;
                }
                let list = |f: fn(&Neighbour) -> (&String, f64)| {
                    mine.iter().map(|r| f(r)).map(|(w, c)| format!("{w} ({c:.2})")).collect::<Vec<_>>().join(", ")
                };
                t.push(vec![q.to_string(), list(|r| (&r.static_word, r.static_cosine)), list(|r| (&r.tuned_word, r.tuned_cosine))]);
            }
            s.tables.push(t);
        }
        if self.inputs.neighbours.is_empty() && self.maps.is_empty() {
            s.lead = "No word-vector analysis among the report's inputs (`neighbours` and `tsne` stages make them).".into();
        }
        s.figure = Some("tsne");
        out.push(s);
        // Data sets.
        let mut s = Section::new("data", "Data sets");
        let mut t =
            vec![["tokenize stage", "rows", "splits", "classes", "mean / max length", "re-decoded lines"].map(String::from).to_vec()];
        for (stage, sum) in &self.inputs.tokens {
            let splits: Vec<String> = sum.splits.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let folds = sum.folds.map(|f| format!(", {f} folds")).unwrap_or_default();
            let redecoded: usize = sum.redecoded_latin1.values().sum();
            t.push(vec![
                stage.clone(),
                sum.rows.to_string(),
                format!("{}{folds}", splits.join(", ")),
                sum.classes.len().to_string(),
                format!("{:.1} / {}", sum.mean_len, sum.max_len),
                redecoded.to_string(),
            ]);
        }
        if t.len() > 1 {
            s.tables.push(t);
        }
        let mut t = vec![["vocab stage", "words", "distinct", "dropped", "<unk> tokens"].map(String::from).to_vec()];
        for (stage, v) in &self.inputs.vocab {
            t.push(vec![
                stage.clone(),
                v.size.to_string(),
                v.distinct_words.to_string(),
                v.dropped_words.to_string(),
                v.unk_occurrences.to_string(),
            ]);
        }
        if t.len() > 1 {
            s.tables.push(t);
        }
        let mut t = vec![["embed stage", "vectors", "dim", "words found", "tokens found", "unknown words"].map(String::from).to_vec()];
        for (stage, c) in &self.inputs.coverage {
            t.push(vec![
                stage.clone(),
                c.format.clone(),
                c.dim.to_string(),
                format!("{} of {} ({})", c.words_found, c.vocab_words, pct(c.word_coverage)),
                pct(c.token_coverage),
                format!("{} a={:.3}", c.unk_init, c.unk_scale),
            ]);
        }
        if t.len() > 1 {
            s.tables.push(t);
        }
        if s.tables.is_empty() {
            s.lead = "No data set summaries among the report's inputs.".into();
        }
        out.push(s);
        // How it was produced.
        let mut s = Section::new("provenance", "How it was produced");
        s.lead = format!(
            "kimcnn {}; {} inputs, BLAKE3 over their names and contents {}. Each stage's key and inputs are in pipeline.lock; `kimcnn verify --recompute` reruns them. The copy `kimcnn report` writes ends with the lock's hash and every stage's wall time (This run).",
            env!("CARGO_PKG_VERSION"),
            self.input_count(),
            self.inputs.digest
        );
        let mut t = vec![["train stage", "device", "threads", "numerics", "torch", "seconds"].map(String::from).to_vec()];
        let mut total = Vec::new();
        for (stage, m) in &self.inputs.models {
            let secs = self.inputs.timings.get(stage).map(|t| t.seconds);
            total.extend(secs);
            let (mode, torch) =
                m.numerics.as_ref().map_or(("fast".to_string(), "-".to_string()), |n| (format!("{} ({})", n.mode, n.isa), n.torch.clone()));
            t.push(vec![
                stage.clone(),
                m.device.clone().unwrap_or_else(|| "-".into()),
                m.threads.map_or("-".into(), |t| t.to_string()),
                mode,
                torch,
                secs.map_or("-".into(), |s| format!("{s:.1}")),
            ]);
        }
        if t.len() > 1 {
            let (m, _) = mean_std(&total);
            s.notes.push(format!(
                "{} training runs, {:.0} s in all (mean {:.1} s).",
                total.len(),
                total.iter().sum::<f64>(),
                if total.is_empty() { 0.0 } else { m }
            ));
            s.tables.push(t);
        }
        out.push(s);
        out
    }

    fn input_count(&self) -> usize {
        let i = self.inputs;
        i.metrics.len()
            + i.models.len()
            + i.histories.len()
            + i.timings.len()
            + i.trials.len()
            + i.bests.len()
            + i.tokens.len()
            + i.vocab.len()
            + i.coverage.len()
            + i.tsne.len()
            + i.tsne_summary.len()
            + i.neighbours.len()
    }

    fn html(&self, sections: &[Section], figs: &BTreeMap<&str, &Rendered>) -> String {
        let mut h = String::new();
        h.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        // Nothing may leave the file: a request the page would make is refused and logged.
        h.push_str(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n",
        );
        h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        writeln!(h, "<title>{}</title>", esc(&self.title)).ok();
        h.push_str(STYLE);
        h.push_str("</head>\n<body>\n");
        writeln!(h, "<h1>{}</h1>", esc(&self.title)).ok();
        h.push_str("<nav>");
        for s in sections.iter().filter(|s| s.level == 2) {
            write!(h, "<a href=\"#{}\">{}</a> ", esc(&s.id), esc(&s.heading)).ok();
        }
        h.push_str("</nav>\n");
        for s in sections {
            writeln!(h, "<section id=\"{}\">\n<h{l}>{}</h{l}>", esc(&s.id), esc(&s.heading), l = s.level).ok();
            if !s.lead.is_empty() {
                writeln!(h, "<p>{}</p>", inline_code(&esc(&s.lead))).ok();
            }
            for n in &s.notes {
                writeln!(h, "<p class=\"note\">{}</p>", inline_code(&esc(n))).ok();
            }
            for t in &s.tables {
                h.push_str("<table>\n<thead><tr>");
                for c in &t[0] {
                    write!(h, "<th>{}</th>", esc(c)).ok();
                }
                h.push_str("</tr></thead>\n<tbody>\n");
                for r in &t[1..] {
                    h.push_str("<tr>");
                    for c in r {
                        write!(h, "<td>{}</td>", esc(c)).ok();
                    }
                    h.push_str("</tr>\n");
                }
                h.push_str("</tbody></table>\n");
            }
            if let Some(f) = s.figure.and_then(|f| figs.get(f)) {
                let b64 = base64::engine::general_purpose::STANDARD.encode(f.svg.as_bytes());
                writeln!(
                    h,
                    "<figure><img alt=\"{} figure\" src=\"data:image/svg+xml;base64,{b64}\"><figcaption>figures/{}.png, its data figures/{}.parquet</figcaption></figure>",
                    f.name, f.name, f.name
                )
                .ok();
            }
            h.push_str("</section>\n");
        }
        h.push_str("</body>\n</html>\n");
        h
    }

    fn markdown(&self, sections: &[Section]) -> String {
        let mut m = format!("# {}\n\n", self.title);
        for s in sections {
            writeln!(m, "{} {}\n", "#".repeat(s.level as usize), s.heading).ok();
            if !s.lead.is_empty() {
                writeln!(m, "{}\n", s.lead).ok();
            }
            for n in &s.notes {
                writeln!(m, "{n}\n").ok();
            }
            for t in &s.tables {
                writeln!(m, "| {} |", t[0].join(" | ")).ok();
                writeln!(m, "|{}", "---|".repeat(t[0].len())).ok();
                for r in &t[1..] {
                    writeln!(m, "| {} |", r.join(" | ").replace('\n', " ")).ok();
                }
                m.push('\n');
            }
            if let Some(f) = s.figure {
                writeln!(m, "![{f}](figures/{f}.png)\n").ok();
            }
        }
        m
    }
}

pub(crate) struct Section {
    pub id: String,
    /// 2: a section in the page's menu; 3: a part of the one before.
    pub level: u8,
    pub heading: String,
    pub lead: String,
    pub notes: Vec<String>,
    pub tables: Vec<Vec<Vec<String>>>,
    pub figure: Option<&'static str>,
}

impl Section {
    pub fn new(id: impl Into<String>, heading: &str) -> Section {
        Section {
            id: id.into(),
            level: 2,
            heading: heading.into(),
            lead: String::new(),
            notes: Vec::new(),
            tables: Vec::new(),
            figure: None,
        }
    }
}

pub(crate) fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", 100.0 * x)
    } else {
        "-".into()
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `code` spans in already-escaped text.
fn inline_code(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            write!(out, "<code>{part}</code>").ok();
        } else {
            out.push_str(part);
        }
    }
    out
}

/// plotters' family names as a browser knows them.
fn family_names(svg: &str) -> String {
    svg.replace("font-family=\"hangul\"", "font-family=\"NanumGothic, 'Nanum Gothic', sans-serif\"")
        .replace("font-family=\"sans-serif\"", "font-family=\"'DejaVu Sans', Verdana, sans-serif\"")
}

const STYLE: &str = "<style>
body { font-family: 'DejaVu Sans', Verdana, 'Nanum Gothic', sans-serif; max-width: 1040px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.3em; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; color: #1f77b4; text-decoration: none; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
th { background: #f4f6f8; }
tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #777; font-size: 0.8em; }
code { background: #f4f4f4; padding: 0 0.25em; }
.note { color: #444; }
</style>
";
