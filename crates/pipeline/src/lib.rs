//! The kimcnn runner: reads `pipeline.yaml`, expands it into a checked DAG of
//! concrete stages, and executes it against a [`kimcnn_store::Store`].
//!
//! - [`spec`]: the raw YAML shape (unknown keys are errors, with line and
//!   column).
//! - [`Plan`]: `${...}` params resolved, `--set` overrides applied, `matrix:`
//!   expanded into stages with stable names, references checked, cycles
//!   refused, in topological order.
//! - [`run`]: cache keys (BLAKE3 of kind, version, canonical params and input
//!   hashes), per-key cross-process locks, parallel execution within a thread
//!   budget, early cutoff, `pipeline.lock` and friendly links.
//! - [`status`]: what is stale and why.
//!
//! The runner knows nothing of CNNs: a stage kind is anything implementing
//! [`StageKind`], registered by name in a [`Registry`].

mod error;
mod kind;
mod plan;
mod run;
pub mod spec;
mod status;

pub use error::PipelineError;
pub use kind::{Env, Job, Registry, StageError, StageKind};
pub use plan::{selects, Plan, Stage};
pub use run::{cache_key, run, Event, Fetch, Outcome, RunOptions, RunSummary};
pub use status::{status, Reason, StageState, StageStatus};

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
