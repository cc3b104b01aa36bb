//! The kimcnn runner: reads `pipeline.yaml`, expands it into a checked DAG of
//! concrete stages, and executes it against a [`kimcnn_store::Store`].
//!
//! - [`spec`]: the raw YAML shape (unknown keys are errors, with line and
//!   column).
//! - [`Plan`]: `${...}` params resolved, `--set` overrides applied, `matrix:`
//!   expanded into stages with stable names, each stage's params checked and
//!   normalised by its kind, references checked, cycles refused, in
//!   topological order. [`selects`] is the one rule that picks stages by
//!   name, group prefix or glob.
//! - [`run`]: for each stage, prepare (cache key, per-key cross-process
//!   lock, cache check, pull, input verification), execute through an
//!   [`Executor`] (the [`LocalExecutor`] runs the kind here), commit (run
//!   record, links, `pipeline.lock`); parallel within a CPU budget, with
//!   early cutoff.
//! - [`status`]: what is stale and why.
//! - [`recompute`]: stages recomputed in scratch and compared with
//!   `pipeline.lock`, byte for byte (`kimcnn verify --recompute`).
//!
//! The runner knows nothing of CNNs: a stage kind is any
//! [`kimcnn_stage::Kind`], registered by name in a [`Registry`].

mod error;
mod exec;
mod plan;
mod run;
pub mod spec;
mod status;
mod trials;
mod verify;

pub use error::PipelineError;
pub use exec::{Executed, Executor, JobSpec, LocalExecutor};
pub use kimcnn_stage::{Env, Registry, StageError};
pub use plan::{select_names, selects, Later, NotYet, OutputRef, Plan, Stage};
pub use run::{cache_key, run, Event, Fetch, Outcome, RunOptions, RunSummary};
pub use status::{status, Reason, StageState, StageStatus};
pub use verify::{recompute, Check, StageCheck};

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
