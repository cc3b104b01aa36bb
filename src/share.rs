//! `kimcnn push`, `pull`, `gc --remote` and `run --pull`: sharing a store's
//! artifacts through a remote (the transfers live in `kimcnn-remote`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kimcnn_remote::{Quiet, Remote, RemoteConfigs, RemoteError};
use kimcnn_store::{LockEntry, Lockfile, ObjectId, Store};

use crate::{ui, Failure, Project};

impl From<RemoteError> for Failure {
    fn from(e: RemoteError) -> Failure {
        let code = if matches!(e, RemoteError::Config(_)) { 2 } else { 1 };
        Failure(e.to_string(), code)
    }
}

/// A YAML file (None: it does not exist).
pub fn read_yaml(p: &Path) -> Result<Option<serde_yaml::Value>, Failure> {
    if !p.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(p).map_err(|e| Failure(format!("{}: {e}", p.display()), 2))?;
    serde_yaml::from_str(&text).map(Some).map_err(|e| Failure(format!("{}: {e}", p.display()), 2))
}

/// The remotes of pipeline.yaml, overridden by `.kimcnn/config` (git-ignored).
fn configs(project: &Project) -> Result<RemoteConfigs, Failure> {
    let mut c = RemoteConfigs::default();
    let pipeline = read_yaml(&project.file)?.unwrap_or_default();
    c.merge_yaml(&project.file.display().to_string(), pipeline.get("remotes"), None)?;
    let user = project.env.project_dir.join(".kimcnn/config");
    if let Some(v) = read_yaml(&user)? {
        let Some(m) = v.as_mapping() else {
            return Err(Failure(format!("{}: expected a mapping with `remotes` (and `default_remote`, `ray`)", user.display()), 2));
        };
        if let Some(k) = m.keys().filter_map(|k| k.as_str()).find(|k| !matches!(*k, "remotes" | "default_remote" | "ray")) {
            return Err(Failure(format!("{}: unknown key `{k}` (expected `remotes`, `default_remote`, `ray`)", user.display()), 2));
        }
        c.merge_yaml(&user.display().to_string(), v.get("remotes"), v.get("default_remote"))?;
    }
    Ok(c)
}

/// The remote named (or the default one): its name and declaration.
pub fn pick(project: &Project, name: Option<&str>) -> Result<(String, kimcnn_remote::RemoteConfig), Failure> {
    let c = configs(project)?;
    let (name, cfg) = c.pick(name)?;
    Ok((name.to_string(), cfg.clone()))
}

/// Opens the remote named (or the default one).
pub fn open(project: &Project, name: Option<&str>) -> Result<Remote, Failure> {
    let (name, cfg) = pick(project, name)?;
    Ok(Remote::open(&name, &cfg, &project.env.project_dir)?)
}

