//! TPE, the Tree-structured Parzen Estimator (Bergstra et al. 2011, "Algorithms for Hyper-Parameter
//! Optimization"), in the manner of Optuna's `TPESampler` with its defaults (independent sampling per param,
//! `consider_prior`, `prior_weight` 1, `consider_magic_clip`, no `consider_endpoints`, `gamma(n) = min(ceil(0.1
//! n), 25)`, Optuna's `default_weights`, constant liar for running trials).
//!
//! Why by hand: crates.io has `tpe` (sile/tpe: one stateful `TpeOptimizer` per param fed by `ask`/`tell`, no
//! notion of running trials, little activity since its 0.2/0.3 releases) and `optimizer` (an Optuna-like
//! `Study`/`Trial` framework whose `TpeSampler` owns the trial history and drives the loop). Neither is in the
//! workspace's dependency table, and neither gives what a study here needs: a proposal that is a pure function
//! of (seed, trial index, done trials, pending trials) so that a resumed or re-timed study proposes the same
//! points without stored sampler state, with pending trials as constant liars, categorical params given as JSON
//! values, and failed trials counted as the worst. The algorithm itself is a few hundred lines.
//!
//! For each param separately: the observations (done trials, then pending ones, in trial order) are split into
//! "below" (the best `gamma(n)` finite values) and "above" (the rest, failed trials and pending trials
//! included). Each group gives a Parzen estimator: a mixture of truncated Gaussians (numeric params, in log
//! space for `loguniform`, discretised for `int`) or of smoothed one-hot category distributions (`choice`),
//! plus a prior component. `n_candidates` values are drawn from l (the below estimator) and the one with the
//! largest log l(x) - log g(x) is proposed.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde_json::Value;

use crate::search::Observation;
use crate::space::{float, Dist, Point, Space};

/// Weight of the prior component of every estimator (Optuna's `prior_weight`).
const PRIOR_WEIGHT: f64 = 1.0;

/// ln(sqrt(2 pi)).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Optuna's `default_gamma`: how many of `n` trials are "below" (good).
fn gamma(n: usize) -> usize {
    n.div_ceil(10).min(25)
}

/// Optuna's `default_weights`: equal weights up to 25 observations, then a linear ramp from 1/n for the oldest
/// observations and 1 for the newest 25.
fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let start = 1.0 / n as f64;
    let mut w: Vec<f64> = match ramp {
        0 => Vec::new(),
        1 => vec![start],
        _ => (0..ramp).map(|i| start + (1.0 - start) * i as f64 / (ramp - 1) as f64).collect(),
    };
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

/// The mixture weights of an estimator over `n` observations: [`default_weights`] plus the prior's, normalised.
fn mixture_weights(n: usize) -> Vec<f64> {
    let mut w = default_weights(n);
    w.push(PRIOR_WEIGHT);
    let sum: f64 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= sum);
    w
}

