//! A typed client of Ray's Jobs REST API, the dashboard's HTTP endpoints
//! that `ray job submit` itself calls: submit a job (with a caller-chosen
//! `submission_id` and the CPUs and GPUs its entrypoint needs), list every
//! job in one request, read one job, its logs, stop it, and upload or look
//! up a `runtime_env` package. Plain HTTP from Rust: no Python in the
//! caller. With Ray's token auth (`RAY_AUTH_MODE=token`, Ray 2.52 and
//! later) every request carries the token as a bearer token; it is read
//! from where Ray reads it ([`token_from_env`]) and written nowhere.
//!
//! Ray answers a second submission under an existing `submission_id` with
//! HTTP 500 "already exists": [`RayClient::submit`] returns
//! [`Submitted::Existing`], so a caller that derives the id from its work
//! (kimcnn: from the stage's cache key) attaches to the job it submitted
//! before a crash instead of running it twice.

mod executor;
mod relay;

pub use executor::{run_on_node, Binaries, NodeJob, NodeResult, RayConfig, RayExecutor, RaySetup, RESULT};
pub use relay::{NodePrinter, Relay, PROGRESS};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RayError {
    #[error(
        "the Ray dashboard at {address} is unreachable ({message}): is the cluster up (`ray status`), and is this its dashboard address?"
    )]
    Unreachable { address: String, message: String },
    #[error("the Ray dashboard at {address} refused {}(HTTP {status}): set RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` on the head)", if *.has_token { "the token " } else { "a request without a token " })]
    Unauthorized { address: String, status: u16, has_token: bool },
    #[error("Ray has no job `{0}`")]
    NoSuchJob(String),
    #[error("Ray answered HTTP {status} to {what}: {message}")]
    Api { what: String, status: u16, message: String },
    #[error("Ray's answer to {what} is not what kimcnn reads: {message}")]
    BadResponse { what: String, message: String },
    #[error("{path}: {message}")]
    Token { path: PathBuf, message: String },
}

pub type Result<T, E = RayError> = std::result::Result<T, E>;

/// A job's state, as Ray names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Waiting for its runtime environment or for a node with its resources.
    Pending,
    Running,
    Stopped,
    Succeeded,
    Failed,
}

impl JobStatus {
    /// Whether it has ended (Ray changes an ended job's status no more).
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Stopped | JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// One job as Ray reports it: the fields kimcnn reads (Ray sends more).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobInfo {
    pub submission_id: Option<String>,
    pub status: JobStatus,
    pub entrypoint: String,
    /// Why it is in its status ("Job has not started yet. It may be waiting for resources ...").
    #[serde(default)]
    pub message: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub start_time: Option<u64>,
    #[serde(default)]
    pub end_time: Option<u64>,
    #[serde(default)]
    pub driver_exit_code: Option<i32>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A job to submit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubmitRequest {
    /// The shell command the job runs.
    pub entrypoint: String,
    pub submission_id: String,
    /// CPUs and GPUs reserved for the entrypoint itself (Ray schedules it on a node that has them).
    pub entrypoint_num_cpus: f64,
    pub entrypoint_num_gpus: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_env: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// What a submission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    New,
    /// A job with this `submission_id` was already there (submitted before a crash, say).
    Existing,
}

/// The cluster's versions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Versions {
    /// The Jobs API's version.
    pub version: String,
    pub ray_version: String,
}

/// A connection to one cluster's dashboard.
#[derive(Clone)]
pub struct RayClient {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for RayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("RayClient").field("base", &self.base).field("token", &self.token.as_ref().map(|_| "…")).finish()
    }
}

