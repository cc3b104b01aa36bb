//! Early stopping: whether a running trial is worth its remaining epochs, from the per-epoch reports of a study.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

fn one() -> usize {
    1
}

fn three() -> usize {
    3
}

/// The early-stopping rule of a study, as pipeline.yaml writes it: `stopper: none`,
/// `stopper: {asha: {grace: 2, reduction: 3, max: 30}}` or `stopper: {median: {grace: 2, min_trials: 3}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Stopper {
    /// Every trial runs all its epochs.
    #[default]
    None,
    /// Asynchronous successive halving (one bracket), as Ray Tune's `AsyncHyperBandScheduler`.
    Asha {
        /// The first rung, in epochs (default 1).
        #[serde(default = "one")]
        grace: usize,
        /// Rungs at `grace * reduction^k` epochs; about `1/reduction` of the trials pass each rung (default 3).
        #[serde(default = "three")]
        reduction: usize,
        /// The epoch budget: rungs lie below it and every trial stops when it reaches it. 0 (the default): the
        /// trials' epochs, which the caller fills in.
        #[serde(default)]
        max: usize,
    },
    /// The median stopping rule, as Ray Tune's `MedianStoppingRule` (simplified).
    Median {
        /// No trial is stopped before this epoch, and running means start at it (default 1).
        #[serde(default = "one")]
        grace: usize,
        /// How many other trials must have reached the epoch before the median is trusted (default 3).
        #[serde(default = "three")]
        min_trials: usize,
    },
}