/// The TPE proposal for a checked space, or `None` when no done trial has a finite value (nothing to model).
pub(crate) fn propose(
    space: &Space,
    rng: &mut ChaCha8Rng,
    done: &[Observation],
    pending: &[Point],
    maximize: bool,
    n_candidates: usize,
) -> Option<Point> {
    // Lower key is better; failed/diverged trials have none.
    let keys: Vec<Option<f64>> = done.iter().map(|o| o.value.filter(|v| v.is_finite()).map(|v| if maximize { -v } else { v })).collect();
    let mut ranked: Vec<usize> = (0..done.len()).filter(|&i| keys[i].is_some()).collect();
    if ranked.is_empty() {
        return None;
    }
    // Pending trials are constant liars at the worst value seen so far: with at least one finite value (checked
    // above) they always land in the "above" group, which is where they go here directly.
    let points: Vec<&Point> = done.iter().map(|o| &o.point).chain(pending).collect();
    let n_below = gamma(points.len()).min(ranked.len());
    ranked.sort_by(|&a, &b| keys[a].unwrap_or(f64::INFINITY).total_cmp(&keys[b].unwrap_or(f64::INFINITY)).then(a.cmp(&b)));
    let mut is_below = vec![false; points.len()];
    ranked[..n_below].iter().for_each(|&i| is_below[i] = true);
    let below: Vec<&Point> = points.iter().zip(&is_below).filter(|(_, b)| **b).map(|(p, _)| *p).collect();
    let above: Vec<&Point> = points.iter().zip(&is_below).filter(|(_, b)| !**b).map(|(p, _)| *p).collect();

    let mut point = Point::new();
    for (name, dist) in &space.0 {
        let value = match dist {
            Dist::Choice(values) => {
                let indices = |group: &[&Point]| -> Vec<usize> {
                    group.iter().filter_map(|p| values.iter().position(|v| Some(v) == p.get(name))).collect()
                };
                let l = categorical(&indices(&below), values.len());
                let g = categorical(&indices(&above), values.len());
                let mut best = (f64::NEG_INFINITY, 0);
                for _ in 0..n_candidates {
                    let c = sample_index(&l, rng);
                    let score = l[c].ln() - g[c].ln();
                    if score > best.0 {
                        best = (score, c);
                    }
                }
                values[best.1].clone()
            }
            _ => {
                let scale = Scale::of(dist)?;
                let observed = |group: &[&Point]| -> Vec<f64> { group.iter().filter_map(|p| scale.transform(p.get(name)?)).collect() };
                let l = Parzen::new(&observed(&below), scale);
                let g = Parzen::new(&observed(&above), scale);
                let mut best = (f64::NEG_INFINITY, None);
                for _ in 0..n_candidates {
                    let x = l.sample(rng);
                    let score = l.ln_pdf(x) - g.ln_pdf(x);
                    if score > best.0 || best.1.is_none() {
                        best = (score, Some(x));
                    }
                }
                scale.untransform(best.1?)
            }
        };
        point.insert(name.clone(), value);
    }
    Some(point)
}

/// A numeric param in the space its estimator works in: `[a, b]` (log space for `loguniform`; for `int`,
/// `[low - 0.5, high + 0.5]` with values at the integers).
#[derive(Clone, Copy, Debug)]
struct Scale {
    a: f64,
    b: f64,
    log: bool,
    discrete: bool,
    /// The param's own bounds (not transformed), to clamp proposals into.
    low: f64,
    high: f64,
}

impl Scale {
    fn of(dist: &Dist) -> Option<Scale> {
        match dist {
            Dist::Uniform([low, high]) => Some(Scale { a: *low, b: *high, log: false, discrete: false, low: *low, high: *high }),
            Dist::LogUniform([low, high]) => Some(Scale { a: low.ln(), b: high.ln(), log: true, discrete: false, low: *low, high: *high }),
            Dist::Int([low, high]) => {
                let (low, high) = (*low as f64, *high as f64);
                Some(Scale { a: low - 0.5, b: high + 0.5, log: false, discrete: true, low, high })
            }
            Dist::Choice(_) => None,
        }
    }

    /// An observed value in estimator space, or `None` if it is missing, of the wrong type or out of range (a
    /// space changed since the trial ran).
    fn transform(&self, value: &Value) -> Option<f64> {
        let x = if self.discrete { value.as_i64()? as f64 } else { value.as_f64()? };
        if !(self.low..=self.high).contains(&x) {
            return None;
        }
        Some(if self.log { x.ln() } else { x })
    }

    /// A proposal from estimator space back to a JSON value.
    fn untransform(&self, x: f64) -> Value {
        if self.discrete {
            Value::from(x.round().clamp(self.low, self.high) as i64)
        } else if self.log {
            float(x.exp().clamp(self.low, self.high))
        } else {
            float(x.clamp(self.low, self.high))
        }
    }
}

