use std::path::PathBuf;

use kimcnn_stage::StageError;

/// Errors of the runner. Each displays as one line naming the file, line and
/// column, or the stage, involved.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Syntax { file: PathBuf, line: usize, column: usize, message: String },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("{file}: dependency cycle: {}", .cycle.join(" -> "))]
    Cycle { file: PathBuf, cycle: Vec<String> },
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
    #[error("no stage or stage group named `{0}` in the pipeline (see `kimcnn dag`)")]
    UnknownTarget(String),
    #[error("stage `{stage}` failed: {error}")]
    StageFailed { stage: String, error: StageError },
    #[error("{0} stages failed; first: stage `{1}`: {2}")]
    ManyFailed(usize, String, StageError),
    #[error(transparent)]
    Store(#[from] kimcnn_store::StoreError),
}
