use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::*;
use crate::{status, StageError, StageKind, StageState};

/// Writes `text` param (plus its inputs' bytes) to every output; counts runs.
#[derive(Default)]
struct Echo {
    runs: Mutex<HashMap<String, usize>>,
}

impl StageKind for Echo {
    fn version(&self) -> u32 {
        1
    }
    fn outputs(&self, _: &Value, declared: &[String]) -> std::result::Result<Vec<String>, String> {
        Ok(if declared.is_empty() { vec!["out".into()] } else { declared.to_vec() })
    }
    fn run(&self, job: &Job) -> std::result::Result<(), StageError> {
        *self.runs.lock().unwrap().entry(job.stage.to_string()).or_default() += 1;
        if job.params.get("fail").is_some() {
            return Err("asked to fail".into());
        }
        let mut bytes = job.params["text"].as_str().unwrap_or("").as_bytes().to_vec();
        for p in job.inputs.values() {
            bytes.extend(std::fs::read(p)?);
        }
        for p in job.outputs.values() {
            std::fs::write(p, &bytes)?;
        }
        Ok(())
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    echo: Arc<Echo>,
    registry: Registry,
    env: Env,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let echo = Arc::new(Echo::default());
        let registry = Registry::from([("echo".to_string(), echo.clone() as Arc<dyn StageKind>)]);
        let store = Store::open(dir.path().join("artifacts")).unwrap();
        let env = Env { project_dir: dir.path().to_path_buf(), store };
        Fixture { dir, echo, registry, env }
    }

    fn plan(&self, text: &str, sets: &[&str]) -> Plan {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Plan::parse(text, Path::new("pipeline.yaml"), &sets, &self.registry).unwrap()
    }

    fn opts(&self) -> RunOptions {
        RunOptions {
            targets: vec![],
            downstream: false,
            force: false,
            dry_run: false,
            jobs: 2,
            lock_path: self.dir.path().join("pipeline.lock"),
            pull: None,
        }
    }

    fn run(&self, plan: &Plan, opts: &RunOptions) -> Result<RunSummary> {
        run(plan, &self.registry, &self.env, opts, &|_| {})
    }

    fn runs(&self, stage: &str) -> usize {
        self.echo.runs.lock().unwrap().get(stage).copied().unwrap_or(0)
    }
}

const CHAIN: &str = "params: {t: a}\nstages:\n  one: {uses: echo, with: {text: '${t}', note: x}}\n  two: {uses: echo, inputs: {i: one.out}, with: {text: b}}\n  three: {uses: echo, inputs: {i: two.out}, with: {text: c}}\n";

#[test]
fn second_run_is_all_cached_and_outputs_are_linked() {
    let f = Fixture::new();
    let p = f.plan(CHAIN, &[]);
    let s = f.run(&p, &f.opts()).unwrap();
    assert_eq!(s.ran(), ["one", "two", "three"]);
    let out = std::fs::read(f.env.store.root().join("out/three/out")).unwrap();
    assert_eq!(out, b"cba");
    let s = f.run(&p, &f.opts()).unwrap();
    assert!(s.ran().is_empty());
    assert_eq!(s.count(|o| *o == Outcome::Cached), 3);
    let lock = Lockfile::read(&f.opts().lock_path).unwrap();
    assert_eq!(lock.stages.len(), 3);
    assert!(status(&p, &f.registry, &f.env, &f.opts().lock_path).unwrap().iter().all(|s| s.state == StageState::UpToDate));
}

#[test]
fn early_cutoff_stops_at_identical_outputs() {
    let f = Fixture::new();
    f.run(&f.plan(CHAIN, &[]), &f.opts()).unwrap();
    // `note` changes one's key but not its output bytes: two and three stay cached.
    let p = f.plan(CHAIN, &["one.note=y"]);
    let st = status(&p, &f.registry, &f.env, &f.opts().lock_path).unwrap();
    assert_eq!(st[0].state, StageState::Stale);
    assert_eq!(st[0].reasons, vec![crate::Reason::Param { path: "note".into(), old: Some("x".into()), new: Some("y".into()) }]);
    assert!(matches!(&st[1].reasons[0], crate::Reason::Upstream { stage, .. } if stage == "one"));
    let s = f.run(&p, &f.opts()).unwrap();
    assert_eq!(s.ran(), ["one"]);
    assert_eq!((f.runs("one"), f.runs("two"), f.runs("three")), (2, 1, 1));
    // A real change propagates.
    let s = f.run(&f.plan(CHAIN, &["t=z"]), &f.opts()).unwrap();
    assert_eq!(s.ran(), ["one", "two", "three"]);
}

