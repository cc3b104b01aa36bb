use kimcnn_stage::{Job, Kind, RunInfo, StageError};

use super::*;

/// A kind that takes any params and declared outputs, for checking plans.
struct Any;
impl Kind for Any {
    const NAME: &'static str = "any";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["out"];
    type Params = Value;
    fn outputs(&self, _: &Value, declared: &[String]) -> std::result::Result<Vec<String>, String> {
        Ok(if declared.is_empty() { vec!["out".into()] } else { declared.to_vec() })
    }
    fn run(&self, _: &Value, _: &Job) -> std::result::Result<RunInfo, StageError> {
        Ok(RunInfo::default())
    }
}

fn reg() -> Registry {
    let mut r = Registry::new();
    r.register(Any);
    r
}

fn parse(text: &str, sets: &[&str]) -> Result<Plan> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Plan::parse(text, Path::new("p.yaml"), &sets, None, &reg())
}

fn plan(text: &str) -> Result<Plan> {
    Plan::parse(text, Path::new("pipeline.yaml"), &[], None, &reg())
}

fn err(text: &str) -> String {
    plan(text).unwrap_err().to_string()
}

#[test]
fn matrix_expands_in_declared_order_with_stable_names() {
    let p = plan(
        "params: {seed: 7}\nstages:\n  data: {uses: any}\n  train:\n    uses: any\n    matrix: {dataset: [mr, sst2], variant: [rand, non-static], fold: range(2)}\n    inputs: {d: data.out}\n    with: {v: '${variant}', f: '${fold}', s: '${seed}', tag: '${dataset}-${fold}'}\n",
    )
    .unwrap();
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 9);
    assert_eq!(names[0], "data");
    assert!(names.contains(&"train.mr.non-static.fold1"));
    let s = &p.stages[p.get("train.sst2.rand.fold0").unwrap()];
    assert_eq!(s.params["v"], "rand");
    assert_eq!(s.params["f"], 0, "a lone reference keeps its type");
    assert_eq!(s.params["s"], 7);
    assert_eq!(s.params["tag"], "sst2-0");
    assert_eq!(s.deps, vec![0]);
}

#[test]
fn overrides_set_stage_and_global_params() {
    let text = "params: {seed: 1, opt: {lr: 0.1}}\nstages:\n  train: {uses: any, with: {epochs: 25, seed: '${seed}', lr: '${opt.lr}'}}\n";
    let p = parse(text, &["train.epochs=10", "seed=3", "opt.lr=0.5"]).unwrap();
    assert_eq!(p.stages[0].params["epochs"], 10);
    assert_eq!(p.stages[0].params["seed"], 3);
    assert_eq!(p.stages[0].params["lr"], 0.5);
    let e = parse(text, &["nope.x=1"]).unwrap_err().to_string();
    assert!(e.contains("--set nope.x=1") && e.contains("no stage or param"), "{e}");
    let e = parse(text, &["train"]).unwrap_err().to_string();
    assert!(e.contains("KEY=VALUE"), "{e}");
    let e = parse(text, &["train=1"]).unwrap_err().to_string();
    assert!(e.contains("name a param of the stage"), "{e}");
    let dotted = "stages:\n  embed.mr: {uses: any, with: {seed: 1}}\n  embed: {uses: any, with: {seed: 1}}\n";
    let p = parse(dotted, &["embed.mr.seed=5"]).unwrap();
    assert_eq!(p.stages[p.get("embed.mr").unwrap()].params["seed"], 5);
    assert_eq!(p.stages[p.get("embed").unwrap()].params["seed"], 1);
}

