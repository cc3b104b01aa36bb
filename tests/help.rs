//! Every example in `kimcnn --help` (and any subcommand's help) works on the
//! shipped pipeline.yaml. `run` examples are planned (`--dry-run`: running
//! them all would train the default pipeline's 12 models, `make all`'s
//! job); the others run for real, against a directory remote.
mod common;

use common::Project;

/// The `kimcnn ...` example commands of a help text.
fn examples(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in help.lines().map(str::trim_start).filter(|l| l.starts_with("kimcnn ")) {
        // The command ends where the explanation starts: two spaces or more.
        let cmd = line.split("  ").next().unwrap_or(line);
        out.extend(cmd.split(" / ").map(|c| c.trim().to_string()));
    }
    out
}

/// Shell-like words: single quotes group (`'train.*'`).
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut quoted, mut any) = (String::new(), false, false);
    for c in cmd.chars() {
        match c {
            '\'' => (quoted, any) = (!quoted, true),
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            _ => (cur.push(c), any = true).1,
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[test]
fn every_help_example_works_on_the_shipped_pipeline() {
    let p = Project::new(include_str!("../pipeline.yaml"));
    let remote = tempfile::tempdir().unwrap();
    std::fs::create_dir(p.path().join(".kimcnn")).unwrap();
    p.write(".kimcnn/config", &format!("remotes:\n  team: {{url: {}}}\ndefault_remote: team\n", remote.path().display()));

    let top = p.run(&["--help"]).ok().stdout;
    let mut all = examples(&top);
    assert!(all.len() >= 12, "{top}");
    for sub in ["run", "tune", "report", "status", "show", "dag", "push", "pull", "gc", "predict", "models", "verify"] {
        all.extend(examples(&p.run(&[sub, "--help"]).ok().stdout));
    }
    // What `show` and `push` need: one real stage in the lock.
    p.run(&["run", "tokenize.trec"]).ok();
    for cmd in &all {
        let mut args = words(cmd);
        assert_eq!(args.remove(0), "kimcnn");
        if args[0] == "run" || args[0] == "tune" || args[0] == "report" {
            args.push("--dry-run".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = p.run(&args);
        assert_eq!(r.code, 0, "`{cmd}` failed:\n{}{}", r.stdout, r.stderr);
        match args.as_slice() {
            ["run", "train.trec.static", ..] => {
                assert!(r.stdout.contains("would run  train.trec.static") && !r.stdout.contains("train.trec.rand"), "{}", r.stdout)
            }
            ["report", ..] => assert!(r.stdout.contains("would run  report"), "{}", r.stdout),
            ["show", ..] => assert!(r.stdout.contains("tokens: artifacts/out/tokenize.trec/tokens"), "{}", r.stdout),
            ["status", "train"] => {
                assert!(r.stdout.contains("train.trec.static") && !r.stdout.contains("evaluate."), "only train stages: {}", r.stdout)
            }
            _ => {}
        }
    }
    // What the `--set` examples do, seen on a stage that is cached: a param
    // set through a group prefix reaches it (its key changes), and its default
    // written out changes nothing.
    let r = p.run(&["run", "tokenize.trec", "--dry-run", "--set", "tokenize.seed=7"]).ok();
    assert!(r.stdout.contains("would run  tokenize.trec") && r.stdout.contains("1 would run"), "{}", r.stdout);
    let r = p.run(&["run", "tokenize.trec", "--dry-run", "--set", "tokenize.trec.lower=false"]).ok();
    assert!(r.stdout.contains("0 would run"), "{}", r.stdout);
    // A typo is still an error, with the same rule everywhere.
    let r = p.run(&["run", "trian", "--dry-run"]);
    assert_eq!((r.code, r.stderr.trim()), (2, "error: no stage or stage group named `trian` in the pipeline (see `kimcnn dag`)"));
    let r = p.run(&["run", "--dry-run", "--set", "train.epoch=10"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("error: pipeline.yaml: stage `train.mr.rand.fold0`: unknown param `epoch`"), "{}", r.stderr);
}
