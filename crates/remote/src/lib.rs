//! Share a store's objects and run records through a remote: a directory
//! (local disk, NFS) or S3-compatible object storage, both through the
//! `object_store` crate.
//!
//! Layout under the remote's prefix: `objects/<2 hex>/<62 hex>` (the bytes,
//! named by their BLAKE3 hash, as in the local store) and `runs/<key>.json`
//! (run records). Push uploads the objects the other side lacks (found by
//! parallel existence checks, never by listing the bucket), then publishes
//! each run record only once all of its objects are there, so nobody pulls
//! a half-pushed result. Pull fetches records, validates them (ids, plain
//! names), downloads missing objects while hashing them and keeps an object
//! only if its bytes hash to its name.
//!
//! Credentials come from the environment only (the `AWS_*` variables, web
//! identity, container or instance credentials: object_store's chain);
//! nothing here writes or prints them.

mod config;
mod transfer;

pub use config::{RemoteConfig, RemoteConfigs};
pub use transfer::{GcReport, Progress, Published, PullReport, PushReport, Quiet, Remote};

use kimcnn_store::ObjectId;

/// Everything that can go wrong talking to a remote; each names the remote.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}")]
    Config(String),
    #[error("remote `{remote}`: {message}")]
    Remote { remote: String, message: String },
    #[error("remote `{remote}`: object {id} hashes to {got}: corrupt or tampered with on the remote; refused, nothing of it kept")]
    Tampered { remote: String, id: ObjectId, got: ObjectId },
    #[error("local object {id} hashes to {got}: corrupt in this store; not uploaded (`kimcnn verify --repair` quarantines it, the next run recomputes it)")]
    CorruptLocal { id: ObjectId, got: ObjectId },
    #[error("remote `{remote}`: run record {key}: {message}; refused")]
    BadRecord { remote: String, key: ObjectId, message: String },
    #[error("remote `{remote}`: no run record for stage `{stage}` (key {key}); push it from a store that has it")]
    NotOnRemote { remote: String, stage: String, key: ObjectId },
    #[error(transparent)]
    Store(#[from] kimcnn_store::StoreError),
}

pub type Result<T, E = RemoteError> = std::result::Result<T, E>;
