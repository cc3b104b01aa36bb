//! Hyper-parameter search algorithms for a study: what to try next and when to give up on a trial.
//!
//! - [`space`]: the searched params and their distributions (`choice`, `uniform`, `loguniform`, `int`), as
//!   pipeline.yaml writes them, with checks, grid enumeration and type-check probes.
//! - [`search`]: proposals of the next point to try: grid, random, or TPE (Tree-structured Parzen Estimator,
//!   Bergstra et al. 2011, in the manner of Optuna's `TPESampler`). A proposal is a pure function of the
//!   study's seed, the trial index and the trials done/pending, so a study proposes the same trials whatever
//!   the timing and resumes without stored sampler state.
//! - [`sched`]: early stopping over the per-epoch reports of a study: ASHA (as Ray Tune's
//!   `AsyncHyperBandScheduler`) or the median stopping rule (as Ray Tune's `MedianStoppingRule`).
//!
//! The crate does no I/O and knows nothing of CNNs or of the runner: points are JSON values keyed by param
//! name, objective values are plain `f64`s, and errors are `String` messages naming the param.

pub mod sched;
pub mod search;
pub mod space;
mod tpe;

pub use sched::{Decision, Scheduler, Stopper};
pub use search::{Algorithm, Observation, Searcher};
pub use space::{Dist, Point, Space};

#[cfg(test)]
mod tests;
