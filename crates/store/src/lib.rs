//! The content-addressed artifact store behind every kimcnn pipeline.
//!
//! Objects are immutable files named by the BLAKE3 hash of their bytes
//! (`objects/<2 hex>/<62 hex>`). A stage writes its outputs into a scratch
//! directory inside the store (same file system), and [`Store::commit_file`]
//! hashes, fsyncs and renames them in, so a crash never leaves a partial
//! object. A [`RunRecord`] maps a stage's cache key to the hashes of its
//! outputs; [`Lockfile`] is the text file (`pipeline.lock`) that records, per
//! stage, the key, params, input and output hashes, meant for git.
//!
//! The store knows nothing of stages or CNNs: keys, hashes and files only.

mod hash;
mod lockfile;
mod store;

pub use hash::{hash_bytes, hash_file, hash_file_with, ObjectId};
pub use lockfile::{LockEntry, Lockfile};
pub use store::{GcReport, HashProgress, KeyLock, ObjectList, RunRecord, ScratchDir, Store, VerifyReport};

use std::path::PathBuf;

/// Crash testing: a debug build kills itself with SIGKILL at the named
/// point when `KIMCNN_KILL_AT` names it, so the end-to-end tests can show
/// that a `kill -9` anywhere in a commit, a run record's or the lock's
/// write, or a pull loses nothing. Compiled out of release builds.
pub fn kill_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("KIMCNN_KILL_AT").is_ok_and(|v| v == name) {
        // SAFETY: sends a signal to this process.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// Everything that can go wrong in the store, each naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid object id `{id}` (expected 64 lower-case hex digits)")]
    BadId { path: PathBuf, id: String },
    #[error("{path}: unreadable run record: {message}")]
    BadRecord { path: PathBuf, message: String },
    #[error("{path}: unreadable lock file: {message}")]
    BadLock { path: PathBuf, message: String },
    #[error("object {id} is missing from the store {root}")]
    Missing { id: ObjectId, root: PathBuf },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}
