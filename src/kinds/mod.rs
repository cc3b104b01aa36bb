//! The stage kinds `kimcnn` registers with the runner: thin adapters from a
//! stage crate's plain function to [`kimcnn_pipeline::StageKind`]. Each
//! checks its params when the plan is built (so a typo fails before anything
//! runs) and again when it runs.

mod cnn;
mod data;
mod params;

pub use cnn::worker as torch_worker;

pub use params::Params;

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
    r.insert("tokenize".into(), Arc::new(data::Tokenize) as Arc<dyn StageKind>);
    r.insert("vocab".into(), Arc::new(data::VocabKind) as Arc<dyn StageKind>);
    r.insert("embed".into(), Arc::new(data::Embed) as Arc<dyn StageKind>);
    r.insert("train".into(), Arc::new(cnn::Train) as Arc<dyn StageKind>);
    r.insert("evaluate".into(), Arc::new(cnn::Evaluate) as Arc<dyn StageKind>);
    r.insert("aggregate".into(), Arc::new(cnn::Aggregate) as Arc<dyn StageKind>);
    r
}

/// Writes a stage's JSON summary (pretty, with a final newline).
pub fn write_json(path: &std::path::Path, v: &impl serde::Serialize) -> Result<(), StageError> {
    let mut bytes = serde_json::to_vec_pretty(v)?;
    bytes.push(b'\n');
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Refuses `outputs:` on kinds whose outputs are fixed.
fn fixed_outputs(kind: &str, names: &[&str], declared: &[String]) -> Result<Vec<String>, String> {
    if !declared.is_empty() {
        return Err(format!("a `{kind}` stage's outputs are fixed ({}); remove `outputs:`", names.join(", ")));
    }
    Ok(names.iter().map(|s| s.to_string()).collect())
}

/// `source`: one data file from a path, a mirror or a URL.
struct Source;

impl Source {
    fn spec(params: &Value) -> Result<SourceSpec, String> {
        let p = Params::new(params, &["url", "path", "sha256", "blake3", "member", "mirror"])?;
        let location = match (p.opt_str("url")?, p.opt_str("path")?) {
            (Some(u), None) if u.starts_with("http://") || u.starts_with("https://") => Location::Url(u),
            (Some(u), None) => return Err(format!("param `url` must be an http(s) URL, found `{u}` (use `path:` for a local file)")),
            (None, Some(p)) => Location::Path(p.into()),
            _ => return Err("give exactly one of `url` or `path`".into()),
        };
        Ok(SourceSpec {
            location,
            sha256: p.opt_str("sha256")?,
            blake3: p.opt_str("blake3")?,
            member: p.opt_str("member")?,
            mirror_name: p.opt_str("mirror")?,
        })
    }
}

impl StageKind for Source {
    fn version(&self) -> u32 {
        1
    }

    fn outputs(&self, params: &Value, declared: &[String]) -> Result<Vec<String>, String> {
        Source::spec(params)?;
        fixed_outputs("source", &["data"], declared)
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
        if Params::new(params, &["cmd", "env"])?.opt_str("cmd")?.is_none() {
            return Err("an `exec` stage needs `cmd:`".into());
        }
        if declared.is_empty() {
            return Err("an `exec` stage needs `outputs:` (the files its command writes to $OUT_<name>)".into());
        }
        Ok(declared.to_vec())
    }

    fn run(&self, job: &Job) -> Result<(), StageError> {
        let cmd = Params::new(job.params, &["cmd", "env"])?.opt_str("cmd")?.unwrap_or_default();
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
