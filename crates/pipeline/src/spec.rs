//! The raw shape of `pipeline.yaml`, as written. [`crate::Plan`] checks and
//! expands it.
//!
//! ```yaml
//! params:            # global params, referenced as ${name} or ${a.b}
//!   seed: 3435
//! stages:
//!   mr_pos:
//!     uses: source                      # the stage kind
//!     with: { url: https://.../rt-polarity.pos }
//!   train:
//!     matrix: { variant: [rand, static], fold: range(3) }   # -> train.rand.fold0, ...
//!     uses: exec
//!     inputs: { data: mr_pos.data }     # <stage>.<output>
//!     outputs: [model]
//!     threads: 2
//!     with: { cmd: "...", seed: "${seed}", variant: "${variant}" }
//! ```
use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    #[serde(default)]
    pub params: serde_yaml::Mapping,
    pub stages: IndexMap<String, RawStage>,
    /// Where artifacts are shared (`kimcnn push/pull`); read by the binary,
    /// not by the runner.
    #[serde(default)]
    pub remotes: Option<serde_yaml::Value>,
    /// The Ray cluster of `--executor ray`; read by the binary.
    #[serde(default)]
    pub ray: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    /// The stage kind.
    pub uses: String,
    /// A line of text for `kimcnn dag`.
    #[serde(default)]
    pub desc: Option<String>,
    /// Kind-specific params; strings may hold `${...}` references.
    #[serde(default)]
    pub with: serde_yaml::Mapping,
    /// Input name -> `<stage>.<output>`.
    #[serde(default)]
    pub inputs: IndexMap<String, String>,
    /// Output names, for kinds whose outputs are not fixed (exec).
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Variable -> list of values, or `range(N)` / `range(A, B)`.
    #[serde(default)]
    pub matrix: IndexMap<String, serde_yaml::Value>,
    /// CPU threads a run gets: its resources' cpus (default: the kind's).
    #[serde(default)]
    pub threads: Option<usize>,
}
