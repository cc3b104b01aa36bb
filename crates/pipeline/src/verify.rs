//! `kimcnn verify --recompute`: recomputes stages in a scratch store and
//! compares their outputs with what `pipeline.lock` names, byte for byte.
//! What a selected stage needs is restored from the project's store where
//! it is there (by key, as a cache hit) and computed in scratch where it is
//! not; the project's store and lock are never written.

use std::collections::BTreeMap;
use std::path::Path;

use kimcnn_stage::{Env, Registry};
use kimcnn_store::{Lockfile, ObjectId, Store};

use crate::run::{run_in, Event, Fetch, Outcome, RunOptions};
use crate::{Plan, Result};

/// How one recomputed stage compares with the lock.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Every output has the lock's bytes (`measured`: outputs not compared,
    /// wall-clock times).
    Same { outputs: Vec<String>, measured: Vec<String> },
    /// Outputs whose bytes differ: (name, the lock's hash, the recomputed one).
    Differs { differ: Vec<(String, ObjectId, ObjectId)>, same: Vec<String>, measured: Vec<String> },
    /// The recomputed stage has another key than the lock records: its
    /// params, code or inputs are not the ones the lock was written for.
    /// `inputs`: the inputs whose hashes differ.
    OtherKey { lock: ObjectId, now: ObjectId, inputs: Vec<String> },
    /// The lock has no entry for it (run it first).
    NotInLock,
    /// The recomputation failed, or was skipped because an input's did.
    Failed(String),
}

impl Check {
    pub fn matches(&self) -> bool {
        matches!(self, Check::Same { .. })
    }
}

/// One stage of a recomputation: `named` when the command named it (the
/// others were recomputed because the project's store lacked them).
#[derive(Debug, Clone, PartialEq)]
pub struct StageCheck {
    pub stage: String,
    pub named: bool,
    pub check: Check,
}

/// Restores a run from the project's store into the scratch store (hard
/// links: objects are read-only and never rewritten).
#[derive(Debug)]
struct FromStore(Store);

impl Fetch for FromStore {
    fn fetch(&self, into: &Store, key: &ObjectId) -> std::result::Result<bool, String> {
        let Some(rec) = self.0.read_run(key).map_err(|e| e.to_string())? else { return Ok(false) };
        if !rec.outputs.values().all(|id| self.0.has_object(id)) {
            return Ok(false);
        }
        for id in rec.outputs.values() {
            let (from, to) = (self.0.object_path(id), into.object_path(id));
            if to.is_file() {
                continue;
            }
            let dir = to.parent().expect("object paths have a parent");
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).map_err(|e| format!("{}: {e}", to.display()))?;
            }
        }
        into.write_run(&rec).map_err(|e| e.to_string())?;
        Ok(true)
    }
}

/// Recomputes the `targets` (every stage if empty) in a scratch store under
/// the project's store and compares each stage computed there with `lock_path`.
pub fn recompute(
    plan: &Plan,
    registry: &Registry,
    env: &Env,
    targets: &[String],
    lock_path: &Path,
    jobs: usize,
    on: &(dyn Fn(Event) + Sync),
) -> Result<Vec<StageCheck>> {
    let lock = Lockfile::read(lock_path)?;
    let (_, named) = plan.select(targets, false)?;
    let scratch = env.store.scratch("verify")?;
    let scratch_env = Env { project_dir: env.project_dir.clone(), store: Store::open(scratch.path().join("store"))? };
    let opts = RunOptions {
        targets: targets.to_vec(),
        downstream: false,
        force: true,
        dry_run: false,
        jobs,
        lock_path: scratch.path().join("pipeline.lock"),
        pull: Some(std::sync::Arc::new(FromStore(env.store.clone()))),
        executor: None,
    };
    let summary = run_in(plan, registry, &scratch_env, &opts, on)?;
    let now = Lockfile::read(&opts.lock_path)?;
    let mut checks = Vec::new();
    for (stage, outcome) in &summary.outcomes {
        let i = plan.stages.iter().position(|s| &s.name == stage).expect("the plan's stages");
        let check = match outcome {
            Outcome::Ran { .. } => compare(&lock, &now, stage, registry.get(&plan.stages[i].kind).map(|k| k.measured()).unwrap_or(&[])),
            Outcome::Failed(e) => Check::Failed(e.to_string()),
            Outcome::Skipped => Check::Failed("not run: an input's stage failed".into()),
            // Restored from the project's store: the lock's own bytes, nothing to compare.
            _ => continue,
        };
        checks.push(StageCheck { stage: stage.clone(), named: named[i], check });
    }
    Ok(checks)
}

fn compare(lock: &Lockfile, now: &Lockfile, stage: &str, measured: &[&str]) -> Check {
    let (Some(l), Some(n)) = (lock.stages.get(stage), now.stages.get(stage)) else { return Check::NotInLock };
    if l.key != n.key {
        let inputs = n.inputs.iter().filter(|(k, v)| l.inputs.get(*k) != Some(v)).map(|(k, _)| k.clone()).collect();
        return Check::OtherKey { lock: l.key.clone(), now: n.key.clone(), inputs };
    }
    let (mut same, mut differ, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let lock_outputs: &BTreeMap<String, ObjectId> = &l.outputs;
    for (name, id) in &n.outputs {
        if measured.contains(&name.as_str()) {
            skipped.push(name.clone());
        } else if lock_outputs.get(name) == Some(id) {
            same.push(name.clone());
        } else {
            let was = lock_outputs.get(name).cloned().unwrap_or_else(|| kimcnn_store::hash_bytes(b""));
            differ.push((name.clone(), was, id.clone()));
        }
    }
    if differ.is_empty() {
        Check::Same { outputs: same, measured: skipped }
    } else {
        Check::Differs { differ, same, measured: skipped }
    }
}
