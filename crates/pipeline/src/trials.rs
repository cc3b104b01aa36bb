//! Stages run by a stage (a study's trials): planned, keyed, cached and
//! recorded exactly as pipeline stages are, so a trial with the config of a
//! plain stage (or of an earlier trial) is a cache hit, and the other way
//! round. Trials are not pipeline stages: they are not in `pipeline.lock`
//! and have no `out/` links; their run records name them
//! `<stage>/<label>`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use kimcnn_stage::{Env, Progress, Registry, Resources, StageError, TrialRun, Trials};
use kimcnn_store::ObjectId;
use serde_json::Value;

use crate::exec::Executor;
use crate::run::{cache_key, work, Via, WorkError};
use crate::Stage;

/// [`Trials`] for one stage run: the trials read its inputs and share its threads.
pub(crate) struct RunnerTrials<'a> {
    pub registry: &'a Registry,
    pub env: &'a Env,
    pub executor: &'a dyn Executor,
    /// The stage running the trials.
    pub stage: &'a str,
    pub inputs: &'a BTreeMap<String, ObjectId>,
    pub device: Option<&'a str>,
    /// Its threads: no trial gets more.
    pub cpus: usize,
    /// Its state directory: each trial keeps its own inside, so they go
    /// when the stage's outputs are committed.
    pub state: &'a Path,
}

impl RunnerTrials<'_> {
    /// Where trial `label`'s runs keep their state (one directory per key inside).
    fn trial_state(&self, label: &str) -> std::path::PathBuf {
        self.state.join("trials").join(label)
    }
}

impl Trials for RunnerTrials<'_> {
    fn run(
        &self,
        label: &str,
        kind: &str,
        params: &Value,
        progress: &(dyn Fn(Progress) + Sync),
        stop: &AtomicBool,
    ) -> Result<TrialRun, StageError> {
        let name = format!("{}/{label}", self.stage);
        let k = self.registry.get(kind).ok_or_else(|| StageError::BadInput(format!("{name}: unknown stage kind `{kind}`")))?;
        let input_names: Vec<&str> = self.inputs.keys().map(String::as_str).collect();
        let planned = k.plan(params, &[], &input_names, self.device).map_err(|e| StageError::BadInput(format!("{name}: {e}")))?;
        let fingerprint = k.fingerprint(&planned.params, self.env)?;
        let key = cache_key(kind, k.version(), &planned.params, self.inputs, &fingerprint);
        let resources = Resources { cpus: planned.resources.cpus.min(self.cpus.max(1)), ..planned.resources };
        let stage = Stage {
            name: name.clone(),
            group: self.stage.to_string(),
            kind: kind.to_string(),
            version: k.version(),
            desc: None,
            params: planned.params,
            device: planned.device,
            resources,
            inputs: BTreeMap::new(),
            outputs: planned.outputs,
            deps: Vec::new(),
            later: None,
        };
        let store = &self.env.store;
        let state = self.trial_state(label).join(key.as_str());
        let (res, via) =
            work(&stage, store, self.executor, key, self.inputs.clone(), fingerprint, resources, false, None, state, progress, stop);
        match res {
            Ok(done) => Ok(TrialRun {
                peak_rss_bytes: store.read_run(&done.key).ok().flatten().and_then(|r| r.peak_rss_bytes),
                key: done.key.to_string(),
                cached: !matches!(via, Via::Computed),
                outputs: done.outputs.iter().map(|(n, id)| (n.clone(), store.object_path(id))).collect(),
            }),
            Err(WorkError::Failed(e)) => Err(e),
            Err(WorkError::Corrupt(objs)) => {
                let names: Vec<String> = objs.iter().map(|(n, id)| format!("input `{n}` ({})", id.short())).collect();
                Err(StageError::Failed(format!("{name}: corrupt object(s) quarantined: {}; run again", names.join(", "))))
            }
        }
    }

    fn discard(&self, label: &str) -> Result<(), StageError> {
        let dir = self.trial_state(label);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StageError::Failed(format!("{}: {e}", dir.display()))),
            _ => Ok(()),
        }
    }
}
