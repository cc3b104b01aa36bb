use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use kimcnn_store::{Lockfile, ObjectId};
use serde_json::Value;

use kimcnn_stage::{Env, Registry};

use crate::run::cache_key;
use crate::{NotYet, Plan, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    /// pipeline.lock names this stage's current key and its outputs are here.
    UpToDate,
    /// Changed since the lock, but the store already holds a run for the new
    /// key: `kimcnn run` restores it without computing.
    Restorable,
    /// Must be computed.
    Stale,
}

/// Why a stage is not up to date.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    NeverRun,
    KindVersion {
        old: u32,
        new: u32,
    },
    Param {
        path: String,
        old: Option<Value>,
        new: Option<Value>,
    },
    Input {
        name: String,
        old: Option<ObjectId>,
        new: ObjectId,
    },
    Upstream {
        input: String,
        stage: String,
    },
    /// A param taken from a stage that has not run (`${stage.output:field}`).
    Waits {
        param: String,
        stage: String,
    },
    Fingerprint {
        old: Option<String>,
        new: Option<String>,
    },
    OutputsMissing,
    Error(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "(unset)".into());
        match self {
            Reason::NeverRun => write!(f, "never run (not in pipeline.lock)"),
            Reason::KindVersion { old, new } => write!(f, "stage kind changed: version {old} -> {new}"),
            Reason::Param { path, old, new } => write!(f, "param {path}: {} -> {}", show(old), show(new)),
            Reason::Input { name, old: Some(o), new } => write!(f, "input {name} changed: {} -> {}", o.short(), new.short()),
            Reason::Input { name, old: None, new } => write!(f, "new input {name} ({})", new.short()),
            Reason::Upstream { input, stage } => write!(f, "input {input} comes from stale stage {stage}"),
            Reason::Waits { param, stage } => write!(f, "param `{param}` waits for stage {stage}"),
            Reason::Fingerprint { old, new } => {
                write!(f, "external file changed: {} -> {}", old.as_deref().unwrap_or("(none)"), new.as_deref().unwrap_or("(none)"))
            }
            Reason::OutputsMissing => write!(f, "outputs missing from the store (gc'd or not pulled)"),
            Reason::Error(m) => write!(f, "{m}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StageStatus {
    pub name: String,
    pub state: StageState,
    pub reasons: Vec<Reason>,
}

/// Compares the pipeline as it is now with pipeline.lock and the store,
/// without running anything.
pub fn status(plan: &Plan, registry: &Registry, env: &Env, lock_path: &Path) -> Result<Vec<StageStatus>> {
    let lock = Lockfile::read(lock_path)?;
    let store = &env.store;
    let mut known: Vec<Option<BTreeMap<String, ObjectId>>> = vec![None; plan.stages.len()];
    let mut out = Vec::with_capacity(plan.stages.len());
    for (i, s) in plan.stages.iter().enumerate() {
        // Params from other stages' outputs: filled in from what the store has.
        let output = |j: usize, out: &str| known[j].as_ref().map(|o| store.object_path(&o[out]));
        let completed;
        let s = match plan.complete(i, registry, &output) {
            Ok(done) => {
                completed = done;
                &completed
            }
            Err(NotYet::Waiting(j)) => {
                let param = s.later.as_ref().and_then(|l| l.refs.iter().find(|r| r.stage == j)).map_or(String::new(), |r| r.text.clone());
                let reasons = vec![Reason::Waits { param, stage: plan.stages[j].name.clone() }];
                out.push(StageStatus { name: s.name.clone(), state: StageState::Stale, reasons });
                continue;
            }
            Err(NotYet::Refused(m)) => {
                out.push(StageStatus { name: s.name.clone(), state: StageState::Stale, reasons: vec![Reason::Error(m)] });
                continue;
            }
        };
        let kind = registry.get(&s.kind).expect("the plan checked its kinds");
        let entry = lock.stages.get(&s.name);
        let mut reasons = Vec::new();
        match entry {
            None => reasons.push(Reason::NeverRun),
            Some(e) => {
                if e.kind_version != s.version {
                    reasons.push(Reason::KindVersion { old: e.kind_version, new: s.version });
                }
                diff_params("", Some(&e.params), Some(&s.params), &mut reasons);
            }
        }
        let mut inputs = BTreeMap::new();
        let mut blocked = false;
        for (name, (j, o)) in &s.inputs {
            match &known[*j] {
                Some(outs) => {
                    inputs.insert(name.clone(), outs[o].clone());
                }
                None => {
                    blocked = true;
                    reasons.push(Reason::Upstream { input: name.clone(), stage: plan.stages[*j].name.clone() });
                }
            }
        }
        if blocked {
            out.push(StageStatus { name: s.name.clone(), state: StageState::Stale, reasons });
            continue;
        }
        if let Some(e) = entry {
            for (name, id) in &inputs {
                if e.inputs.get(name) != Some(id) {
                    reasons.push(Reason::Input { name: name.clone(), old: e.inputs.get(name).cloned(), new: id.clone() });
                }
            }
        }
        let fingerprint = match kind.fingerprint(&s.params, env) {
            Ok(f) => f,
            Err(err) => {
                reasons.push(Reason::Error(err.to_string()));
                out.push(StageStatus { name: s.name.clone(), state: StageState::Stale, reasons });
                continue;
            }
        };
        if let Some(e) = entry {
            if e.fingerprint != fingerprint {
                reasons.push(Reason::Fingerprint { old: e.fingerprint.clone(), new: fingerprint.clone() });
            }
        }
        let key = cache_key(&s.kind, s.version, &s.params, &inputs, &fingerprint);
        let rec = store.read_run(&key)?;
        let complete = rec.as_ref().is_some_and(|r| s.outputs.iter().all(|o| r.outputs.get(o).is_some_and(|id| store.has_object(id))));
        let state = if complete {
            known[i] = rec.map(|r| r.outputs);
            if entry.is_some_and(|e| e.key == key) {
                StageState::UpToDate
            } else {
                StageState::Restorable
            }
        } else {
            if reasons.is_empty() {
                reasons.push(Reason::OutputsMissing);
            }
            StageState::Stale
        };
        out.push(StageStatus { name: s.name.clone(), state, reasons });
    }
    Ok(out)
}

fn diff_params(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Reason>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                diff_params(&p, a.get(k), b.get(k), out);
            }
        }
        (a, b) if a != b => out.push(Reason::Param { path: path.to_string(), old: a.cloned(), new: b.cloned() }),
        _ => {}
    }
}