#[test]
fn overrides_reach_group_prefixes_and_expanded_stages() {
    let text = "params: {e: 25}\nstages:\n  train.mr:\n    uses: any\n    matrix: {v: [rand, static], fold: range(2)}\n    with: {epochs: '${e}', v: '${v}'}\n  train.trec: {uses: any, with: {epochs: '${e}'}}\n  evaluate: {uses: any, with: {epochs: 1}}\n";
    let epochs = |p: &Plan| -> Vec<(String, Value)> { p.stages.iter().map(|s| (s.name.clone(), s.params["epochs"].clone())).collect() };
    // A group prefix above the declared groups: every train stage, nothing else.
    let p = parse(text, &["train.epochs=10"]).unwrap();
    for (name, e) in epochs(&p) {
        assert_eq!(e, if name == "evaluate" { 1 } else { 10 }, "{name}");
    }
    // One stage a matrix expanded, then a later, narrower override wins for it alone.
    let p = parse(text, &["train.mr.rand.fold0.epochs=3", "train.mr.epochs=4", "train.mr.rand.fold1.epochs=5"]).unwrap();
    let got: Vec<Value> = epochs(&p).into_iter().map(|(_, e)| e).collect();
    assert_eq!(got, [4, 5, 4, 4, 25, 1].map(Value::from));
    // A glob; an override value may use the stage's matrix variables.
    let e = parse(text, &["train.mr.rand.fold0=3"]).unwrap_err().to_string();
    assert!(e.contains("`train.mr.rand.fold0` is a stage: name a param of it"), "{e}");
    let p = parse(text, &["train.*.fold1.epochs=7", "train.mr.tag=${v}-x"]).unwrap();
    let s = &p.stages[p.get("train.mr.static.fold1").unwrap()];
    assert_eq!((s.params["epochs"].clone(), s.params["tag"].clone()), (Value::from(7), Value::from("static-x")));
    assert_eq!(p.stages[p.get("train.mr.static.fold0").unwrap()].params["epochs"], 25);
    // A global param still reaches the matrix and every reference.
    let p = parse(text, &["e=2"]).unwrap();
    assert!(epochs(&p).iter().all(|(n, e)| n == "evaluate" || *e == 2));
    // An expanded name that does not exist; a typo in one.
    let e = parse(text, &["train.mr.rand.fold7.epochs=3"]).unwrap_err().to_string();
    assert_eq!(e, "--set train.mr.rand.fold7.epochs=3: no stage `train.mr.rand.fold7` in the pipeline (see `kimcnn dag`)");
    let e = parse(text, &["train.mr.rnd.fold0.epochs=3"]).unwrap_err().to_string();
    assert!(e.contains("no stage `train.mr.rnd.fold0`"), "{e}");
    // A group switched off (an empty matrix) takes an override and does nothing.
    let off = text.replace("v: [rand, static]", "v: []");
    let p = parse(&off, &["train.mr.epochs=3"]).unwrap();
    assert_eq!(p.stages.len(), 2);
}

#[test]
fn overrides_reach_keys_of_mapping_params_and_prefer_groups_to_globals() {
    let text = "params: {train: {lr: 1}}\nstages:\n  run: {uses: any, with: {env: {A: 1, B: 2}}}\n  train.mr: {uses: any, with: {lr: '${train.lr}'}}\n";
    let p = parse(text, &["run.env.A=7"]).unwrap();
    assert_eq!(p.stages[p.get("run").unwrap()].params["env"], serde_json::json!({"A": 7, "B": 2}));
    // `train` is a global param and a prefix of a group: the param wins; the group itself is the stage.
    let p = parse(text, &["train.lr=5"]).unwrap();
    assert_eq!(p.stages[p.get("train.mr").unwrap()].params["lr"], 5);
    let p = parse(text, &["train.mr.lr=6"]).unwrap();
    assert_eq!(p.stages[p.get("train.mr").unwrap()].params["lr"], 6);
}

#[test]
fn syntax_errors_name_line_and_column() {
    let e = err("stages:\n  a: {uses: any\n  b: x\n");
    assert!(e.starts_with("pipeline.yaml:"), "{e}");
    let parts: Vec<&str> = e.splitn(4, ':').collect();
    assert!(parts[1].parse::<usize>().is_ok() && parts[2].parse::<usize>().is_ok(), "{e}");
}

#[test]
fn unknown_keys_and_wrong_types_are_errors() {
    let e = err("stages:\n  a:\n    uses: any\n    withh: {}\n");
    assert!(e.starts_with("pipeline.yaml:4:") && e.contains("unknown field `withh`"), "{e}");
    let e = err("stages:\n  a:\n    uses: any\n    threads: two\n");
    assert!(e.starts_with("pipeline.yaml:4:") && e.contains("invalid type"), "{e}");
    let e = err("stagess: {}\n");
    assert!(e.contains("unknown field `stagess`"), "{e}");
}

#[test]
fn cycles_are_named() {
    let e = err("stages:\n  a: {uses: any, inputs: {x: b.out}}\n  b: {uses: any, inputs: {x: c.out}}\n  c: {uses: any, inputs: {x: a.out}}\n  d: {uses: any}\n");
    assert!(e.contains("dependency cycle"), "{e}");
    for s in ["a", "b", "c"] {
        assert!(e.contains(s), "{e}");
    }
    assert!(!e.contains(" d "), "{e}");
    let e = err("stages:\n  a: {uses: any, inputs: {x: a.out}}\n");
    assert!(e.contains("dependency cycle: a -> a"), "{e}");
}

#[test]
fn missing_references_are_named() {
    let e = err("stages:\n  a: {uses: any, inputs: {x: nope.out}}\n");
    assert!(e.contains("stage `a`") && e.contains("stage `nope`"), "{e}");
    let e = err("stages:\n  b: {uses: any}\n  a: {uses: any, inputs: {x: b.model}}\n");
    assert!(e.contains("output `model` of stage `b`") && e.contains("only: out"), "{e}");
    let e = err("stages:\n  a: {uses: any, inputs: {x: justaname}}\n");
    assert!(e.contains("<stage>.<output>"), "{e}");
    let e = err("stages:\n  a: {uses: nokind}\n");
    assert!(e.contains("unknown stage kind `nokind`") && e.contains("any"), "{e}");
}

