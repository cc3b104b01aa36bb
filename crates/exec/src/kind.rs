//! The `exec` stage kind: its params and how the runner runs it.

use std::collections::BTreeMap;
use std::ffi::OsString;

use kimcnn_stage::{Job, Kind, RunInfo, StageError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An `exec` stage: a shell command with declared outputs.
pub struct ExecKind;

/// An `exec` stage's params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecParams {
    /// Run by `sh -c` in the project directory.
    pub cmd: String,
    /// More environment variables for the command: a string as it is, any
    /// other value as its JSON text.
    pub env: BTreeMap<String, Value>,
}

impl Kind for ExecKind {
    const NAME: &'static str = "exec";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &[];
    type Params = ExecParams;

    fn check(&self, p: &mut ExecParams) -> Result<(), String> {
        if p.cmd.trim().is_empty() {
            return Err("an `exec` stage needs `cmd:`".into());
        }
        Ok(())
    }

    fn outputs(&self, _: &ExecParams, declared: &[String]) -> Result<Vec<String>, String> {
        if declared.is_empty() {
            return Err("an `exec` stage needs `outputs:` (the files its command writes to $OUT_<name>)".into());
        }
        Ok(declared.to_vec())
    }

    fn run(&self, p: &ExecParams, job: &Job) -> Result<RunInfo, StageError> {
        let mut env: Vec<(String, OsString)> = Vec::new();
        for (name, path) in &job.inputs {
            env.push((format!("IN_{name}"), path.clone().into()));
        }
        for (name, path) in &job.outputs {
            env.push((format!("OUT_{name}"), path.clone().into()));
        }
        env.push(("KIMCNN_THREADS".into(), job.resources.cpus.to_string().into()));
        env.push(("KIMCNN_STAGE".into(), job.stage.into()));
        env.push(("KIMCNN_SCRATCH".into(), job.scratch.into()));
        for (k, v) in &p.env {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            env.push((k.clone(), v.into()));
        }
        let spec = crate::ExecSpec { cmd: p.cmd.clone(), cwd: job.env.project_dir.clone(), env, log: job.scratch.join("exec.log") };
        crate::run(&spec)?;
        Ok(RunInfo::default())
    }
}