impl Stopper {
    /// grace >= 1, reduction >= 2, max > grace if set (non-zero), min_trials >= 1: one error naming the field.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Stopper::None => Ok(()),
            Stopper::Asha { grace, reduction, max } => {
                if grace < 1 {
                    Err(format!("param `stopper.asha.grace`: needs at least 1 epoch, got {grace}"))
                } else if reduction < 2 {
                    Err(format!("param `stopper.asha.reduction`: needs at least 2, got {reduction}"))
                } else if max != 0 && max <= grace {
                    Err(format!("param `stopper.asha.max`: needs more epochs than grace ({grace}), or 0 for the trials' epochs; got {max}"))
                } else {
                    Ok(())
                }
            }
            Stopper::Median { grace, min_trials } => {
                if grace < 1 {
                    Err(format!("param `stopper.median.grace`: needs at least 1 epoch, got {grace}"))
                } else if min_trials < 1 {
                    Err(format!("param `stopper.median.min_trials`: needs at least 1, got {min_trials}"))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// What a trial should do after a report.
#[derive(PartialEq, Eq, Debug, Clone, Copy)]
pub enum Decision {
    /// Train on.
    Continue,
    /// Stop now (the trial keeps its results so far).
    Stop,
}

/// The state of the stopping rule over a study: fed every (trial, epoch, value) report, in the order they arrive.
/// On resume the caller replays the reports of its journal to rebuild the state.
#[derive(Debug, Clone)]
pub struct Scheduler {
    stopper: Stopper,
    maximize: bool,
    /// ASHA: (rung epoch, trial -> value recorded there), highest rung first.
    rungs: Vec<(usize, BTreeMap<usize, f64>)>,
    /// Median: each trial's reports, (epoch, value), in arrival order.
    history: BTreeMap<usize, Vec<(usize, f64)>>,
}

impl Scheduler {
    /// A scheduler with no reports yet; `maximize` says whether a larger metric is better. Call
    /// [`Stopper::check`] first: an unchecked grace of 0 counts as 1 and a reduction below 2 as 2.
    pub fn new(stopper: Stopper, maximize: bool) -> Scheduler {
        let mut rungs = Vec::new();
        if let Stopper::Asha { grace, reduction, max } = stopper {
            let max = if max == 0 { usize::MAX } else { max };
            let mut epoch = Some(grace.max(1));
            while let Some(e) = epoch.filter(|e| *e < max) {
                rungs.push((e, BTreeMap::new()));
                epoch = e.checked_mul(reduction.max(2));
            }
            rungs.reverse();
        }
        Scheduler { stopper, maximize, rungs, history: BTreeMap::new() }
    }

    /// The ASHA rung epochs, lowest first (empty for other stoppers).
    pub fn rungs(&self) -> Vec<usize> {
        self.rungs.iter().rev().map(|(e, _)| *e).collect()
    }

    /// Records that `trial` reported `value` (the metric) after `epoch` (1-based) and says whether it should stop
    /// now. A NaN value (a diverged trial) stops it and is not recorded; with [`Stopper::None`] it is always
    /// [`Decision::Continue`]. With ASHA every trial stops on reaching `max` epochs (Ray's `stop_last_trials`).
    pub fn report(&mut self, trial: usize, epoch: usize, value: f64) -> Decision {
        if self.stopper == Stopper::None {
            return Decision::Continue;
        }
        if value.is_nan() {
            return Decision::Stop;
        }
        // Larger is better from here on; infinities become huge finite values so that quantiles stay defined.
        let value = if self.maximize { value } else { -value }.clamp(-1e300, 1e300);
        match self.stopper {
            Stopper::None => Decision::Continue,
            Stopper::Asha { reduction, max, .. } => self.asha(trial, epoch, value, reduction.max(2), max),
            Stopper::Median { grace, min_trials } => self.median(trial, epoch, value, grace.max(1), min_trials),
        }
    }

    /// ASHA as Ray Tune's `AsyncHyperBandScheduler.on_trial_result` and `_Bracket.on_result` with one bracket and
    /// `stop_last_trials` (ray-project/ray, python/ray/tune/schedulers/async_hyperband.py): at `max` the trial
    /// stops; otherwise, going down from the highest rung at or below `epoch`, the first rung this trial has no
    /// value at decides: the cutoff is the `(1 - 1/reduction)` quantile (numpy's linear `nanpercentile`) of the
    /// values recorded there by *other* trials so far (this trial's value is recorded after the comparison), no
    /// cutoff while none is recorded, and the trial stops if its value is strictly worse than the cutoff. As in
    /// Ray, there is no minimum count: the second trial at a rung is stopped if it is worse than the first.
    fn asha(&mut self, trial: usize, epoch: usize, value: f64, reduction: usize, max: usize) -> Decision {
        if max != 0 && epoch >= max {
            return Decision::Stop;
        }
        let q = 1.0 - 1.0 / reduction as f64;
        for (milestone, recorded) in &mut self.rungs {
            if epoch < *milestone || recorded.contains_key(&trial) {
                continue;
            }
            let cutoff = quantile(recorded.values().copied().collect(), q);
            recorded.insert(trial, value);
            return match cutoff {
                Some(cutoff) if value < cutoff => Decision::Stop,
                _ => Decision::Continue,
            };
        }
        Decision::Continue
    }

    /// The median stopping rule, as Ray Tune's `MedianStoppingRule.on_trial_result` with `hard_stop` and no
    /// pausing (ray-project/ray, python/ray/tune/schedulers/median_stopping_rule.py): from `grace` epochs on, the
    /// other trials whose latest report is at `epoch` or later each give the mean of their values reported at
    /// epochs `grace..=epoch`; once there are `min_trials` of them, the trial stops if its best value so far is
    /// strictly worse than their median.
    fn median(&mut self, trial: usize, epoch: usize, value: f64, grace: usize, min_trials: usize) -> Decision {
        self.history.entry(trial).or_default().push((epoch, value));
        if epoch < grace {
            return Decision::Continue;
        }
        let means: Vec<f64> = self
            .history
            .iter()
            .filter(|(t, reports)| **t != trial && reports.last().is_some_and(|(e, _)| *e >= epoch))
            .filter_map(|(_, reports)| {
                let scoped: Vec<f64> = reports.iter().filter(|(e, _)| (grace..=epoch).contains(e)).map(|(_, v)| *v).collect();
                (!scoped.is_empty()).then(|| scoped.iter().sum::<f64>() / scoped.len() as f64)
            })
            .collect();
        if means.len() < min_trials.max(1) {
            return Decision::Continue;
        }
        let best = self.history[&trial].iter().map(|(_, v)| *v).fold(f64::NEG_INFINITY, f64::max);
        match quantile(means, 0.5) {
            Some(median) if best < median => Decision::Stop,
            _ => Decision::Continue,
        }
    }
}

/// The `q` quantile of `values` with numpy's default linear interpolation, or `None` if there are none.
fn quantile(mut values: Vec<f64>, q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let h = (values.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(values.len() - 1);
    Some(values[lo] + (h - lo as f64) * (values[hi] - values[lo]))
}
