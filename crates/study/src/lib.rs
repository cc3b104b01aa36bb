//! The `study` stage: a hyper-parameter study over Kim's CNN, as one cached
//! pipeline stage. Its trials are `train` runs started through the runner
//! ([`kimcnn_stage::Trials`]), so each is cached under the key a plain
//! `train` stage with the same params and inputs would have: upstream
//! stages run once for the whole study, a trial is never trained twice, and
//! every trial reads the stored embedding matrix, never a copy.
//!
//! - The search space ([`kimcnn_tune::Space`]) is checked against the
//!   `train` params' type before anything runs: every value a param can
//!   take at its extremes is tried on the base params.
//! - Proposals do not depend on timing: trial `i` is proposed from exactly
//!   the trials `0..=i-parallel` (all finished by then) with the ones in
//!   between as constant liars, its random draws seeded by (seed, i).
//! - Epoch budgets cost nothing extra: a searched `epochs: {choice: [...]}`
//!   trains each point once, at the largest budget; an N-epoch budget's
//!   result is the first N epochs of it (training has no schedule that
//!   depends on the total epochs), selected on dev within them.
//! - Early stopping (ASHA, median) on the dev metric the worker reports
//!   each epoch; a stopped trial's worker is killed and its epochs kept.
//! - Resume: an append-only journal (each line with its hash) in the
//!   stage's state directory; a killed study continues without redoing
//!   finished trials. A trial cut off mid-way restarts from its first epoch
//!   (training keeps no checkpoints), its journaled epochs kept.
//! - Outputs: `trials.parquet` (a row per trial per epoch, the columns of
//!   the origin project's Ray Tune dataframe) and `best.json`
//!   ([`kimcnn_schema::StudyBest`]).

mod journal;
mod run;

use kimcnn_cnn::TrainKind;
use kimcnn_schema::{check_device, wants_gpu, Config};
use kimcnn_stage::{parse_params, Job, Kind, Resources, RunInfo, StageError};
use kimcnn_tune::{Algorithm, Dist, Point, Searcher, Space, Stopper};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use journal::{Journal, JournalEvent};

/// Whether a larger metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Max,
    Min,
}

/// The `study` stage's params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StudyParams {
    /// The `train` params every trial starts from (a train stage's `with:`).
    pub base: Config,
    /// The searched params: any `train` param as `{choice: [...]}`,
    /// `{uniform: [lo, hi]}`, `{loguniform: [lo, hi]}` or `{int: [lo, hi]}`.
    /// `epochs: {choice: [10, 15, 20, 30]}` gives every budget from one run.
    pub space: Space,
    /// `grid`, `random` or `tpe`.
    pub search: Algorithm,
    /// TPE: how many trials are random draws before it models the results
    /// (Optuna's `n_startup_trials`; they are random search's draws, seeded
    /// alike).
    pub tpe_startup: usize,
    /// How many points to train (grid: 0, the default, is the whole grid).
    pub trials: usize,
    /// Trials at once, a thread each.
    pub parallel: usize,
    pub seed: u64,
    /// What selects: a dev figure the `train` kind reports each epoch
    /// (`accuracy`, `dev_loss`, `loss`); never a test figure.
    pub metric: String,
    pub mode: Mode,
    /// Early stopping: `none`, `{asha: {grace, reduction, max}}`, `{median: {grace, min_trials}}`.
    pub stopper: Stopper,
    /// Where the trials train (`auto`, `cpu`, `cuda:N`); not in the key.
    #[serde(skip_serializing)]
    pub device: String,
}

impl Default for StudyParams {
    fn default() -> StudyParams {
        StudyParams {
            base: Config::default(),
            space: Space::default(),
            search: Algorithm::Grid,
            tpe_startup: 10,
            trials: 0,
            parallel: 1,
            seed: 0,
            metric: "accuracy".into(),
            mode: Mode::Max,
            stopper: Stopper::None,
            device: "auto".into(),
        }
    }
}

impl StudyParams {
    /// The epoch budgets: the searched `epochs` choices, ascending, or the base's epochs.
    pub fn budgets(&self) -> Vec<usize> {
        match self.space.0.get("epochs") {
            Some(Dist::Choice(v)) => {
                let mut b: Vec<usize> = v.iter().filter_map(Value::as_u64).map(|e| e as usize).collect();
                b.sort_unstable();
                b.dedup();
                b
            }
            _ => vec![self.base.epochs],
        }
    }

    /// The space the searcher proposes from: without `epochs`, which every
    /// trial trains at the largest budget.
    pub fn searched(&self) -> Space {
        let mut s = self.space.clone();
        s.0.remove("epochs");
        s
    }

    pub fn searcher(&self) -> Searcher {
        Searcher { n_startup: self.tpe_startup, ..Searcher::new(self.search, self.searched(), self.seed, self.mode == Mode::Max) }
    }