/// A Parzen estimator of a numeric param: a mixture of Gaussians truncated to `[a, b]`, one per observation
/// plus the prior (centred, as wide as the range).
struct Parzen {
    scale: Scale,
    weights: Vec<f64>,
    ln_weights: Vec<f64>,
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    /// ln of each component's mass inside `[a, b]`.
    ln_mass: Vec<f64>,
    /// ln of each component's weight / (mass sigma sqrt(2 pi)): its log density less the exponent.
    ln_coef: Vec<f64>,
}

impl Parzen {
    fn new(observed: &[f64], scale: Scale) -> Parzen {
        let (a, b) = (scale.a, scale.b);
        let n = observed.len();
        let range = b - a;
        let prior_mu = 0.5 * (a + b);
        // Bandwidths as Optuna (univariate): each observation's distance to its farther neighbour among the
        // sorted observations, the prior's centre and the endpoints (the first and last use their inner neighbour
        // only), clipped to [range / min(100, n + 2), range] (the "magic clip").
        let mut with_prior: Vec<(f64, usize)> = observed.iter().copied().chain([prior_mu]).zip(0..).collect();
        with_prior.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let sorted: Vec<f64> = [a].into_iter().chain(with_prior.iter().map(|x| x.0)).chain([b]).collect();
        let m = with_prior.len();
        let mut sigmas = vec![0.0; n];
        for (j, &(_, i)) in with_prior.iter().enumerate() {
            let (left, right) = (sorted[j + 1] - sorted[j], sorted[j + 2] - sorted[j + 1]);
            let sigma = if m >= 2 && j == 0 {
                right
            } else if m >= 2 && j == m - 1 {
                left
            } else {
                left.max(right)
            };
            if i < n {
                sigmas[i] = sigma;
            }
        }
        let min_sigma = range / (n as f64 + 2.0).min(100.0);
        sigmas.iter_mut().for_each(|s| *s = s.clamp(min_sigma, range));
        let mut mus = observed.to_vec();
        mus.push(prior_mu);
        sigmas.push(range);
        let weights = mixture_weights(n);
        let ln_weights: Vec<f64> = weights.iter().map(|w| w.ln()).collect();
        let ln_mass: Vec<f64> =
            mus.iter().zip(&sigmas).map(|(mu, s)| normal_mass((a - mu) / s, (b - mu) / s).max(f64::MIN_POSITIVE).ln()).collect();
        let ln_coef = (0..mus.len()).map(|k| ln_weights[k] - ln_mass[k] - sigmas[k].ln() - LN_SQRT_2PI).collect();
        Parzen { scale, weights, ln_weights, mus, sigmas, ln_mass, ln_coef }
    }

    /// One draw (in estimator space; an integer for a discrete param).
    fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        let k = sample_index(&self.weights, rng);
        let (mu, sigma, a, b) = (self.mus[k], self.sigmas[k], self.scale.a, self.scale.b);
        // Rejection from the untruncated Gaussian: mu lies in [a, b] and sigma <= b - a, so at least a third of
        // the draws land inside.
        let mut x = mu;
        for _ in 0..100 {
            let z: f64 = rng.sample(StandardNormal);
            if (a..=b).contains(&(mu + sigma * z)) {
                x = mu + sigma * z;
                break;
            }
        }
        if self.scale.discrete {
            x.round().clamp(self.scale.low, self.scale.high)
        } else {
            x.clamp(a, b)
        }
    }

    /// ln of the mixture's density at `x` (probability of the integer `x` for a discrete param). Each
    /// component's term is computed once (the hot loop of a proposal: candidates x components).
    fn ln_pdf(&self, x: f64) -> f64 {
        let terms: Vec<f64> = (0..self.mus.len())
            .map(|k| {
                let (mu, sigma) = (self.mus[k], self.sigmas[k]);
                let z = (x - mu) / sigma;
                if self.scale.discrete {
                    let mass = normal_mass((x - 0.5 - mu) / sigma, (x + 0.5 - mu) / sigma);
                    if mass > 1e-290 {
                        return self.ln_weights[k] + mass.ln() - self.ln_mass[k];
                    }
                }
                // ln w - ln mass - ln sigma - ln sqrt(2 pi), precomputed, and the Gaussian's exponent.
                self.ln_coef[k] - 0.5 * z * z
            })
            .collect();
        log_sum_exp(&terms)
    }
}