/// The token as Ray itself finds it: `RAY_AUTH_TOKEN`, else the file
/// `RAY_AUTH_TOKEN_PATH` names (which must then be readable), else
/// `~/.ray/auth_token` if it exists; none: no token (a cluster without auth).
pub fn token_from_env() -> Result<Option<String>> {
    if let Some(t) = std::env::var("RAY_AUTH_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
        return Ok(Some(t.trim().to_string()));
    }
    let read = |path: PathBuf| -> Result<String> {
        let t = std::fs::read_to_string(&path).map_err(|e| RayError::Token { path: path.clone(), message: e.to_string() })?;
        match t.trim() {
            "" => Err(RayError::Token { path, message: "the token file is empty".into() }),
            t => Ok(t.to_string()),
        }
    };
    if let Some(p) = std::env::var_os("RAY_AUTH_TOKEN_PATH") {
        return read(PathBuf::from(p)).map(Some);
    }
    match std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ray/auth_token")) {
        Some(p) if p.is_file() => read(p).map(Some),
        _ => Ok(None),
    }
}

impl RayClient {
    /// `address`: the dashboard's, `http://head:8265` (`http://` is added when missing).
    pub fn new(address: &str, token: Option<String>) -> RayClient {
        let base = if address.contains("://") { address.to_string() } else { format!("http://{address}") };
        let agent = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(10)).timeout(Duration::from_secs(120)).build();
        RayClient { base: base.trim_end_matches('/').to_string(), token, agent }
    }

    pub fn address(&self) -> &str {
        &self.base
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let r = self.agent.request(method, &format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.set("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    /// Sends `req`; an HTTP error status is returned as `Err((status, body))`, after auth
    /// and transport errors are turned into theirs.
    fn send(&self, req: ureq::Request, body: Option<&[u8]>) -> Result<std::result::Result<ureq::Response, (u16, String)>> {
        let sent = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        match sent {
            Ok(r) => Ok(Ok(r)),
            Err(ureq::Error::Status(status @ (401 | 403), _)) => {
                Err(RayError::Unauthorized { address: self.base.clone(), status, has_token: self.token.is_some() })
            }
            Err(ureq::Error::Status(status, r)) => Ok(Err((status, r.into_string().unwrap_or_default()))),
            Err(ureq::Error::Transport(t)) => Err(RayError::Unreachable { address: self.base.clone(), message: t.to_string() }),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(what: &str, r: ureq::Response) -> Result<T> {
        let text = r.into_string().map_err(|e| RayError::BadResponse { what: what.into(), message: e.to_string() })?;
        serde_json::from_str(&text).map_err(|e| RayError::BadResponse { what: what.into(), message: format!("{e}: {}", snippet(&text)) })
    }

    fn api(what: &str, (status, body): (u16, String)) -> RayError {
        RayError::Api { what: what.into(), status, message: last_line(&body) }
    }

    /// The cluster's Ray and Jobs API versions (a cheap reachability and token check).
    pub fn versions(&self) -> Result<Versions> {
        let what = "GET /api/version";
        let r = self.send(self.request("GET", "/api/version"), None)?.map_err(|e| Self::api(what, e))?;
        Self::json(what, r)
    }

    /// Submits a job; a job already under its `submission_id` is [`Submitted::Existing`].
    pub fn submit(&self, job: &SubmitRequest) -> Result<Submitted> {
        let what = "POST /api/jobs/";
        let body = serde_json::to_vec(job).map_err(|e| RayError::BadResponse { what: what.into(), message: e.to_string() })?;
        let req = self.request("POST", "/api/jobs/").set("Content-Type", "application/json");
        match self.send(req, Some(&body))? {
            Ok(_) => Ok(Submitted::New),
            Err((500, body)) if body.contains("already exists") => Ok(Submitted::Existing),
            Err(e) => Err(Self::api(what, e)),
        }
    }

    /// Every job the cluster knows, in one request.
    pub fn jobs(&self) -> Result<Vec<JobInfo>> {
        let what = "GET /api/jobs/";
        let r = self.send(self.request("GET", "/api/jobs/"), None)?.map_err(|e| Self::api(what, e))?;
        Self::json(what, r)
    }

    /// `METHOD /api/jobs/{id}{tail}`, read as JSON; a 404 is [`RayError::NoSuchJob`].
    fn job_call<T: serde::de::DeserializeOwned>(&self, method: &str, id: &str, tail: &str) -> Result<T> {
        let path = format!("/api/jobs/{id}{tail}");
        let what = format!("{method} {path}");
        let body: Option<&[u8]> = if method == "POST" { Some(b"") } else { None };
        match self.send(self.request(method, &path), body)? {
            Ok(r) => Self::json(&what, r),
            Err((404, _)) => Err(RayError::NoSuchJob(id.into())),
            Err(e) => Err(Self::api(&what, e)),
        }
    }

    /// One job, by submission id.
    pub fn job(&self, id: &str) -> Result<JobInfo> {
        self.job_call("GET", id, "")
    }

    /// A job's logs (its entrypoint's stdout and stderr) so far.
    pub fn logs(&self, id: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct Logs {
            logs: String,
        }
        self.job_call::<Logs>("GET", id, "/logs").map(|l| l.logs)
    }

    /// Asks Ray to stop a job; false when it had ended already.
    pub fn stop(&self, id: &str) -> Result<bool> {
        #[derive(Deserialize)]
        struct Stopped {
            stopped: bool,
        }
        self.job_call::<Stopped>("POST", id, "/stop").map(|s| s.stopped)
    }

    /// Whether the cluster holds the package `gcs://<name>` (a `runtime_env` working_dir zip).
    pub fn has_package(&self, name: &str) -> Result<bool> {
        let what = format!("GET /api/packages/gcs/{name}");
        match self.send(self.request("GET", &format!("/api/packages/gcs/{name}")), None)? {
            Ok(_) => Ok(true),
            Err((404, _)) => Ok(false),
            Err(e) => Err(Self::api(&what, e)),
        }
    }

    /// Uploads `zip` as the package `gcs://<name>`.
    pub fn upload_package(&self, name: &str, zip: &[u8]) -> Result<()> {
        let what = format!("PUT /api/packages/gcs/{name}");
        self.send(self.request("PUT", &format!("/api/packages/gcs/{name}")), Some(zip))?.map_err(|e| Self::api(&what, e))?;
        Ok(())
    }
}

/// The last non-empty line of an error body (Ray sends Python tracebacks: the last line says what).
fn last_line(body: &str) -> String {
    body.lines().rev().map(str::trim).find(|l| !l.is_empty() && *l != ".").map(snippet).unwrap_or_else(|| "(empty answer)".into())
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_have_ray_s_shapes() {
        let job = SubmitRequest {
            entrypoint: "echo hi".into(),
            submission_id: "kimcnn-abc".into(),
            entrypoint_num_cpus: 1.0,
            entrypoint_num_gpus: 0.0,
            runtime_env: None,
            metadata: BTreeMap::new(),
        };
        assert_eq!(
            serde_json::to_string(&job).unwrap(),
            r#"{"entrypoint":"echo hi","submission_id":"kimcnn-abc","entrypoint_num_cpus":1.0,"entrypoint_num_gpus":0.0}"#
        );
        // A job as Ray 2.60 lists it (fields kimcnn does not read are ignored).
        let j: JobInfo = serde_json::from_str(
            r#"{"type": "SUBMISSION", "job_id": null, "submission_id": "kimcnn-big", "driver_info": null, "status": "PENDING",
                "entrypoint": "echo big", "message": "Job has not started yet.", "error_type": null, "start_time": 1795881715594,
                "end_time": null, "metadata": null, "runtime_env": null, "driver_exit_code": null}"#,
        )
        .unwrap();
        assert_eq!((j.status, j.submission_id.as_deref(), j.end_time), (JobStatus::Pending, Some("kimcnn-big"), None));
        assert!(!j.status.is_terminal() && JobStatus::Failed.is_terminal());
        assert!(serde_json::from_str::<JobInfo>(r#"{"status": "LOST", "entrypoint": "x"}"#).is_err());
    }

    #[test]
    fn a_traceback_is_reported_by_its_last_line_and_the_token_never_printed() {
        let body = "Traceback (most recent call last):\n  File \"x.py\"\nValueError: Job with submission_id a already exists.\n.\n";
        assert_eq!(last_line(body), "ValueError: Job with submission_id a already exists.");
        assert_eq!(last_line(""), "(empty answer)");
        let c = RayClient::new("head:8265/", Some("s3cret".into()));
        assert_eq!(c.address(), "http://head:8265");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