    /// A trial's `train` params: the base with the point's values, trained
    /// for `epochs`; checked as a `train` stage's params are.
    pub fn trial_params(&self, point: &Point, epochs: usize) -> Result<Config, String> {
        let mut v = serde_json::to_value(&self.base).map_err(|e| e.to_string())?;
        let m = v.as_object_mut().expect("a config is an object");
        for (k, x) in point {
            m.insert(k.clone(), x.clone());
        }
        m.insert("epochs".into(), Value::from(epochs));
        let mut c: Config = parse_params(&v)?;
        c.device = self.device.clone();
        c.check()?;
        Ok(c)
    }

    /// Every check that can be made before a trial runs, each naming the param.
    pub fn check(&mut self) -> Result<(), String> {
        self.base.device = self.device.clone();
        self.base.check().map_err(|e| format!("base: {e}"))?;
        check_device(&self.device)?;
        if !TrainKind::METRICS.contains(&self.metric.as_str()) {
            return Err(format!("param `metric`: `train` never reports `{}`; it reports {}", self.metric, TrainKind::METRICS.join(", ")));
        }
        if self.metric.starts_with("test") || self.metric == "time_this_iter_s" {
            return Err(format!(
                "param `metric`: a study selects on dev figures (accuracy, dev_loss) or the training loss, not `{}`",
                self.metric
            ));
        }
        if self.space.0.is_empty() {
            return Err("param `space`: name at least one param to search".into());
        }
        self.space.check().map_err(|e| format!("space: {e}"))?;
        if let Some(d) = self.space.0.get("epochs") {
            let ok = matches!(d, Dist::Choice(v) if v.iter().all(|e| e.as_u64().is_some_and(|e| e >= 1)));
            if !ok {
                return Err("param `space.epochs`: give the epoch budgets as a choice of whole numbers (`{choice: [10, 15, 20, 30]}`): every point trains once, at the largest, and the others are its first epochs".into());
            }
        }
        if self.parallel < 1 {
            return Err("param `parallel` must be at least 1".into());
        }
        if self.search == Algorithm::Tpe && self.tpe_startup < 1 {
            return Err("param `tpe_startup` must be at least 1 (TPE needs a first result to model)".into());
        }
        let max_epochs = *self.budgets().last().expect("at least one budget");
        let searched = self.searched();
        if searched.0.is_empty() && self.search != Algorithm::Grid {
            return Err("param `space`: only `epochs` is searched; use `search: grid`".into());
        }
        match self.search {
            Algorithm::Grid => {
                let size = if searched.0.is_empty() { 1 } else { searched.grid().map_err(|e| format!("space: {e}"))?.len() };
                if self.trials == 0 || self.trials > size {
                    self.trials = size;
                }
            }
            _ if self.trials == 0 => return Err("param `trials` (the budget) must be at least 1 for a random or TPE search".into()),
            _ => self.searcher().check().map_err(|e| format!("space: {e}"))?,
        }
        // The space against the train params' type: every choice and both ends of every range.
        for probe in searched.probes().into_iter().chain(std::iter::once(Point::new())) {
            if let Err(e) = self.trial_params(&probe, max_epochs) {
                let at: Vec<String> = probe.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                return Err(format!("space: a trial with {} is refused: {e}", at.join(", ")));
            }
        }
        self.stopper.check().map_err(|e| format!("stopper: {e}"))?;
        if let Stopper::Asha { max, .. } = &mut self.stopper {
            if *max == 0 {
                *max = max_epochs;
            }
        }
        Ok(())
    }
}

/// `study`: tokens + vocab + embeddings (+ tokenizer) -> trials, best.
pub struct StudyKind;

impl Kind for StudyKind {
    const NAME: &'static str = "study";
    /// 2: trials.parquet has `dev_loss`.
    const VERSION: u32 = 2;
    const OUTPUTS: &'static [&'static str] = &["trials", "best"];
    /// `trials.parquet` has each epoch's time.
    const MEASURED: &'static [&'static str] = &["trials"];
    type Params = StudyParams;

    fn check(&self, p: &mut StudyParams) -> Result<(), String> {
        p.check()
    }

    fn check_inputs(&self, p: &StudyParams, inputs: &[&str]) -> Result<(), String> {
        Kind::check_inputs(&TrainKind, &p.base, inputs)
            .map_err(|e| e.replace("a `train` stage", "a `study` stage (as the train stages it runs)"))
    }

    fn resources(&self, p: &StudyParams) -> Resources {
        Resources { cpus: p.parallel, gpus: usize::from(wants_gpu(&p.device)) }
    }

    fn device<'p>(&self, p: &'p mut StudyParams) -> Option<&'p mut String> {
        Some(&mut p.device)
    }

    fn run(&self, p: &StudyParams, job: &Job) -> Result<RunInfo, StageError> {
        run::run(p, job)
    }
}

#[cfg(test)]
mod tests;
