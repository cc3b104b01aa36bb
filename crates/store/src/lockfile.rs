use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::hash::ObjectId;
use crate::store::write_atomic;
use crate::{Result, StoreError};

/// An error's text on one line (serde_yaml's are; this keeps it so).
fn one_line(e: &serde_yaml::Error) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why a lock's text does not parse, on one line: a merge conflict marker,
/// invalid YAML, a document that is not a lock's mapping, or a misplaced or
/// mistyped field (with its line).
fn diagnose(text: &str, e: &serde_yaml::Error) -> String {
    if let Some(n) = text.lines().position(|l| l.starts_with("<<<<<<<")) {
        return format!(
            "line {}: a merge conflict marker (`<<<<<<<`): resolve the conflict, or take one side and rerun `kimcnn run`",
            n + 1
        );
    }
    let found = match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Err(e) => return format!("not valid YAML: {}", one_line(&e)),
        Ok(serde_yaml::Value::Mapping(_)) => None,
        Ok(serde_yaml::Value::Null) => return "the file is empty (delete it: `kimcnn run` writes a new one)".into(),
        Ok(serde_yaml::Value::Bool(_)) => Some("a boolean"),
        Ok(serde_yaml::Value::Number(_)) => Some("a number"),
        Ok(serde_yaml::Value::String(_)) => Some("a string"),
        Ok(serde_yaml::Value::Sequence(_)) => Some("a list"),
        Ok(serde_yaml::Value::Tagged(_)) => Some("a tagged value"),
    };
    match found {
        Some(found) => format!("expected a mapping with `schema` and `stages`, found {found}"),
        None => one_line(e).replace("expected struct LockEntry", "expected a stage's entry (a mapping)"),
    }
}

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
    /// Each error is one line: merge conflict markers, invalid YAML, a
    /// document that is not a lock's mapping, a misplaced or mistyped field
    /// (with its line), a schema this version does not read.
    pub fn parse(text: &str, path: &Path) -> Result<Lockfile> {
        let bad = |message: String| StoreError::BadLock { path: path.to_path_buf(), message };
        // One parse on the common path (every run reads the lock); the
        // diagnosis of a bad one only when it fails.
        let lock: Lockfile = serde_yaml::from_str(text).map_err(|e| bad(diagnose(text, &e)))?;
        if lock.schema != 1 {
            return Err(bad(format!("schema {} is not one this kimcnn reads (1): written by another version of kimcnn?", lock.schema)));
        }
        Ok(lock)
    }

    /// Writes the lock atomically, only if its content changed.
    pub fn write(&self, path: &Path) -> Result<bool> {
        let text = format!("{HEADER}{}", serde_yaml::to_string(self).expect("locks serialise"));
        if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        write_atomic(path, text.as_bytes(), "lock")?;
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

    #[test]
    fn a_bad_lock_is_refused_in_one_line_naming_the_file_and_the_place() {
        let refused = |text: &str| Lockfile::parse(text, Path::new("pipeline.lock")).unwrap_err().to_string();
        let cases = [
            (
                "schema: 1\nstages:\n\t one: {}\n",
                "not valid YAML: found character that cannot start any token at line 3 column 1, while scanning for the next token",
            ),
            ("schema: 1\nstages: a: b\n", "not valid YAML: mapping values are not allowed in this context at line 2 column 10"),
            (
                "schema: 1\n<<<<<<< HEAD\nstages: {}\n=======\nstages: {}\n>>>>>>> theirs\n",
                "line 2: a merge conflict marker (`<<<<<<<`): resolve the conflict, or take one side and rerun `kimcnn run`",
            ),
            ("", "the file is empty (delete it: `kimcnn run` writes a new one)"),
            ("# a comment\n", "the file is empty (delete it: `kimcnn run` writes a new one)"),
            ("- schema\n- stages\n", "expected a mapping with `schema` and `stages`, found a list"),
            ("just words\n", "expected a mapping with `schema` and `stages`, found a string"),
            ("schema: 1\nstages: [one, two]\n", "stages: invalid type: sequence, expected a map at line 2 column 9"),
            (
                "schema: 1\nstages: {one: x}\n",
                "stages.one: invalid type: string \"x\", expected a stage's entry (a mapping) at line 2 column 15",
            ),
            ("schema: 1\nstages: {one: {kind: exec}}\n", "stages.one: missing field `kind_version` at line 2 column 15"),
            ("schema: 1\nstages: {}\nextra: 2\n", "unknown field `extra`, expected `schema` or `stages` at line 3 column 1"),
            ("schema: 2\nstages: {}\n", "schema 2 is not one this kimcnn reads (1): written by another version of kimcnn?"),
        ];
        for (text, want) in cases {
            assert_eq!(refused(text), format!("pipeline.lock: unreadable lock file: {want}"), "{text:?}");
        }
        assert_eq!(Lockfile::parse("schema: 1\nstages: {}\n", Path::new("x")).unwrap(), Lockfile { schema: 1, ..Default::default() });
    }
}