#[test]
fn reverting_a_param_restores_without_computing() {
    let f = Fixture::new();
    f.run(&f.plan(CHAIN, &[]), &f.opts()).unwrap();
    f.run(&f.plan(CHAIN, &["t=z"]), &f.opts()).unwrap();
    let p = f.plan(CHAIN, &[]);
    let st = status(&p, &f.registry, &f.env, &f.opts().lock_path).unwrap();
    assert!(st.iter().all(|s| s.state == StageState::Restorable), "{st:?}");
    assert!(f.run(&p, &f.opts()).unwrap().ran().is_empty());
}

#[test]
fn targets_force_and_dry_run() {
    let f = Fixture::new();
    let p = f.plan(CHAIN, &[]);
    let mut o = f.opts();
    o.targets = vec!["two".into()];
    o.dry_run = true;
    let s = f.run(&p, &o).unwrap();
    assert_eq!(s.count(|o| *o == Outcome::WouldRun), 2);
    assert_eq!(f.runs("one"), 0);
    o.dry_run = false;
    assert_eq!(f.run(&p, &o).unwrap().ran(), ["one", "two"]);
    o.force = true;
    assert_eq!(f.run(&p, &o).unwrap().ran(), ["two"]);
}

#[test]
fn corrupt_input_is_quarantined_and_recomputed() {
    let f = Fixture::new();
    let p = f.plan(CHAIN, &[]);
    f.run(&p, &f.opts()).unwrap();
    let lock = Lockfile::read(&f.opts().lock_path).unwrap();
    let id = lock.stages["one"].outputs["out"].clone();
    let path = f.env.store.object_path(&id);
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"Z").unwrap(); // same length, other byte
    let mut o = f.opts();
    o.targets = vec!["two".into()];
    o.force = true;
    let s = f.run(&p, &o).unwrap();
    assert_eq!(s.quarantined.len(), 1);
    assert_eq!(s.quarantined[0].1, id);
    assert_eq!(std::fs::read(&path).unwrap(), b"a", "recomputed from its producer");
    assert_eq!(f.runs("one"), 2);
}

#[test]
fn failures_skip_downstream_and_keep_nothing() {
    let f = Fixture::new();
    let p = f.plan("stages:\n  a: {uses: echo, with: {fail: 1}}\n  b: {uses: echo, inputs: {i: a.out}}\n  c: {uses: echo, with: {text: ok}}\n", &[]);
    let e = f.run(&p, &f.opts()).unwrap_err().to_string();
    assert_eq!(e, "stage `a` failed: asked to fail");
    assert_eq!(f.runs("b"), 0);
    assert_eq!(f.runs("c"), 1);
    let lock = Lockfile::read(&f.opts().lock_path).unwrap();
    assert_eq!(lock.stages.keys().collect::<Vec<_>>(), ["c"]);
    assert_eq!(f.env.store.runs().unwrap().len(), 1);
}

#[test]
fn missing_output_is_an_error() {
    let f = Fixture::new();
    struct Lazy;
    impl StageKind for Lazy {
        fn version(&self) -> u32 {
            1
        }
        fn outputs(&self, _: &Value, _: &[String]) -> std::result::Result<Vec<String>, String> {
            Ok(vec!["out".into()])
        }
        fn run(&self, _: &Job) -> std::result::Result<(), StageError> {
            Ok(())
        }
    }
    let registry = Registry::from([("lazy".to_string(), Arc::new(Lazy) as Arc<dyn StageKind>)]);
    let p = Plan::parse("stages:\n  a: {uses: lazy}\n", Path::new("p"), &[], &registry).unwrap();
    let e = run(&p, &registry, &f.env, &f.opts(), &|_| {}).unwrap_err().to_string();
    assert_eq!(e, "stage `a` failed: did not write its output `out`");
}