/// The category probabilities of a Parzen estimator over `k` choices from the observed choice indices: as
/// Optuna, one component per observation (weight `PRIOR_WEIGHT / (n + 1)` on every category plus 1 on the
/// observed one, normalised) and a uniform prior component, mixed with [`mixture_weights`].
fn categorical(observed: &[usize], k: usize) -> Vec<f64> {
    let n = observed.len();
    let weights = mixture_weights(n);
    let eps = PRIOR_WEIGHT / (n as f64 + 1.0);
    let norm = 1.0 + k as f64 * eps;
    let mut p = vec![weights[n] / k as f64; k];
    for (&c, w) in observed.iter().zip(&weights) {
        p.iter_mut().for_each(|x| *x += w * eps / norm);
        p[c] += w / norm;
    }
    p
}

/// An index drawn with probability proportional to `weights` (non-negative, not all zero).
fn sample_index(weights: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

/// ln(sum(exp(terms))), stable.
fn log_sum_exp(terms: &[f64]) -> f64 {
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

/// The complementary error function (Numerical Recipes' `erfcc`, fractional error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// P(lo <= Z <= hi) for a standard normal Z, computed from the nearer tail so that it keeps its precision far
/// from 0.
fn normal_mass(lo: f64, hi: f64) -> f64 {
    let s = std::f64::consts::SQRT_2;
    let m = if lo >= 0.0 {
        0.5 * (erfc(lo / s) - erfc(hi / s))
    } else if hi <= 0.0 {
        0.5 * (erfc(-hi / s) - erfc(-lo / s))
    } else {
        1.0 - 0.5 * erfc(-lo / s) - 0.5 * erfc(hi / s)
    };
    m.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_mass_matches_known_values() {
        assert!((normal_mass(-1.0, 1.0) - 0.682_689_492).abs() < 1e-6);
        assert!((normal_mass(f64::NEG_INFINITY, 0.0) - 0.5).abs() < 1e-7);
        assert!((normal_mass(3.0, f64::INFINITY) - 1.349_898e-3).abs() < 1e-8);
        assert!(normal_mass(10.0, 11.0) > 0.0);
    }

    #[test]
    fn gamma_and_weights_follow_optuna() {
        assert_eq!((gamma(1), gamma(10), gamma(11), gamma(300)), (1, 1, 2, 25));
        assert_eq!(default_weights(3), vec![1.0; 3]);
        let w = default_weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-12 && (w[4] - 1.0).abs() < 1e-12 && w[1] < w[2]);
        let p = categorical(&[1, 1, 1], 3);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12 && p[1] > 0.6);
    }

    #[test]
    fn parzen_is_a_density_and_peaks_at_its_observations() {
        let scale = Scale::of(&Dist::Uniform([0.0, 10.0])).unwrap();
        let p = Parzen::new(&[2.0, 2.5, 3.0], scale);
        let integral: f64 = (0..10_000).map(|i| (p.ln_pdf((i as f64 + 0.5) * 1e-3)).exp() * 1e-3).sum();
        assert!((integral - 1.0).abs() < 1e-3, "integral {integral}");
        assert!(p.ln_pdf(2.5) > p.ln_pdf(8.0));
        let scale = Scale::of(&Dist::Int([1, 5])).unwrap();
        let p = Parzen::new(&[2.0, 2.0, 4.0], scale);
        let total: f64 = (1..=5).map(|i| p.ln_pdf(i as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6, "total {total}");
    }
}