/// The lock's stages the targets select (all when none), each target selecting at least one.
fn select<'a>(lock: &'a Lockfile, targets: &[String]) -> Result<Vec<(&'a String, &'a LockEntry)>, Failure> {
    if lock.stages.is_empty() {
        return Err(Failure("pipeline.lock names no stages yet: run the pipeline (`kimcnn run`) or check out a lock first".into(), 2));
    }
    crate::select_locked(lock, targets).map_err(|t| Failure(format!("no stage in pipeline.lock matches `{t}`"), 2))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn push(project: &Project, remote: Option<&str>, targets: &[String]) -> Result<ExitCode, Failure> {
    let lock = Lockfile::read(&project.lock_path())?;
    let store = &project.env.store;
    let mut records = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, e) in select(&lock, targets)? {
        let rec = store.read_run(&e.key)?.filter(|r| r.outputs.values().all(|id| store.has_object(id))).ok_or_else(|| {
            Failure(
                format!("stage `{name}` (key {}) is not in the local store: run it (`kimcnn run {name}`) or pull it first", e.key.short()),
                1,
            )
        })?;
        if seen.insert(e.key.clone()) {
            records.push(rec);
        }
    }
    let remote = open(project, remote)?;
    let r = remote.push(store, &records, &ui::TransferBar::new())?;
    let stage_of = |key: &ObjectId| lock.stages.iter().find(|(_, e)| &e.key == key).map(|(n, _)| n.as_str()).unwrap_or("?");
    for key in &r.conflicts {
        ui::line(&format!(
            "conflict: stage `{}` (key {}): `{}` has a run record naming other output bytes (computed elsewhere, in fast numerics or on another CPU?); left as it is",
            stage_of(key),
            key.short(),
            remote.name()
        ));
    }
    ui::line(&format!(
        "pushed {} objects ({}) and {} run records to `{}`; {} objects and {} records were there already",
        r.objects_sent,
        mb(r.bytes_sent),
        r.records_sent,
        remote.name(),
        r.objects - r.objects_sent,
        r.records - r.records_sent
    ));
    if !r.conflicts.is_empty() {
        return Err(Failure(
            format!(
                "{} stages conflict with `{}`: see above; `kimcnn verify --recompute STAGE` says which bytes this machine computes",
                r.conflicts.len(),
                remote.name()
            ),
            1,
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `verify --remote`: every published record of the lock's stages names
/// only objects the remote has.
pub fn verify_remote(project: &Project, remote: &str, targets: &[String]) -> Result<ExitCode, Failure> {
    let lock = Lockfile::read(&project.lock_path())?;
    let entries = select(&lock, targets)?;
    let keys: Vec<ObjectId> = entries.iter().map(|(_, e)| e.key.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let remote = open(project, Some(remote))?;
    let kimcnn_remote::Published { keys: published, missing } = remote.check_published(&keys)?;
    for (name, e) in &entries {
        for (key, id) in missing.iter().filter(|(k, _)| k == &e.key) {
            let out = e.outputs.iter().find(|(_, o)| *o == id).map(|(n, _)| n.as_str()).unwrap_or("?");
            println!("missing: stage `{name}` output `{out}`: object {} is not on `{}`, though its run record ({}) is; `kimcnn push {name}` uploads it again", id.short(), remote.name(), key.short());
        }
    }
    let unpublished = entries.iter().filter(|(_, e)| !published.contains(&e.key)).count();
    println!(
        "`{}`: {} of {} stages published, {} objects missing{}",
        remote.name(),
        entries.len() - unpublished,
        entries.len(),
        missing.len(),
        if unpublished > 0 { format!("; {unpublished} stages not pushed yet") } else { String::new() }
    );
    Ok(if missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn pull(project: &Project, remote: Option<&str>, targets: &[String]) -> Result<ExitCode, Failure> {
    let lock = Lockfile::read(&project.lock_path())?;
    let store = &project.env.store;
    let entries = select(&lock, targets)?;
    let keys: Vec<ObjectId> = entries.iter().map(|(_, e)| e.key.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let remote = open(project, remote)?;
    let r = remote.pull(store, &keys, &ui::TransferBar::new())?;
    let mut missing = Vec::new();
    for (name, e) in &entries {
        match r.records.get(&e.key) {
            Some(rec) if rec.outputs == e.outputs => {
                for (out, id) in &e.outputs {
                    store.link(name, out, id)?;
                }
            }
            Some(_) => {
                return Err(Failure(
                    format!("stage `{name}`: the run record on `{}` names other outputs than pipeline.lock; refused", remote.name()),
                    1,
                ))
            }
            None => missing.push(name.as_str()),
        }
    }
    ui::line(&format!(
        "pulled {} objects ({}) and {} run records from `{}`; {} of {} stages are here",
        r.objects_fetched,
        mb(r.bytes_fetched),
        r.records_fetched,
        remote.name(),
        entries.len() - missing.len(),
        entries.len()
    ));
    if !missing.is_empty() {
        let mut list = missing[..missing.len().min(5)].join(", ");
        if missing.len() > 5 {
            list.push_str(", ...");
        }
        return Err(Failure(
            format!("{} stages are not on `{}`: {list} (push them from a store that has them, or run them)", missing.len(), remote.name()),
            1,
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `run --pull`: the runner asks the remote for each key before computing it.
#[derive(Debug)]
pub struct RemoteFetch(pub Remote);

impl kimcnn_pipeline::Fetch for RemoteFetch {
    fn fetch(&self, store: &Store, key: &ObjectId) -> Result<bool, String> {
        let r = self.0.pull(store, std::slice::from_ref(key), &Quiet).map_err(|e| e.to_string())?;
        Ok(r.missing.is_empty())
    }
}

/// The locks gc keeps: `pipeline.lock` at each git ref, each lock file; the
/// working tree's lock when none is given.
fn keep_locks(project: &Project, refs: &[String], files: &[PathBuf]) -> Result<Vec<Lockfile>, Failure> {
    let mut locks = Vec::new();
    for r in refs {
        let out = std::process::Command::new("git")
            .args(["show", &format!("{r}:./pipeline.lock")])
            .current_dir(&project.env.project_dir)
            .output()
            .map_err(|e| Failure(format!("git: {e}"), 1))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(Failure(format!("git ref `{r}`: no pipeline.lock there ({})", why.lines().next().unwrap_or("").trim()), 2));
        }
        locks.push(Lockfile::parse(&String::from_utf8_lossy(&out.stdout), Path::new(&format!("{r}:pipeline.lock")))?);
    }
    for f in files {
        if !f.is_file() {
            return Err(Failure(format!("{}: no such lock file", f.display()), 2));
        }
        locks.push(Lockfile::read(f)?);
    }
    if refs.is_empty() && files.is_empty() {
        locks.push(Lockfile::read(&project.lock_path())?);
    }
    Ok(locks)
}

pub fn gc_remote(project: &Project, remote: &str, dry_run: bool, refs: &[String], files: &[PathBuf]) -> Result<ExitCode, Failure> {
    let locks = keep_locks(project, refs, files)?;
    let keep_keys: BTreeSet<ObjectId> = locks.iter().flat_map(|l| l.stages.values().map(|e| e.key.clone())).collect();
    let keep_objects: BTreeSet<ObjectId> = locks.iter().flat_map(|l| l.objects().cloned()).collect();
    let remote = open(project, Some(remote))?;
    let r = remote.gc(&keep_keys, &keep_objects, dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    if dry_run {
        for k in &r.records {
            println!("would remove run record {k}");
        }
        for (id, n) in &r.objects {
            println!("would remove object {id} ({n} bytes)");
        }
    }
    println!(
        "`{}`: {verb} {} run records and {} objects ({}); kept {} records, {} objects{}",
        remote.name(),
        r.records.len(),
        r.objects.len(),
        mb(r.objects.iter().map(|(_, n)| n).sum()),
        r.kept_records,
        r.kept_objects,
        if r.foreign > 0 { format!("; left {} files outside kimcnn's layout alone", r.foreign) } else { String::new() }
    );
    Ok(ExitCode::SUCCESS)
}
