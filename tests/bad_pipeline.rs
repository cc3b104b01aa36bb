//! Every malformed pipeline.yaml: one clear line naming the file (and line
//! and column, or the stage), exit code 2, and the store untouched.
mod common;

use common::{Project, CHAIN};

/// Runs `kimcnn run` (and `status`) on a bad pipeline in a project whose
/// store is populated; returns the error line.
fn refused(bad: &str) -> String {
    let p = Project::new(CHAIN);
    p.run(&["run"]).ok();
    let before = p.snapshot();
    p.write("pipeline.yaml", bad);
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2, "stdout: {} stderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let st = p.run(&["status"]);
    assert_eq!((st.code, st.stderr.clone()), (2, r.stderr.clone()), "status refuses it the same way");
    assert_eq!(p.snapshot(), before, "the store and lock are untouched");
    r.stderr.trim().to_string()
}

#[test]
fn syntax_error_names_line_and_column() {
    let e = refused("stages:\n  one: {uses: exec\n  two: [\n");
    assert!(e.starts_with("error: pipeline.yaml:3:"), "{e}");
}

#[test]
fn unknown_key() {
    let e = refused("stages:\n  one:\n    uses: exec\n    output: [out]\n    with: {cmd: 'true'}\n");
    assert!(e.starts_with("error: pipeline.yaml:4:5: stages.one: unknown field `output`, expected one of"), "{e}");
}

#[test]
fn wrong_type() {
    let e = refused("stages:\n  one:\n    uses: exec\n    outputs: out\n    with: {cmd: 'true'}\n");
    assert!(e.starts_with("error: pipeline.yaml:4:") && e.contains("invalid type: string \"out\", expected a sequence"), "{e}");
    let e = refused("stages:\n  one:\n    uses: exec\n    threads: -1\n    outputs: [o]\n    with: {cmd: 'true'}\n");
    assert_eq!(e, "error: pipeline.yaml:4:14: stages.one.threads: invalid type: integer `-1`, expected usize");
}

#[test]
fn cycle() {
    let e = refused(
        "stages:\n  a: {uses: exec, inputs: {i: c.out}, outputs: [out], with: {cmd: x}}\n  b: {uses: exec, inputs: {i: a.out}, outputs: [out], with: {cmd: x}}\n  c: {uses: exec, inputs: {i: b.out}, outputs: [out], with: {cmd: x}}\n",
    );
    assert!(e.starts_with("error: pipeline.yaml: dependency cycle: "), "{e}");
    assert!(["a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"].iter().any(|c| e.ends_with(c)), "{e}");
}

#[test]
fn missing_stage_or_output_reference() {
    let e = refused("stages:\n  a: {uses: exec, inputs: {i: nope.out}, outputs: [out], with: {cmd: x}}\n");
    assert_eq!(e, "error: pipeline.yaml: stage `a`: input `i` refers to stage `nope`, which does not exist");
    let e = refused("stages:\n  a: {uses: exec, outputs: [out], with: {cmd: x}}\n  b: {uses: exec, inputs: {i: a.model}, outputs: [out], with: {cmd: x}}\n");
    assert_eq!(e, "error: pipeline.yaml: stage `b`: input `i` refers to output `model` of stage `a`, which has only: out");
}

#[test]
fn duplicate_names_after_matrix_expansion() {
    let e = refused("stages:\n  t:\n    uses: exec\n    matrix: {fold: [1, 1]}\n    outputs: [out]\n    with: {cmd: x}\n");
    assert_eq!(e, "error: pipeline.yaml: stage name `t.fold1` occurs twice after matrix expansion (from `t` and `t`)");
}

#[test]
fn stage_names_with_path_characters() {
    let e = refused("stages:\n  ../../etc:\n    uses: exec\n    outputs: [out]\n    with: {cmd: x}\n");
    assert!(e.contains("stage `../../etc`") && e.contains("no path characters"), "{e}");
    let e = refused("stages:\n  t:\n    uses: exec\n    matrix: {d: [a/b]}\n    outputs: [out]\n    with: {cmd: x}\n");
    assert!(e.contains("stage `t.a/b`") && e.contains("no path characters"), "{e}");
}

#[test]
fn undefined_param_reference() {
    let e = refused("params: {seed: 1}\nstages:\n  a: {uses: exec, outputs: [out], with: {cmd: 'echo ${sed}'}}\n");
    assert_eq!(e, "error: pipeline.yaml: stage `a`: `${sed}` is not defined (defined here: seed)");
}

#[test]
fn unknown_kind_and_kind_params() {
    let e = refused("stages:\n  a: {uses: trian, outputs: [out]}\n");
    assert_eq!(e, "error: pipeline.yaml: stage `a`: unknown stage kind `trian` (known: aggregate, embed, evaluate, exec, neighbours, report, segment, source, study, subword, tokenize, train, tsne, vocab, word2vec)");
    let e = refused("stages:\n  a: {uses: source, with: {url: 'ftp://x/y'}}\n");
    assert!(e.contains("stage `a`: param `url` must be an http(s) URL"), "{e}");
    let e = refused("stages:\n  a: {uses: exec, with: {cmd: x}}\n");
    assert!(e.contains("stage `a`: an `exec` stage needs `outputs:`"), "{e}");
}

#[test]
fn bad_set_override() {
    let p = Project::new(CHAIN);
    let r = p.run(&["run", "--set", "greting=hi"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.trim(), "error: --set greting=hi: no stage or param named `greting` in the pipeline");
    assert!(!p.path().join("pipeline.lock").exists());
}

#[test]
fn missing_pipeline_file() {
    let p = Project::new(CHAIN);
    let r = p.run(&["-f", "nope.yaml", "status"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("error: nope.yaml: no such pipeline file"), "{}", r.stderr);
}
