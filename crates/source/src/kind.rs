//! The `source` stage kind: its params and how the runner runs it.

use kimcnn_stage::{Env, Job, Kind, Progress, RunInfo, StageError};
use serde::{Deserialize, Serialize};

use crate::{Location, SourceSpec};

/// A `source` stage: one file, from a `path` or a `url` (+ mirrors).
pub struct SourceKind;

/// A `source` stage's params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceParams {
    /// An http(s) URL (looked up by file name in the mirrors first).
    pub url: Option<String>,
    /// A local file, relative to the project directory.
    pub path: Option<String>,
    pub sha256: Option<String>,
    pub blake3: Option<String>,
    /// The file to keep from a downloaded zip archive.
    pub member: Option<String>,
    /// The name to look for in the mirrors (default: the URL's file name).
    pub mirror: Option<String>,
}

impl SourceParams {
    pub fn spec(&self) -> Result<SourceSpec, String> {
        let location = match (&self.url, &self.path) {
            (Some(u), None) if u.starts_with("http://") || u.starts_with("https://") => Location::Url(u.clone()),
            (Some(u), None) => return Err(format!("param `url` must be an http(s) URL, found `{u}` (use `path:` for a local file)")),
            (None, Some(p)) => Location::Path(p.into()),
            _ => return Err("give exactly one of `url` or `path`".into()),
        };
        Ok(SourceSpec {
            location,
            sha256: self.sha256.clone(),
            blake3: self.blake3.clone(),
            member: self.member.clone(),
            mirror_name: self.mirror.clone(),
        })
    }
}

impl Kind for SourceKind {
    const NAME: &'static str = "source";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["data"];
    type Params = SourceParams;

    fn check(&self, p: &mut SourceParams) -> Result<(), String> {
        p.spec().map(|_| ())
    }

    fn check_inputs(&self, _: &SourceParams, inputs: &[&str]) -> Result<(), String> {
        if inputs.is_empty() {
            Ok(())
        } else {
            Err("a `source` stage takes no inputs".into())
        }
    }

    /// A local file is identified by its content hash (so an edited file
    /// reruns the stage); a URL by the URL itself, which is in the params.
    fn fingerprint(&self, p: &SourceParams, env: &Env) -> Result<Option<String>, StageError> {
        let spec = p.spec().map_err(StageError::Failed)?;
        match spec.local_path(&env.project_dir) {
            Some(f) if !f.is_file() => Err(StageError::BadInput(format!("{}: file not found", f.display()))),
            Some(f) => Ok(Some(format!("blake3:{}", env.store.hash_external(&f)?))),
            None => Ok(None),
        }
    }

    fn run(&self, p: &SourceParams, job: &Job) -> Result<RunInfo, StageError> {
        let spec = p.spec().map_err(StageError::Failed)?;
        let mirrors = crate::default_mirrors(&job.env.project_dir);
        let progress = |done, total| (job.progress)(Progress::Bytes { done, total });
        crate::fetch(&spec, &job.env.project_dir, &mirrors, &job.outputs["data"], &progress)?;
        Ok(RunInfo::default())
    }
}
