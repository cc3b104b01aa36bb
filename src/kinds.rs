//! The stage kinds `kimcnn` registers with the runner: thin adapters from a
//! stage crate's plain function to [`kimcnn_pipeline::StageKind`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::Arc;

use kimcnn_pipeline::{Env, Job, Registry, StageError, StageKind};
use kimcnn_source::{Location, SourceSpec};
use serde_json::Value;

use crate::ui;

pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.insert("source".into(), Arc::new(Source) as Arc<dyn StageKind>);
    r.insert("exec".into(), Arc::new(Exec) as Arc<dyn StageKind>);
    r
}

/// Refuses params a kind does not know, naming the ones it does.
fn check_keys(params: &Value, allowed: &[&str]) -> Result<(), String> {
    let Some(map) = params.as_object() else { return Ok(()) };
    for k in map.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("unknown param `{k}` (this kind takes: {})", allowed.join(", ")));
        }
    }
    Ok(())
}

fn opt_str(params: &Value, key: &str) -> Result<Option<String>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("param `{key}` must be a string, found {other}")),
    }
}

/// `source`: one data file from a path, a mirror or a URL.
struct Source;

impl Source {
    fn spec(params: &Value) -> Result<SourceSpec, String> {
        check_keys(params, &["url", "path", "sha256", "blake3"])?;
        let location = match (opt_str(params, "url")?, opt_str(params, "path")?) {
            (Some(u), None) if u.starts_with("http://") || u.starts_with("https://") => Location::Url(u),
            (Some(u), None) => return Err(format!("param `url` must be an http(s) URL, found `{u}` (use `path:` for a local file)")),
            (None, Some(p)) => Location::Path(p.into()),
            _ => return Err("give exactly one of `url` or `path`".into()),
        };
        Ok(SourceSpec { location, sha256: opt_str(params, "sha256")?, blake3: opt_str(params, "blake3")? })
    }
}

impl StageKind for Source {
    fn version(&self) -> u32 {
        1
    }

    fn outputs(&self, params: &Value, declared: &[String]) -> Result<Vec<String>, String> {
        Source::spec(params)?;
        if !declared.is_empty() {
            return Err("a `source` stage has one output, `data`; remove `outputs:`".into());
        }
        Ok(vec!["data".into()])
    }

    fn check_inputs(&self, _: &Value, inputs: &[&str]) -> Result<(), String> {
        if inputs.is_empty() {
            Ok(())
        } else {
            Err("a `source` stage takes no inputs".into())
        }
    }

    /// A local file is identified by its content hash (so an edited file
    /// reruns the stage); a URL by the URL itself, which is in the params.
    fn fingerprint(&self, params: &Value, env: &Env) -> Result<Option<String>, StageError> {
        let spec = Source::spec(params)?;
        match spec.local_path(&env.project_dir) {
            Some(p) if !p.is_file() => Err(format!("{}: file not found", p.display()).into()),
            Some(p) => Ok(Some(format!("blake3:{}", env.store.hash_external(&p)?))),
            None => Ok(None),
        }
    }

    fn run(&self, job: &Job) -> Result<(), StageError> {
        let spec = Source::spec(job.params)?;
        let mirrors = kimcnn_source::default_mirrors(&job.env.project_dir);
        let bar = ui::bytes_bar(job.stage);
        let dest = &job.outputs["data"];
        kimcnn_source::fetch(&spec, &job.env.project_dir, &mirrors, dest, &|done, total| ui::bytes_progress(&bar, done, total))?;
        Ok(())
    }
}

/// `exec`: a shell command with declared outputs.
struct Exec;

impl StageKind for Exec {
    fn version(&self) -> u32 {
        1
    }

    fn outputs(&self, params: &Value, declared: &[String]) -> Result<Vec<String>, String> {
        check_keys(params, &["cmd", "env"])?;
        if opt_str(params, "cmd")?.is_none() {
            return Err("an `exec` stage needs `cmd:`".into());
        }
        if declared.is_empty() {
            return Err("an `exec` stage needs `outputs:` (the files its command writes to $OUT_<name>)".into());
        }
        Ok(declared.to_vec())
    }

    fn run(&self, job: &Job) -> Result<(), StageError> {
        let cmd = opt_str(job.params, "cmd")?.unwrap_or_default();
        let mut env: Vec<(String, OsString)> = Vec::new();
        for (name, p) in &job.inputs {
            env.push((format!("IN_{name}"), p.clone().into()));
        }
        for (name, p) in &job.outputs {
            env.push((format!("OUT_{name}"), p.clone().into()));
        }
        env.push(("KIMCNN_THREADS".into(), job.threads.to_string().into()));
        env.push(("KIMCNN_STAGE".into(), job.stage.into()));
        env.push(("KIMCNN_SCRATCH".into(), job.scratch.into()));
        if let Some(extra) = job.params.get("env").and_then(Value::as_object) {
            let extra: BTreeMap<&String, &Value> = extra.iter().collect();
            for (k, v) in extra {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                env.push((k.clone(), v.into()));
            }
        }
        let spec = kimcnn_exec::ExecSpec { cmd, cwd: job.env.project_dir.clone(), env, log: job.scratch.join("exec.log") };
        kimcnn_exec::run(&spec)?;
        Ok(())
    }
}
