//! Proposals: which point a study tries next (grid, random or TPE).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::space::{float, Dist, Point, Space};
use crate::tpe;

/// How a study picks its points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Every point of the grid in order ([`Space::grid`]), then none.
    Grid,
    /// Independent draws from each param's distribution.
    #[default]
    Random,
    /// Tree-structured Parzen Estimator (independent per param), after `n_startup` random trials.
    Tpe,
}

/// A finished trial as the searcher sees it: its point and its objective value (None: the trial failed or
/// diverged; TPE treats it as the worst).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The trial's config.
    pub point: Point,
    /// Its objective value; `None` (or a non-finite value) if it failed or diverged.
    pub value: Option<f64>,
}

/// Proposes the points of a study. Stateless: everything it needs comes in each call to [`Searcher::propose`].
#[derive(Debug, Clone, PartialEq)]
pub struct Searcher {
    /// How points are picked.
    pub algorithm: Algorithm,
    /// What is searched.
    pub space: Space,
    /// The study's seed.
    pub seed: u64,
    /// Whether a larger objective value is better.
    pub maximize: bool,
    /// TPE: the first `n_startup` trials (by index) are random draws (Optuna's `n_startup_trials`, default 10).
    pub n_startup: usize,
    /// TPE: candidates drawn from l(x) per param, of which the one maximising l(x)/g(x) is proposed (Optuna's
    /// `n_ei_candidates`, default 24).
    pub n_candidates: usize,
}

impl Searcher {
    /// A searcher with the TPE settings at Optuna's defaults (`n_startup` 10, `n_candidates` 24).
    pub fn new(algorithm: Algorithm, space: Space, seed: u64, maximize: bool) -> Searcher {
        Searcher { algorithm, space, seed, maximize, n_startup: 10, n_candidates: 24 }
    }

    /// The space's [`Space::check`], and for a grid search that the space is griddable within
    /// [`crate::space::MAX_GRID`] points; `n_candidates` at least 1.
    pub fn check(&self) -> Result<(), String> {
        self.space.check()?;
        if self.algorithm == Algorithm::Grid {
            match self.space.grid_size() {
                Some(n) if n <= crate::space::MAX_GRID => {}
                // Not griddable or too big: `grid` says which.
                _ => drop(self.space.grid()?),
            }
        }
        if self.algorithm == Algorithm::Tpe && self.n_candidates == 0 {
            return Err("param `n_candidates`: needs at least 1, got 0".to_string());
        }
        Ok(())
    }

    /// The point of trial `index` (0-based). Deterministic: a pure function of (self, index, done, pending): its
    /// RNG is seeded from (seed, index) only, so the same study proposes the same trials whatever the timing, as
    /// long as the caller passes the same `done`/`pending` sets (the caller will pass, for trial i, exactly the
    /// trials 0..i-lag as done and the rest as pending), in trial order.
    ///
    /// Grid: the index-th grid point (None past the end; the seed does not shuffle). Random: independent draws.
    /// TPE: the first n_startup random, then TPE over `done` plus `pending` as constant liars (the worst value
    /// observed so far, or skip if none). None too if the space fails [`Space::check`] (or is not griddable, for
    /// a grid); call [`Searcher::check`] first.
    pub fn propose(&self, index: usize, done: &[Observation], pending: &[Point]) -> Option<Point> {
        self.space.check().ok()?;
        let mut rng = trial_rng(self.seed, index);
        match self.algorithm {
            Algorithm::Grid => self.space.grid_point(index as u64),
            Algorithm::Random => Some(random_point(&self.space, &mut rng)),
            Algorithm::Tpe if index < self.n_startup => Some(random_point(&self.space, &mut rng)),
            Algorithm::Tpe => Some(
                tpe::propose(&self.space, &mut rng, done, pending, self.maximize, self.n_candidates.max(1))
                    .unwrap_or_else(|| random_point(&self.space, &mut rng)),
            ),
        }
    }
}

/// The RNG of trial `index`: seeded from the study's seed, one ChaCha stream per trial index.
fn trial_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Independent draws from every param's distribution, in name order. The space must pass [`Space::check`].
pub(crate) fn random_point(space: &Space, rng: &mut ChaCha8Rng) -> Point {
    space.0.iter().map(|(name, dist)| (name.clone(), random_value(dist, rng))).collect()
}

/// One draw from a checked distribution.
fn random_value(dist: &Dist, rng: &mut ChaCha8Rng) -> serde_json::Value {
    match dist {
        Dist::Choice(values) => values[rng.random_range(0..values.len())].clone(),
        Dist::Uniform([low, high]) => float((low + rng.random::<f64>() * (high - low)).clamp(*low, *high)),
        Dist::LogUniform([low, high]) => {
            let (a, b) = (low.ln(), high.ln());
            float((a + rng.random::<f64>() * (b - a)).exp().clamp(*low, *high))
        }
        Dist::Int([low, high]) => serde_json::Value::from(rng.random_range(*low..=*high)),
    }
}
