//! Bad input files through the binary: a `splits` JSON file for `tokenize`,
//! a word-vectors file for `embed`, a malformed `pipeline.lock`, a bad
//! `.kimcnn/config`. Each is refused with a non-zero exit code and one clear
//! line on stderr naming the file (and the line or id) and the problem, and
//! leaves what a good run put in the store in place.
mod common;

use std::path::PathBuf;

use common::{Project, Ran, CHAIN};

/// The one line a refused command wrote to stderr, after checking its exit
/// code and that it wrote exactly one `error: ` line.
fn one_error_line(r: &Ran, code: i32) -> String {
    assert_eq!(r.code, code, "exit code\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line on stderr: {}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    r.stderr.trim_end().to_string()
}

/// The project directory as the binary names it (canonical).
fn dir(p: &Project) -> PathBuf {
    p.path().canonicalize().unwrap()
}

/// The entries of `before` that `after` lacks or holds changed, except the
/// lock (checked by the caller), the links of `changed` stages (their input
/// file was edited) and the runner's own state.
fn lost(before: &[(String, String)], after: &[(String, String)], changed: &[&str]) -> Vec<String> {
    before
        .iter()
        .filter(|x| !after.contains(x))
        .map(|(n, _)| n.clone())
        .filter(|n| n != "pipeline.lock" && !n.starts_with("artifacts/state/"))
        .filter(|n| !changed.iter().any(|s| n.starts_with(&format!("artifacts/out/{s}/"))))
        .collect()
}

/// One stage's entry in pipeline.lock's text: its `  name:` line and the
/// more-indented lines under it.
fn lock_entry(lock: &str, stage: &str) -> String {
    let head = format!("  {stage}:");
    let mut lines = lock.lines().skip_while(|l| *l != head);
    let first = lines.next().unwrap_or_else(|| panic!("no `{stage}` in the lock:\n{lock}"));
    let mut out = format!("{first}\n");
    for l in lines.take_while(|l| l.starts_with("   ")) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------- splits

/// Two positive and two negative sentences (rows 0-3), split by a JSON file.
const SPLITS_PIPE: &str = r#"
stages:
  pos: { uses: source, with: { path: pos.txt } }
  neg: { uses: source, with: { path: neg.txt } }
  splits: { uses: source, with: { path: splits.json } }
  t:
    uses: tokenize
    inputs: { pos: pos.data, neg: neg.data, splits: splits.data }
    with: { format: lines, order: [pos, neg] }
"#;

#[test]
fn a_bad_splits_file_is_refused_naming_the_input_and_the_id() {
    let p = Project::new(SPLITS_PIPE);
    p.write("pos.txt", "a good film\nfine acting\n");
    p.write("neg.txt", "a bad film\nawful acting\n");
    p.write("splits.json", r#"{"train": [0, 2], "dev": [1], "test": [3]}"#);
    assert_eq!(p.run(&["run"]).ok().ran().len(), 4);
    let summary = p.read("artifacts/out/t/summary");
    assert!(summary.contains("\"test\": 1"), "{summary}");
    let before = p.snapshot();
    let t_locked = lock_entry(&p.read("pipeline.lock"), "t");

    let cases = [
        (r#"{"train": [0, 1, 1], "dev": [2], "test": [3]}"#, "id 1 is listed twice in `train`"),
        (r#"{"train": [0, 1], "dev": [2], "test": [3, 1]}"#, "id 1 is listed in `train` and in `test`"),
        (r#"{"train": [0, 1], "dev": [2], "test": [4]}"#, "id 4 in `test` is past the last row (3)"),
        (r#"{"train": [0, "1"], "dev": [2], "test": [3]}"#, r#"`train` holds "1", which is not a row id (an integer from 0)"#),
        (r#"{"train": [0, 1.5], "dev": [2], "test": [3]}"#, "`train` holds 1.5, which is not a row id (an integer from 0)"),
        (r#"{"train": [0, -1], "dev": [2], "test": [3]}"#, "`train` holds -1, which is not a row id (an integer from 0)"),
        ("train: [0, 1]\ndev: [2]\ntest: [3]\n", "not JSON: expected ident at line 1 column 3"),
        ("{\"train\": [0, 1],\n \"dev\": [2]\n \"test\": [3]}\n", "not JSON: expected `,` or `}` at line 3 column 2"),
    ];
    for (json, want) in cases {
        p.write("splits.json", json);
        let r = p.run(&["run"]);
        assert_eq!(one_error_line(&r, 1), format!("error: stage `t` failed: input `splits`: {want}"), "{json}");
        assert!(r.stdout.lines().any(|l| l.starts_with("bad input") && l.contains(" t: input `splits`: ")), "{}", r.stdout);
        let after = p.snapshot();
        assert_eq!(lost(&before, &after, &["splits"]), Vec::<String>::new(), "nothing lost ({json})");
        assert_eq!(lock_entry(&p.read("pipeline.lock"), "t"), t_locked, "the lock still names the good tokens");
        assert_eq!(p.read("artifacts/out/t/summary"), summary);
    }

    // An empty file never reaches tokenize: `source` refuses it, naming it.
    p.write("splits.json", "");
    let r = p.run(&["run"]);
    let want = format!("error: stage `splits` failed: {}: the file is empty", dir(&p).join("splits.json").display());
    assert_eq!(one_error_line(&r, 1), want);
    assert_eq!(lost(&before, &p.snapshot(), &["splits"]), Vec::<String>::new());

    // Back to the good file: everything is cached, links and lock as before.
    p.write("splits.json", r#"{"train": [0, 2], "dev": [1], "test": [3]}"#);
    let r = p.run(&["run"]).ok();
    assert!(r.ran().is_empty(), "{}", r.stdout);
    assert_eq!(lost(&before, &p.snapshot(), &[]), Vec::<String>::new());
    assert_eq!(p.read("pipeline.lock"), before.iter().find(|(n, _)| n == "pipeline.lock").unwrap().1);
}

// --------------------------------------------------------------- vectors

/// Tokenize, vocab and embed over four sentences; `vectors` is given.
fn vectors_pipe(vectors_stage: &str) -> String {
    format!(
        r#"
stages:
  pos: {{ uses: source, with: {{ path: pos.txt }} }}
  neg: {{ uses: source, with: {{ path: neg.txt }} }}
  vectors: {vectors_stage}
  t:
    uses: tokenize
    inputs: {{ pos: pos.data, neg: neg.data }}
    with: {{ format: lines, order: [pos, neg], folds: 2, seed: 1 }}
  v: {{ uses: vocab, inputs: {{ tokens: t.tokens }} }}
  e: {{ uses: embed, inputs: {{ vocab: v.vocab, vectors: vectors.data }}, with: {{ seed: 1 }} }}
"#
    )
}

fn vectors_project(vectors_stage: &str) -> Project {
    let p = Project::new(&vectors_pipe(vectors_stage));
    p.write("pos.txt", "a good film\nfine acting\n");
    p.write("neg.txt", "a bad film\nawful acting\n");
    p
}

#[test]
fn a_bad_vectors_file_is_refused_naming_the_input_and_the_line() {
    let p = vectors_project("{ uses: source, with: { path: vectors.txt } }");
    p.write("vectors.txt", "2 3\ngood 0.1 0.2 0.3\nfilm -0.5 0.5 0.0\n");
    assert_eq!(p.run(&["run"]).ok().ran().len(), 6);
    let coverage = p.read("artifacts/out/e/coverage");
    assert!(coverage.contains("\"dim\": 3"), "{coverage}");
    let before = p.snapshot();
    let e_locked = lock_entry(&p.read("pipeline.lock"), "e");

    let cases = [
        // Dimension 0, with and without words after the header.
        ("3 0\n", "the header declares dimension 0"),
        ("3 0\ngood\nfilm\nbad\n", "the header declares dimension 0"),
        // A word with no vector: word2vec text and GloVe.
        ("2 3\ngood 0.1 0.2 0.3\nfilm\n", "line 3: a word with no vector"),
        ("good 0.1 0.2 0.3\nfilm  \n", "line 2: a word with no vector"),
        ("good\n", "line 1: a word with no vector"),
        // No vectors at all: a header only, a header of zero words, blank lines.
        ("2 3\n", "the header says 2 words, but the file has 0"),
        ("0 3\n", "no vectors in the file"),
        ("\n\n", "no vectors in the file"),
    ];
    for (text, want) in cases {
        p.write("vectors.txt", text);
        let r = p.run(&["run"]);
        assert_eq!(one_error_line(&r, 1), format!("error: stage `e` failed: input `vectors`: {want}"), "{text:?}");
        assert!(r.stdout.lines().any(|l| l.starts_with("bad input") && l.contains(" e: input `vectors`: ")), "{}", r.stdout);
        assert_eq!(r.ran(), ["vectors"], "{text:?}: {}", r.stdout);
        assert_eq!(lost(&before, &p.snapshot(), &["vectors"]), Vec::<String>::new(), "nothing lost ({text:?})");
        assert_eq!(lock_entry(&p.read("pipeline.lock"), "e"), e_locked);
        assert_eq!(p.read("artifacts/out/e/coverage"), coverage);
    }

    // An empty file: `source` refuses it before embed sees it.
    p.write("vectors.txt", "");
    let r = p.run(&["run"]);
    let want = format!("error: stage `vectors` failed: {}: the file is empty", dir(&p).join("vectors.txt").display());
    assert_eq!(one_error_line(&r, 1), want);
    assert_eq!(lost(&before, &p.snapshot(), &["vectors"]), Vec::<String>::new());
}

#[test]
fn an_empty_vectors_file_from_a_command_is_refused_by_embed() {
    let p = vectors_project(r#"{ uses: exec, outputs: [data], with: { cmd: ': > "$OUT_data"' } }"#);
    let r = p.run(&["run"]);
    assert_eq!(one_error_line(&r, 1), "error: stage `e` failed: input `vectors`: the file is empty");
    assert!(!p.path().join("artifacts/out/e").exists());
    // What ran before embed is kept: a second run runs only embed (and fails the same way).
    let r = p.run(&["run"]);
    assert_eq!(one_error_line(&r, 1), "error: stage `e` failed: input `vectors`: the file is empty");
    assert!(r.ran().is_empty(), "{}", r.stdout);
}

// ---------------------------------------------------------- pipeline.lock

#[test]
fn a_malformed_pipeline_lock_is_refused_naming_it_and_left_as_it_is() {
    let p = Project::new(CHAIN);
    p.run(&["run"]).ok();
    let good = p.read("pipeline.lock");
    let before = p.snapshot();
    let lock = dir(&p).join("pipeline.lock");

    let cases = [
        // Invalid YAML.
        (
            "schema: 1\nstages:\n\t one: {}\n",
            "not valid YAML: found character that cannot start any token at line 3 column 1, while scanning for the next token",
        ),
        ("schema: 1\nstages: one: two\n", "not valid YAML: mapping values are not allowed in this context at line 2 column 12"),
        (
            "schema: 1\n<<<<<<< HEAD\nstages: {}\n=======\nstages: {}\n>>>>>>> theirs\n",
            "line 2: a merge conflict marker (`<<<<<<<`): resolve the conflict, or take one side and rerun `kimcnn run`",
        ),
        // Valid YAML, wrong structure.
        ("", "the file is empty (delete it: `kimcnn run` writes a new one)"),
        ("- one\n- two\n", "expected a mapping with `schema` and `stages`, found a list"),
        ("schema: 1\nstages: [one, two]\n", "stages: invalid type: sequence, expected a map at line 2 column 9"),
        (
            "schema: 1\nstages: {one: x}\n",
            "stages.one: invalid type: string \"x\", expected a stage's entry (a mapping) at line 2 column 15",
        ),
        ("schema: 1\nstages:\n  one:\n    kind: exec\n", "stages.one: missing field `kind_version` at line 4 column 5"),
        ("schema: 1\nstage: {}\n", "unknown field `stage`, expected `schema` or `stages` at line 2 column 1"),
        ("schema: 1\n", "missing field `stages`"),
        ("schema: 9\nstages: {}\n", "schema 9 is not one this kimcnn reads (1): written by another version of kimcnn?"),
    ];
    for (text, want) in cases {
        p.write("pipeline.lock", text);
        for cmd in [&["status"][..], &["run"], &["run", "two"], &["gc", "--dry-run"]] {
            let r = p.run(cmd);
            let got = one_error_line(&r, 2);
            assert_eq!(got, format!("error: {}: unreadable lock file: {want}", lock.display()), "{cmd:?} on {text:?}");
            assert!(r.ran().is_empty(), "{cmd:?}: {}", r.stdout);
            assert_eq!(p.read("pipeline.lock"), text, "{cmd:?} leaves the lock as it was");
            assert_eq!(lost(&before, &p.snapshot(), &[]), Vec::<String>::new(), "{cmd:?} on {text:?}");
        }
    }

    // With stale stages too, a bad lock fails the run before anything is computed.
    p.write("pipeline.yaml", &CHAIN.replace("greeting: hello", "greeting: howdy"));
    p.write("pipeline.lock", "schema: 1\nstages: [one]\n");
    let r = p.run(&["run"]);
    one_error_line(&r, 2);
    assert!(r.ran().is_empty(), "nothing ran: {}", r.stdout);
    assert_eq!(lost(&before, &p.snapshot(), &[]), Vec::<String>::new());
    p.write("pipeline.yaml", CHAIN);

    // The good lock back: every stage is up to date, nothing was lost.
    p.write("pipeline.lock", &good);
    let r = p.run(&["status"]).ok();
    assert!(r.stdout.contains("4 stages: 4 up to date"), "{}", r.stdout);
    assert_eq!(p.snapshot(), before);
}

// --------------------------------------------------------- .kimcnn/config

#[test]
fn a_bad_remote_config_is_refused_naming_it() {
    let p = Project::new(CHAIN);
    p.run(&["run"]).ok();
    let before = p.snapshot();
    let remote = tempfile::tempdir().unwrap();
    std::fs::create_dir(p.path().join(".kimcnn")).unwrap();
    let config = dir(&p).join(".kimcnn/config");
    let url = remote.path().display().to_string();

    let cases = [
        // Invalid YAML.
        (
            format!("remotes:\n  nfs: {{url: '{url}'\n"),
            "did not find expected ',' or '}' at line 3 column 1, while parsing a flow mapping at line 2 column 8".to_string(),
        ),
        ("default_remote: a: b\n".to_string(), "mapping values are not allowed in this context at line 1 column 18".to_string()),
        (
            format!("remotes:\n\tnfs: {{url: '{url}'}}\n"),
            "found character that cannot start any token at line 2 column 1, while scanning for the next token".to_string(),
        ),
        // Unknown keys: at the top, and in a remote.
        (format!("remote:\n  nfs: {{url: '{url}'}}\n"), "unknown key `remote` (expected `remotes`, `default_remote`, `ray`)".to_string()),
        (
            format!("remotes:\n  nfs: {{url: '{url}', bucket: x}}\n"),
            "remote `nfs`: unknown field `bucket`, expected one of `url`, `endpoint`, `region`, `jobs`".to_string(),
        ),
    ];
    for (text, want) in &cases {
        p.write(".kimcnn/config", text);
        for cmd in ["push", "pull"] {
            let r = p.run(&[cmd]);
            assert_eq!(one_error_line(&r, 2), format!("error: {}: {want}", config.display()), "{cmd} with {text:?}");
            assert!(r.stdout.is_empty(), "{}", r.stdout);
            assert_eq!(p.snapshot(), before, "{cmd} with {text:?}");
        }
    }
    assert_eq!(std::fs::read_dir(remote.path()).unwrap().count(), 0, "nothing was pushed");

    // The same remote, well declared, works.
    p.write(".kimcnn/config", &format!("remotes:\n  nfs: {{url: '{url}'}}\n"));
    p.run(&["push"]).ok();
    assert!(std::fs::read_dir(remote.path()).unwrap().count() > 0);
    assert_eq!(p.snapshot(), before);
}
