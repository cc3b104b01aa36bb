//! `kimcnn run`, `status` and `dag` on small pipelines: caching, single-stage
//! reruns, params, parallelism.
mod common;

use common::{Project, CHAIN};

#[test]
fn first_run_computes_second_run_restores_everything() {
    let p = Project::new(CHAIN);
    let r = p.run(&["run"]).ok();
    let mut ran = r.ran();
    ran.sort();
    assert_eq!(ran, ["one", "side", "three", "two"]);
    assert!(r.stdout.contains("4 ran, 0 cached"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/three/out")).unwrap(), "HELLO");
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/three/len")).unwrap().trim(), "5");
    let lock = p.read("pipeline.lock");
    for s in ["one:", "two:", "three:", "side:"] {
        assert!(lock.contains(s), "{lock}");
    }
    let r = p.run(&["run"]).ok();
    assert!(r.ran().is_empty(), "{}", r.stdout);
    assert!(r.stdout.contains("0 ran, 4 cached"), "{}", r.stdout);
    let r = p.run(&["status"]).ok();
    assert!(r.stdout.contains("4 stages: 4 up to date, 0 restorable from the store, 0 stale"), "{}", r.stdout);
    // --quiet: the closing count only; a failure still says what failed.
    let r = p.run(&["run", "--force", "-q"]).ok();
    assert_eq!(r.stdout.lines().collect::<Vec<_>>().len(), 1, "{}", r.stdout);
    assert!(r.stdout.starts_with("4 ran, 0 cached"), "{}", r.stdout);
    let r = p.run(&["run", "-q", "-v"]);
    assert_eq!(r.code, 2, "--quiet and --verbose conflict: {}", r.stderr);
}

#[test]
fn status_after_a_param_edit_names_exactly_what_it_invalidates_and_why() {
    let p = Project::new(CHAIN);
    p.run(&["run"]).ok();
    p.write("pipeline.yaml", &CHAIN.replace("greeting: hello", "greeting: howdy"));
    let r = p.run(&["status"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.stdout);
    assert!(
        lines[0].starts_with("stale") && lines[0].contains("one") && lines[0].contains("param cmd: \"printf \\\"%s\\\" \\\"hello\\\""),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("howdy"), "{}", lines[0]);
    assert!(lines[1].contains("two") && lines[1].contains("input in comes from stale stage one"), "{}", lines[1]);
    assert!(lines[2].contains("three") && lines[2].contains("input in comes from stale stage two"), "{}", lines[2]);
    assert!(!r.stdout.contains("side"), "side is untouched: {}", r.stdout);
    assert!(lines[3].contains("1 up to date, 0 restorable from the store, 3 stale"), "{}", lines[3]);
    let r = p.run(&["run"]).ok();
    assert_eq!(r.ran(), ["one", "two", "three"]);
}

#[test]
fn early_cutoff_keeps_downstream_cached_when_bytes_are_equal() {
    let p = Project::new(CHAIN);
    p.run(&["run"]).ok();
    // Same output bytes from a different command: only `one` reruns.
    p.write("pipeline.yaml", &CHAIN.replace(r#"'printf "%s" "${greeting}" > "$OUT_out"'"#, r#"'echo -n "${greeting}" > "$OUT_out"'"#));
    let r = p.run(&["run"]).ok();
    assert_eq!(r.ran(), ["one"], "{}", r.stdout);
}

#[test]
fn set_overrides_and_reverting_restores_without_computing() {
    let p = Project::new(CHAIN);
    p.run(&["run"]).ok();
    let r = p.run(&["run", "--set", "greeting=bye"]).ok();
    assert_eq!(r.ran(), ["one", "two", "three"]);
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/three/out")).unwrap(), "BYE");
    let r = p.run(&["status"]).ok();
    assert!(r.stdout.contains("restorable") && r.stdout.contains("param cmd"), "{}", r.stdout);
    let r = p.run(&["run"]).ok();
    assert!(r.ran().is_empty(), "back to hello: restored, {}", r.stdout);
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/three/out")).unwrap(), "HELLO");
}

#[test]
fn rerun_one_stage_force_downstream_and_dry_run() {
    let p = Project::new(CHAIN);
    let r = p.run(&["run", "two"]).ok();
    assert_eq!(r.ran(), ["one", "two"]);
    let r = p.run(&["run", "--dry-run"]).ok();
    assert!(r.stdout.contains("would run  three") && r.stdout.contains("would run  side"), "{}", r.stdout);
    assert!(!r.stdout.contains("would run  one"), "{}", r.stdout);
    assert!(!p.path().join("artifacts/out/three").exists());
    let r = p.run(&["run", "two", "--force"]).ok();
    assert_eq!(r.ran(), ["two"]);
    let r = p.run(&["run", "one", "--force", "--downstream"]).ok();
    assert_eq!(r.ran(), ["one", "three"], "two is forced only if named; three was never run: {}", r.stdout);
}

#[test]
fn matrix_stages_are_addressable_by_name_and_group() {
    let p = Project::new(
        r#"
params: { epochs: 2 }
stages:
  train:
    uses: exec
    matrix: { dataset: [mr, trec], variant: [rand, static], fold: range(2) }
    outputs: [model]
    with: { cmd: 'echo "${dataset} ${variant} ${fold} ${epochs}" > "$OUT_model"' }
  report:
    uses: exec
    inputs: { a: train.mr.static.fold1.model, b: train.trec.rand.fold0.model }
    outputs: [table]
    with: { cmd: 'cat "$IN_a" "$IN_b" > "$OUT_table"' }
"#,
    );
    let r = p.run(&["run", "train.mr.static.fold1"]).ok();
    assert_eq!(r.ran(), ["train.mr.static.fold1"]);
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/train.mr.static.fold1/model")).unwrap(), "mr static 1 2\n");
    let r = p.run(&["run", "train.trec.*"]).ok();
    assert_eq!(r.ran().len(), 4);
    let r = p.run(&["run", "report"]).ok();
    assert_eq!(r.ran(), ["report"]);
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/report/table")).unwrap(), "mr static 1 2\ntrec rand 0 2\n");
    let r = p.run(&["run", "--set", "epochs=3", "--dry-run"]).ok();
    assert!(r.stdout.contains("9 would run, 0 cached"), "{}", r.stdout);
    let r = p.run(&["run", "nope"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.trim(), "error: no stage or stage group named `nope` in the pipeline (see `kimcnn dag`)");
}

#[test]
fn dag_in_text_mermaid_and_dot() {
    let p = Project::new(CHAIN);
    let r = p.run(&["dag"]).ok();
    assert!(r.stdout.contains("two [exec] -> out  <- in=one.out"), "{}", r.stdout);
    let r = p.run(&["dag", "--format", "mermaid"]).ok();
    assert!(r.stdout.starts_with("graph TD") && r.stdout.contains("one --> two") && r.stdout.contains("two --> three"), "{}", r.stdout);
    let r = p.run(&["dag", "--format", "dot"]).ok();
    assert!(r.stdout.contains("\"one\" -> \"two\";"), "{}", r.stdout);
}

/// Reads the start/end stamps the stages wrote and returns intervals.
fn intervals(p: &Project) -> Vec<(String, f64, f64)> {
    p.read("times.log")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect()
}

fn max_overlap(iv: &[(String, f64, f64)]) -> usize {
    iv.iter().map(|(_, s, _)| iv.iter().filter(|(_, a, b)| a <= s && s < b).count()).max().unwrap_or(0)
}

#[test]
fn independent_stages_run_in_parallel_within_the_thread_budget() {
    // Each command differs (`: name`), or they would share one cache key.
    // With KIMCNN_TEST_BARRIER set, a one-thread stage waits (up to 30 s) until a
    // second one has started: two run at once by construction, not by timing.
    let stage = |name: &str, threads: usize| {
        let barrier = if threads == 1 {
            "if [ -n \"$KIMCNN_TEST_BARRIER\" ]; then touch started.$KIMCNN_STAGE; i=0; while [ $(ls started.* | wc -l) -lt 2 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; fi; "
        } else {
            ""
        };
        format!(
            "  {name}:\n    uses: exec\n    threads: {threads}\n    outputs: [out]\n    with: {{ cmd: ': {name}; s=$(date +%s.%N); {barrier}sleep 0.2; echo \"$KIMCNN_STAGE $s $(date +%s.%N)\" >> times.log; echo \"$KIMCNN_THREADS\" > \"$OUT_out\"' }}\n"
        )
    };
    let mut y = String::from("stages:\n");
    for i in 0..4 {
        y.push_str(&stage(&format!("s{i}"), 1));
    }
    y.push_str(&stage("wide", 2));
    let p = Project::new(&y);
    let mut c = p.cmd(&["run", "--jobs", "2"]);
    c.env("KIMCNN_TEST_BARRIER", "1");
    p.run_cmd(c).ok();
    let iv = intervals(&p);
    assert_eq!(iv.len(), 5);
    assert_eq!(max_overlap(&iv), 2, "two one-thread stages at a time: {iv:?}");
    let (_, ws, we) = iv.iter().find(|(n, _, _)| n == "wide").unwrap().clone();
    for (n, s, e) in &iv {
        if n != "wide" {
            assert!(*e <= ws || *s >= we, "the 2-thread stage runs alone: {iv:?}");
        }
    }
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/wide/out")).unwrap().trim(), "2");
    // --jobs 1: strictly one at a time.
    std::fs::remove_file(p.path().join("times.log")).unwrap();
    p.run(&["run", "--jobs", "1", "--force"]).ok();
    assert_eq!(max_overlap(&intervals(&p)), 1);
    assert_eq!(
        std::fs::read_to_string(p.path().join("artifacts/out/wide/out")).unwrap().trim(),
        "1",
        "a stage gets no more threads than the budget"
    );
}

#[test]
fn an_artifact_with_a_renamed_field_is_refused_naming_the_file_and_the_field() {
    // A metrics file as an older kimcnn might have written it: `acc`, not `accuracy`.
    let metrics = r#"{"dataset": "toy", "variant": "static", "fold": null, "seed": 1, "pad": "kim", "init": "x", "epochs": 1, "best_epoch": 1, "best_dev_accuracy": 0.5, "n": 2, "acc": 0.5, "macro_f1": 0.5, "per_class": [], "confusion": [], "classes": []}"#;
    let p = Project::new(&format!(
        "stages:\n  old: {{uses: exec, outputs: [metrics], with: {{cmd: 'echo ''{metrics}'' > \"$OUT_metrics\"'}}}}\n  results: {{uses: aggregate, inputs: {{metrics: 'old.metrics'}}}}\n"
    ));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let line = r.stderr.trim();
    assert!(
        line.starts_with("error: stage `results` failed: input `metrics`: ") && line.contains(": missing field `accuracy` at line 1"),
        "{line}"
    );
    assert!(line.contains("/artifacts/objects/"), "names the file: {line}");
    assert!(r.stdout.contains("bad input  results: "), "{}", r.stdout);
}
