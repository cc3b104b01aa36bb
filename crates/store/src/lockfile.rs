use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::hash::ObjectId;
use crate::store::write_atomic;
use crate::{Result, StoreError};

/// `pipeline.lock`: what each stage last ran as. Plain YAML with sorted keys,
/// so it diffs well in git; two teammates with the same lock and a shared
/// remote have the same artifacts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    pub schema: u32,
    pub stages: BTreeMap<String, LockEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    pub kind: String,
    pub kind_version: u32,
    pub key: ObjectId,
    pub params: serde_json::Value,
    /// The kind's fingerprint of things outside the store (a local file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub inputs: BTreeMap<String, ObjectId>,
    pub outputs: BTreeMap<String, ObjectId>,
}

const HEADER: &str = "# pipeline.lock: written by `kimcnn run`; commit it. Each stage's cache key, params,\n# and the BLAKE3 hashes of its inputs and outputs.\n";

impl Lockfile {
    /// Reads a lock file; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<Lockfile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lockfile { schema: 1, ..Default::default() }),
            Err(e) => return Err(StoreError::Io { path: path.to_path_buf(), source: e }),
        };
        Lockfile::parse(&text, path)
    }

    /// Parses a lock's text; `path` names it in errors (`main:pipeline.lock`, say).
    pub fn parse(text: &str, path: &Path) -> Result<Lockfile> {
        serde_yaml::from_str(text).map_err(|e| StoreError::BadLock { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Writes the lock atomically, only if its content changed.
    pub fn write(&self, path: &Path) -> Result<bool> {
        let text = format!("{HEADER}{}", serde_yaml::to_string(self).expect("locks serialise"));
        if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        write_atomic(path, text.as_bytes())?;
        Ok(true)
    }

    /// Every object the lock names.
    pub fn objects(&self) -> impl Iterator<Item = &ObjectId> {
        self.stages.values().flat_map(|e| e.inputs.values().chain(e.outputs.values()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash_bytes;

    #[test]
    fn round_trip_and_write_only_on_change() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pipeline.lock");
        assert_eq!(Lockfile::read(&p).unwrap().stages.len(), 0);
        let mut lock = Lockfile { schema: 1, ..Default::default() };
        lock.stages.insert(
            "a".into(),
            LockEntry {
                kind: "exec".into(),
                kind_version: 1,
                key: hash_bytes(b"k"),
                params: serde_json::json!({"cmd": "echo"}),
                fingerprint: None,
                inputs: BTreeMap::new(),
                outputs: BTreeMap::from([("out".into(), hash_bytes(b"o"))]),
            },
        );
        assert!(lock.write(&p).unwrap());
        assert!(!lock.write(&p).unwrap());
        assert_eq!(Lockfile::read(&p).unwrap(), lock);
        std::fs::write(&p, "schema: 1\nstages: {a: {kind: x}}\n").unwrap();
        let err = Lockfile::read(&p).unwrap_err().to_string();
        assert!(err.contains("pipeline.lock"), "{err}");
    }
}