#[test]
fn matrix_values_from_params_empty_lists_and_glob_inputs() {
    let text = "params: {variants: [a, b], n: 2, off: []}\nstages:\n  t: {uses: any, matrix: {v: '${variants}', fold: 'range(${n})'}}\n  u: {uses: any, matrix: {v: '${off}'}}\n  agg: {uses: any, inputs: {m: 't.*.out'}}\n";
    let p = plan(text).unwrap();
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["t.a.fold0", "t.a.fold1", "t.b.fold0", "t.b.fold1", "agg"]);
    let agg = &p.stages[4];
    assert_eq!(agg.inputs.keys().collect::<Vec<_>>(), ["m.t.a.fold0", "m.t.a.fold1", "m.t.b.fold0", "m.t.b.fold1"]);
    assert_eq!(agg.deps, [0, 1, 2, 3]);
    let e = err("stages:\n  agg: {uses: any, inputs: {m: 'zz.*.out'}}\n");
    assert!(e.contains("matches no stage"), "{e}");
    // A glob ending in `?` may match nothing; what it matches it takes.
    let p = plan("stages:\n  t: {uses: any}\n  agg: {uses: any, inputs: {m: 'zz.*.out?', n: 't*.out?'}}\n").unwrap();
    assert_eq!(p.stages[1].inputs.keys().collect::<Vec<_>>(), ["n.t"]);
    let e = err("stages:\n  t: {uses: any}\n  agg: {uses: any, inputs: {m: 't.out?'}}\n");
    assert!(e.contains("input `m` = `t.out?`: a `?` marks a glob that may match no stage, and this is no glob"), "{e}");
    let e = err("params: {v: 3}\nstages:\n  t: {uses: any, matrix: {x: '${v}'}}\n");
    assert!(e.contains("matrix `x`"), "{e}");
}

#[test]
fn duplicate_names_after_expansion() {
    let e = err("stages:\n  t: {uses: any, matrix: {v: [a, a]}}\n");
    assert!(e.contains("`t.a` occurs twice"), "{e}");
}

#[test]
fn path_characters_in_names_are_refused() {
    for bad in ["'../x'", "'a/b'", "'.hidden'"] {
        let e = err(&format!("stages:\n  {bad}: {{uses: any}}\n"));
        assert!(e.contains("no path characters"), "{bad}: {e}");
    }
    let e = err("stages:\n  t: {uses: any, matrix: {v: ['../../etc']}}\n");
    assert!(e.contains("no path characters"), "{e}");
    let e = err("stages:\n  t: {uses: any, outputs: ['../x']}\n");
    assert!(e.contains("output name"), "{e}");
}

#[test]
fn undefined_references_are_named() {
    let e = err("params: {seed: 1}\nstages:\n  t: {uses: any, with: {x: '${sede}'}}\n");
    assert!(e.contains("stage `t`") && e.contains("`${sede}` is not defined") && e.contains("seed"), "{e}");
    let e = err("stages:\n  t: {uses: any, inputs: {x: '${up}.out'}}\n");
    assert!(e.contains("`${up}` is not defined"), "{e}");
}

#[test]
fn select_takes_names_groups_globs_and_their_ancestors() {
    let p = plan(
        "stages:\n  a: {uses: any}\n  b: {uses: any, inputs: {x: a.out}, matrix: {v: [p, q]}}\n  c: {uses: any, inputs: {x: b.p.out}}\n",
    )
    .unwrap();
    let names = |mask: &[bool]| -> Vec<String> { p.stages.iter().zip(mask).filter(|(_, &m)| m).map(|(s, _)| s.name.clone()).collect() };
    let (sel, _) = p.select(&["b.q".into()], false).unwrap();
    assert_eq!(names(&sel), ["a", "b.q"]);
    let (sel, _) = p.select(&["b".into()], false).unwrap();
    assert_eq!(names(&sel), ["a", "b.p", "b.q"]);
    let (sel, named) = p.select(&["a".into()], true).unwrap();
    assert_eq!(names(&sel), ["a", "b.p", "b.q", "c"]);
    assert_eq!(names(&named), ["a"]);
    let (sel, _) = p.select(&["b.*".into()], false).unwrap();
    assert_eq!(names(&sel), ["a", "b.p", "b.q"]);
    assert!(matches!(p.select(&["zzz".into()], false), Err(PipelineError::UnknownTarget(_))));
    // A prefix must end at a dot: `b.` selects nothing of `bb`.
    assert!(selects("b", "b.p") && !selects("b", "bb") && selects("b.*", "b.p") && !selects("b.p.x", "b.p"));
}
