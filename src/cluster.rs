//! `--executor ray`: a run's stages as jobs on a Ray cluster (kimcnn-ray),
//! their inputs and outputs carried by a remote; and `kimcnn ray-job`, what
//! such a job runs on a node.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use kimcnn_pipeline::{Env, Executor, LocalExecutor};
use kimcnn_ray::{Binaries, NodeJob, NodePrinter, NodeResult, RayClient, RayConfig, RayExecutor, RaySetup, RESULT};
use kimcnn_store::Store;

use crate::{share, Failure, Project};

/// The `ray:` section: `.kimcnn/config`'s, else pipeline.yaml's.
fn config(project: &Project) -> Result<RayConfig, Failure> {
    let user = project.env.project_dir.join(".kimcnn/config");
    for file in [user, project.file.clone()] {
        let Some(v) = share::read_yaml(&file)? else { continue };
        if let Some(ray) = v.get("ray") {
            return serde_yaml::from_value(ray.clone()).map_err(|e| Failure(format!("{}: `ray`: {e}", file.display()), 2));
        }
    }
    Err(Failure(
        "--executor ray needs a `ray:` section (pipeline.yaml or .kimcnn/config): `ray: {address: http://head:8265}`, and a remote the cluster can reach".into(),
        2,
    ))
}

/// The Ray executor for `project`: the dashboard and its token checked, the
/// remote opened. `tail`: show every line the nodes print (`-v`).
pub fn executor(project: &Project, tail: bool) -> Result<Arc<dyn Executor>, Failure> {
    let cfg = config(project)?;
    let token = kimcnn_ray::token_from_env().map_err(|e| Failure(e.to_string(), 2))?;
    let client = RayClient::new(&cfg.address, token);
    let (name, mut remote_config) = share::pick(project, cfg.remote.as_deref())?;
    let remote = Arc::new(share::open(project, Some(&name))?);
    // A directory remote is named absolutely for the nodes (they share its mount).
    if !remote_config.url.contains("://") {
        remote_config.url = project.env.project_dir.join(&remote_config.url).display().to_string();
    }
    let exe = std::env::current_exe().map_err(|e| Failure(format!("cannot find kimcnn's own binary: {e}"), 1))?;
    let worker = kimcnn_cnn::worker_path().map_err(|e| Failure(e.to_string(), 1))?;
    let here = LocalExecutor { registry: project.registry.clone(), env: project.env.clone() };
    let x = RayExecutor::new(RaySetup {
        here: (vec!["source".into(), "study".into()], here),
        client,
        remote,
        remote_config,
        store: project.env.store.clone(),
        binaries: Binaries { files: vec![exe, worker] },
        config: cfg,
        tail,
    })
    .map_err(|e| Failure(e.to_string(), 1))?;
    Ok(Arc::new(x))
}

/// `kimcnn ray-job JOB`: on a node, run one stage for a coordinator and print its result line.
pub fn node(word: &str) -> Result<ExitCode, Failure> {
    let nj = NodeJob::decode(word).map_err(|e| Failure(e, 2))?;
    let dir = std::env::var_os("KIMCNN_NODE_STORE").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
        cache.join("kimcnn/node-store")
    });
    let store = Store::open(&dir).map_err(|e| Failure(e.to_string(), 1))?;
    let cwd = std::env::current_dir().map_err(|e| Failure(e.to_string(), 1))?;
    let local = LocalExecutor { registry: crate::registry(), env: Env { project_dir: cwd.clone(), store: store.clone() } };
    println!("kimcnn ray-job: stage {} (key {}) on {}", nj.job.stage, nj.job.key.short(), hostname());
    let printer = NodePrinter::default();
    let progress = |p: kimcnn_stage::Progress| {
        if let Some(line) = printer.line(&p) {
            println!("{line}");
        }
    };
    let result = kimcnn_ray::run_on_node(nj, &store, &local, &cwd, &progress);
    println!("{RESULT}{}", serde_json::to_string(&result).expect("results serialise"));
    Ok(if matches!(result, NodeResult::Done { .. }) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "this node".into())
}
