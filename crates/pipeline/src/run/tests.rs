use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kimcnn_stage::{Job, Kind, RunInfo};
use serde::{Deserialize, Serialize};

use super::*;
use crate::{status, StageState};

/// Writes `text` param (plus its inputs' bytes) to every output; counts runs.
#[derive(Default, Clone)]
struct Echo {
    runs: Arc<Mutex<HashMap<String, usize>>>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct EchoParams {
    text: String,
    note: Option<String>,
    fail: bool,
}

impl Kind for Echo {
    const NAME: &'static str = "echo";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["out"];
    type Params = EchoParams;
    fn outputs(&self, _: &EchoParams, declared: &[String]) -> std::result::Result<Vec<String>, String> {
        Ok(if declared.is_empty() { vec!["out".into()] } else { declared.to_vec() })
    }
    fn run(&self, p: &EchoParams, job: &Job) -> std::result::Result<RunInfo, StageError> {
        *self.runs.lock().unwrap().entry(job.stage.to_string()).or_default() += 1;
        if p.fail {
            return Err(StageError::Failed("asked to fail".into()));
        }
        let mut bytes = p.text.as_bytes().to_vec();
        for p in job.inputs.values() {
            bytes.extend(std::fs::read(p)?);
        }
        for p in job.outputs.values() {
            std::fs::write(p, &bytes)?;
        }
        Ok(RunInfo::default())
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    echo: Echo,
    registry: Registry,
    env: Env,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let echo = Echo::default();
        let mut registry = Registry::new();
        registry.register(echo.clone());
        let store = Store::open(dir.path().join("artifacts")).unwrap();
        let env = Env { project_dir: dir.path().to_path_buf(), store };
        Fixture { dir, echo, registry, env }
    }

