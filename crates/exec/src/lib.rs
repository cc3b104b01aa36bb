//! The `exec` stage: a user's own command as a cached pipeline stage (what
//! DVC's `cmd:` is), for steps kimcnn has no built-in kind for.
//!
//! The command runs under `sh -c` in the project directory. Each input's path
//! is in `$IN_<name>`, each output's path in `$OUT_<name>`, the thread budget
//! in `$KIMCNN_THREADS`. Its stdout and stderr go to a log file; when it
//! fails, the error quotes the log's last line.

mod kind;

pub use kind::{ExecKind, ExecParams};

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot start `sh`: {0}")]
    Spawn(std::io::Error),
    #[error("{path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("command exited with {status}{}", .last_line.as_ref().map(|l| format!(": {l}")).unwrap_or_default())]
    Failed { status: String, last_line: Option<String> },
}

/// One command run.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub cmd: String,
    pub cwd: PathBuf,
    pub env: Vec<(String, OsString)>,
    pub log: PathBuf,
}

/// Runs the command to completion; Ok when it exits 0.
pub fn run(c: &ExecSpec) -> Result<(), ExecError> {
    let log = File::create(&c.log).map_err(|source| ExecError::Log { path: c.log.clone(), source })?;
    let log2 = log.try_clone().map_err(|source| ExecError::Log { path: c.log.clone(), source })?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(&c.cmd)
        .current_dir(&c.cwd)
        .envs(c.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .status()
        .map_err(ExecError::Spawn)?;
    if status.success() {
        return Ok(());
    }
    let status = match status.code() {
        Some(code) => format!("status {code}"),
        None => "a signal".to_string(),
    };
    Err(ExecError::Failed { status, last_line: last_line(&c.log) })
}

fn last_line(p: &Path) -> Option<String> {
    let f = File::open(p).ok()?;
    BufReader::new(f).lines().map_while(Result::ok).filter(|l| !l.trim().is_empty()).last().map(|l| {
        let l = l.trim();
        if l.len() > 200 {
            format!("{}...", &l[..l.floor_char_boundary(200)])
        } else {
            l.to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(dir: &Path, s: &str) -> ExecSpec {
        ExecSpec {
            cmd: s.into(),
            cwd: dir.into(),
            env: vec![("OUT_x".into(), dir.join("x").into()), ("IN_y".into(), dir.join("y").into())],
            log: dir.join("log"),
        }
    }

    #[test]
    fn runs_with_env_and_reports_failures() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("y"), "in").unwrap();
        run(&cmd(d.path(), "cat \"$IN_y\" > \"$OUT_x\"; echo done")).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("x")).unwrap(), "in");
        let e = run(&cmd(d.path(), "echo first; echo 'no such thing' >&2; exit 3")).unwrap_err();
        assert_eq!(e.to_string(), "command exited with status 3: no such thing");
    }
}