    fn plan(&self, text: &str, sets: &[&str]) -> Plan {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Plan::parse(text, Path::new("pipeline.yaml"), &sets, None, &self.registry).unwrap()
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
            executor: None,
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
    let p = f.plan(
        "stages:\n  a: {uses: echo, with: {fail: true}}\n  b: {uses: echo, inputs: {i: a.out}}\n  c: {uses: echo, with: {text: ok}}\n",
        &[],
    );
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
    impl Kind for Lazy {
        const NAME: &'static str = "lazy";
        const VERSION: u32 = 1;
        const OUTPUTS: &'static [&'static str] = &["out"];
        type Params = Value;
        fn run(&self, _: &Value, _: &Job) -> std::result::Result<RunInfo, StageError> {
            Ok(RunInfo::default())
        }
    }
    let mut registry = Registry::new();
    registry.register(Lazy);
    let p = Plan::parse("stages:\n  a: {uses: lazy}\n", Path::new("p"), &[], None, &registry).unwrap();
    let e = run(&p, &registry, &f.env, &f.opts(), &|_| {}).unwrap_err().to_string();
    assert_eq!(e, "stage `a` failed: did not write its output `out`");
}

/// A kind whose one default (`times`) is a const parameter, to show what a
/// changed default in code does to keys.
struct Times<const DEFAULT: u32>;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimesParams<const DEFAULT: u32> {
    text: String,
    #[serde(default = "default_times::<DEFAULT>")]
    times: u32,
}

fn default_times<const D: u32>() -> u32 {
    D
}

impl<const DEFAULT: u32> Kind for Times<DEFAULT> {
    const NAME: &'static str = "times";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["out"];
    type Params = TimesParams<DEFAULT>;
    fn run(&self, p: &TimesParams<DEFAULT>, job: &Job) -> std::result::Result<RunInfo, StageError> {
        std::fs::write(&job.outputs["out"], p.text.repeat(p.times as usize))?;
        Ok(RunInfo::default())
    }
}

fn keys(registry: &Registry, text: &str) -> Vec<ObjectId> {
    let p = Plan::parse(text, Path::new("p"), &[], None, registry).unwrap();
    p.stages.iter().map(|s| cache_key(&s.kind, s.version, &s.params, &BTreeMap::new(), &None)).collect()
}

#[test]
fn keys_hash_normalised_params_so_defaults_are_part_of_them() {
    let text = "stages:\n  implicit: {uses: times, with: {text: a}}\n  explicit: {uses: times, with: {text: a, times: 2}}\n  other: {uses: times, with: {text: a, times: 3}}\n";
    let mut v2 = Registry::new();
    v2.register(Times::<2>);
    let k = keys(&v2, text);
    assert_eq!(k[0], k[1], "writing the default or leaving it out is the same stage");
    assert_ne!(k[0], k[2]);
    // The same kind with its default changed in code (no version bump): the
    // stage that relied on the default gets a new key, the others keep theirs.
    let mut v3 = Registry::new();
    v3.register(Times::<3>);
    let k3 = keys(&v3, text);
    assert_ne!(k3[0], k[0]);
    assert_eq!(k3[0], k[2], "it now computes what `times: 3` computed");
    assert_eq!((&k3[1], &k3[2]), (&k[1], &k[2]));
}

/// An executor that runs each job as another machine would: the job
/// crosses as JSON, the inputs travel by hash into that machine's own store,
/// the outputs come back by hash.
#[derive(Debug)]
struct Elsewhere {
    here: Store,
    there: LocalExecutor,
    jobs: Mutex<Vec<String>>,
}

impl Executor for Elsewhere {
    fn execute(
        &self,
        job: &JobSpec,
        progress: &(dyn Fn(Progress) + Sync),
        stop: &std::sync::atomic::AtomicBool,
    ) -> std::result::Result<crate::Executed, StageError> {
        let wire = serde_json::to_string(job).unwrap();
        self.jobs.lock().unwrap().push(wire.clone());
        let job: JobSpec = serde_json::from_str(&wire).unwrap();
        let there = &self.there.env.store;
        for id in job.inputs.values() {
            assert_eq!(&there.commit_bytes(&std::fs::read(self.here.object_path(id)).unwrap()).unwrap(), id);
        }
        let mut x = self.there.execute(&job, progress, stop)?;
        for id in x.outputs.values_mut() {
            *id = self.here.commit_bytes(&std::fs::read(there.object_path(id)).unwrap()).unwrap();
        }
        Ok(x)
    }
}

#[test]
fn an_executor_elsewhere_gets_a_serialisable_job_and_returns_outputs_by_hash() {
    let f = Fixture::new();
    let far = tempfile::tempdir().unwrap();
    let there = Env { project_dir: far.path().to_path_buf(), store: Store::open(far.path().join("store")).unwrap() };
    let ex = Arc::new(Elsewhere {
        here: f.env.store.clone(),
        there: LocalExecutor { registry: f.registry.clone(), env: there },
        jobs: Mutex::new(Vec::new()),
    });
    let mut o = f.opts();
    o.executor = Some(ex.clone());
    let p = f.plan(CHAIN, &[]);
    assert_eq!(f.run(&p, &o).unwrap().ran(), ["one", "two", "three"]);
    assert_eq!(std::fs::read(f.env.store.root().join("out/three/out")).unwrap(), b"cba");
    let jobs = ex.jobs.lock().unwrap();
    let two: JobSpec = serde_json::from_str(&jobs[1]).unwrap();
    let lock = Lockfile::read(&o.lock_path).unwrap();
    assert_eq!(two.inputs["i"], lock.stages["one"].outputs["out"], "inputs named by hash");
    assert_eq!(
        (two.kind.as_str(), two.key.clone(), two.params["text"].clone()),
        ("echo", lock.stages["two"].key.clone(), Value::from("b"))
    );
    // The same keys as a local run: a second, local run restores everything.
    assert!(f.run(&p, &f.opts()).unwrap().ran().is_empty());
}

#[test]
fn structured_failures_reach_the_summary() {
    struct Bad;
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct How {
        how: String,
    }
    impl Kind for Bad {
        const NAME: &'static str = "bad";
        const VERSION: u32 = 1;
        const OUTPUTS: &'static [&'static str] = &["out"];
        type Params = How;
        fn run(&self, p: &How, _: &Job) -> std::result::Result<RunInfo, StageError> {
            Err(match p.how.as_str() {
                "diverge" => StageError::Diverged { epoch: 2, batch: 7, loss: "NaN".into() },
                "input" => StageError::BadInput("line 3: no label".into()),
                _ => StageError::Crashed("killed by signal 9".into()),
            })
        }
    }
    let f = Fixture::new();
    let mut registry = Registry::new();
    registry.register(Bad);
    let p = Plan::parse(
        "stages:\n  d: {uses: bad, with: {how: diverge}}\n  i: {uses: bad, with: {how: input}}\n  c: {uses: bad, with: {how: crash}}\n",
        Path::new("p"),
        &[],
        None,
        &registry,
    )
    .unwrap();
    let e = run(&p, &registry, &f.env, &f.opts(), &|_| {}).unwrap_err();
    let PipelineError::ManyFailed(3, _, _) = e else { panic!("{e}") };
    let mut o = f.opts();
    o.targets = vec!["d".into()];
    let e = run(&p, &registry, &f.env, &o, &|_| {}).unwrap_err();
    assert_eq!(
        e.to_string(),
        "stage `d` failed: epoch 2 batch 7: the loss is NaN; stopped (try a smaller learning rate, or gradient clipping with `clip`)"
    );
    let PipelineError::StageFailed { error, .. } = e else { panic!() };
    assert_eq!((error.label(), error), ("diverged", StageError::Diverged { epoch: 2, batch: 7, loss: "NaN".into() }));
    o.targets = vec!["i".into(), "c".into()];
    let outcomes = std::sync::Mutex::new(Vec::new());
    let _ = run(&p, &registry, &f.env, &o, &|e| {
        if let Event::Finished { stage, outcome: Outcome::Failed(err) } = e {
            outcomes.lock().unwrap().push((stage.to_string(), err.label()));
        }
    });
    let mut got = outcomes.into_inner().unwrap();
    got.sort();
    assert_eq!(got, [("c".to_string(), "crashed"), ("i".to_string(), "bad input")]);
}
