//! Hyper-parameter studies through the binary (`kimcnn tune`), on the toy
//! data set: trials are cached train runs, epoch budgets are prefixes of
//! one run, early stopping, failed trials, kill -9 and resume, bad input.
mod common;

use std::collections::BTreeSet;

use common::{Project, TOY_STAGES};
use kimcnn_schema::{read_history, read_json, read_trials, StudyBest, TrainSummary, TrialRow, TrialStatus};

const INPUTS: &str = "{tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}";
const BASE: &str = "dataset: toy, batch: 10, maps: 10, seed: 1, pad: bucket, optimizer: adam, lr: 0.01";

/// The toy data, and the stages after TOY_STAGES (`study` and any train stages).
fn project(stages: &str) -> Project {
    let p = Project::new(&format!("stages:\n{TOY_STAGES}{stages}"));
    common::write_toy_data(&p);
    p
}

fn study(with: &str) -> String {
    study_on("", with)
}

/// A `study` stage over BASE (plus `base`, params of its own) with `with`.
fn study_on(base: &str, with: &str) -> String {
    format!("  study:\n    uses: study\n    inputs: {INPUTS}\n    with: {{base: {{{BASE}{base}}}, {with}}}\n")
}

fn trials(p: &Project) -> Vec<TrialRow> {
    read_trials(&p.path().join("artifacts/out/study/trials")).unwrap()
}

/// Run records of train runs (plain stages and trials) in the store.
fn train_runs(p: &Project) -> usize {
    std::fs::read_dir(p.path().join("artifacts/runs"))
        .unwrap()
        .filter(|e| std::fs::read_to_string(e.as_ref().unwrap().path()).unwrap().contains("\"kind\": \"train\""))
        .count()
}

/// Every path under `dir` (none if it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.extend(walk(&e.path()));
        out.push(e.path());
    }
    out
}

fn journal(p: &Project) -> std::path::PathBuf {
    let dir = p.path().join("artifacts/journals/study");
    let key = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    key.join("journal.jsonl")
}

#[test]
fn trials_are_cached_train_runs_and_every_budget_is_a_prefix_of_one_run() {
    let p = project(&format!(
        "  train.full: {{uses: train, inputs: {INPUTS}, with: {{{BASE}, variant: static, epochs: 4}}}}\n  \
         train.short: {{uses: train, inputs: {INPUTS}, with: {{{BASE}, variant: static, epochs: 2}}}}\n{}",
        study("space: {variant: {choice: [rand, static]}, epochs: {choice: [4, 2]}}")
    ));
    p.run(&["run", "train"]).ok();
    assert_eq!(train_runs(&p), 2);

    let r = p.run(&["tune", "study"]).ok();
    // Two points, each trained once for 4 epochs; `static` is train.full's key: a cache hit.
    assert_eq!(train_runs(&p), 3, "one new train run (rand); static was train.full's\n{}", r.stdout);
    assert!(r.stdout.contains("study: 2 trials (2 completed, 0 stopped, 0 failed)"), "{}", r.stdout);
    assert!(r.stdout.contains("best at each epoch budget"), "{}", r.stdout);
    let rows = trials(&p);
    assert_eq!(rows.len(), 2 * (2 + 4), "a row per trial per epoch of each budget");
    assert!(rows.iter().all(|r| r.status == TrialStatus::Completed && r.error.is_none()));
    // Each trial's worker's peak memory, the cached one's from when train.full computed it.
    assert!(
        rows.iter().all(|r| r.peak_rss_mb > 10.0 && r.peak_rss_mb < 4096.0),
        "{:?}",
        rows.iter().map(|r| r.peak_rss_mb).collect::<Vec<_>>()
    );
    assert!(r.stdout.contains("peak memory of a trial's worker: median "), "{}", r.stdout);
    let budgets: BTreeSet<i64> = rows.iter().map(|r| r.config["epochs"].as_i64().unwrap()).collect();
    assert_eq!(budgets, BTreeSet::from([2, 4]));

    // The 2-epoch budget of the static trial is train.short, to the bit, and selects as it did.
    let short = read_history(&p.path().join("artifacts/out/train.short/history")).unwrap();
    let budget2: Vec<&TrialRow> = rows.iter().filter(|r| r.config["variant"] == "static" && r.config["epochs"] == 2).collect();
    assert_eq!(budget2.len(), 2);
    for (h, t) in short.iter().zip(&budget2) {
        assert_eq!(
            (h.epoch as u32, h.train_loss, h.dev_accuracy, h.test_accuracy),
            (t.training_iteration, t.loss, t.accuracy, t.test_accuracy)
        );
    }
    let long = read_history(&p.path().join("artifacts/out/train.full/history")).unwrap();
    assert_eq!(&long[..2], &short[..], "the first 2 epochs of a 4-epoch run are the 2-epoch run");
    let summary: TrainSummary = read_json(&p.path().join("artifacts/out/train.short/summary")).unwrap();
    let selected = budget2.iter().filter(|r| r.accuracy == summary.best_dev_accuracy).map(|r| r.training_iteration).max();
    assert_eq!(selected, Some(summary.best_epoch as u32));

    // best.json: the best dev figure of the completed budgets, and the train params that give it.
    let best: StudyBest = read_json(&p.path().join("artifacts/out/study/best")).unwrap();
    let top = rows.iter().map(|r| r.accuracy).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(best.value, top);
    assert_eq!(best.params["epochs"], best.config["epochs"]);
    assert_eq!(best.params["variant"], best.config["variant"]);
    assert_eq!((best.completed, best.stopped, best.failed), (2, 0, 0));

    // Again: the study itself is cached; `show` summarises it.
    let r = p.run(&["tune", "study"]).ok();
    assert!(r.stdout.contains("0 ran, 7 cached"), "{}", r.stdout);
    let r = p.run(&["show", "study"]).ok();
    assert!(r.stdout.contains("best: trial ") && r.stdout.contains("parquet, 12 rows"), "{}", r.stdout);
    assert!(!p.path().join("artifacts/journals/study").read_dir().unwrap().any(|_| true), "a finished study's journal is removed");
}

#[test]
fn asha_stops_a_hopeless_trial_and_a_diverged_one_does_not_stop_the_study() {
    // Adam at 0.01 learns the toy set in 3 epochs; at 1e-9 it never does (ASHA cuts it at a rung);
    // SGD at 1e30 without max-norm diverges in epoch 1.
    let p = project(&study_on(
        ", epochs: 6, max_norm: 0",
        "space: {lr: {choice: [0.01, 1.0e-9, 1.0e+30]}, optimizer: {choice: [adam, sgd]}}, stopper: {asha: {grace: 1, reduction: 2}}",
    ));
    // Killed once every trial has ended: completed trials are stored, and stopped or failed ones
    // left no checkpoint behind (they are never resumed).
    let mut c = p.cmd(&["tune", "study", "-j", "1"]);
    c.env("KIMCNN_KILL_AT", "study:trials-ended");
    assert_eq!(p.run_cmd(c).code, -1);
    let trials_dir = journal(&p).with_file_name("trials");
    let left: Vec<_> = walk(&trials_dir).into_iter().filter(|f| f.is_file()).collect();
    assert!(left.is_empty(), "{left:?}");
    let r = p.run(&["tune", "study", "-j", "1"]).ok();
    let rows = trials(&p);
    let of = |lr: f64, opt: &str| -> Vec<&TrialRow> {
        rows.iter().filter(|r| r.config["lr"].as_f64() == Some(lr) && r.config["optimizer"] == opt).collect()
    };
    let good = of(0.01, "adam");
    assert_eq!(good.len(), 6);
    assert!(good.iter().all(|r| r.status == TrialStatus::Completed));
    let hopeless = of(1.0e-9, "adam");
    assert!(hopeless.iter().all(|r| r.status == TrialStatus::Stopped), "{}", r.stdout);
    assert!(hopeless.len() < 6, "stopped early: {} epochs", hopeless.len());
    let diverged = of(1.0e30, "sgd");
    assert_eq!(diverged.len(), 1);
    assert_eq!((diverged[0].status, diverged[0].training_iteration), (TrialStatus::Failed, 0));
    assert!(diverged[0].error.as_deref().unwrap().starts_with("diverged: epoch 1"), "{:?}", diverged[0].error);
    let best: StudyBest = read_json(&p.path().join("artifacts/out/study/best")).unwrap();
    assert_eq!(best.config["lr"], 0.01);
    assert!(best.failed >= 1 && best.stopped >= 1, "{best:?}");
}

#[test]
fn a_killed_study_resumes_from_its_journal_without_retraining_what_finished() {
    let p = project(&study("space: {variant: {choice: [rand, static, non-static]}, epochs: {choice: [3]}}"));
    // Journal lines: trial 0's start, 3 epochs and end (1-5), trial 1's start (6) and first epoch (7): killed there.
    let mut c = p.cmd(&["tune", "study"]);
    c.env("KIMCNN_KILL_AT", "study:line-7");
    let r = p.run_cmd(c);
    assert_eq!(r.code, -1, "killed by SIGKILL: {}{}", r.stdout, r.stderr);
    let lines = std::fs::read_to_string(journal(&p)).unwrap().lines().count();
    assert_eq!(lines, 7);
    assert_eq!(train_runs(&p), 1, "trial 0 finished before the kill");

    let r = p.run(&["tune", "study"]).ok();
    assert!(r.stdout.contains("resumed from its journal: 1 of 3 trials ended, 1 to go on where they were cut off"), "{}", r.stdout);
    // Killed as its first epoch was journaled: its checkpoint has that epoch (or the next, a race it may win).
    assert!(r.stdout.contains("trial 1: resumed after epoch "), "{}", r.stdout);
    assert_eq!(train_runs(&p), 3, "trial 0 was not trained again");
    let rows = trials(&p);
    assert_eq!(rows.len(), 3 * 3);
    assert!(rows.iter().all(|r| r.status == TrialStatus::Completed));
    assert!(!p.path().join("artifacts/journals/study").read_dir().unwrap().any(|_| true), "journal and checkpoints are gone");
    // The same trials, to the bit, as a study never killed.
    let fresh = project(&study("space: {variant: {choice: [rand, static, non-static]}, epochs: {choice: [3]}}"));
    fresh.run(&["tune", "study"]).ok();
    let figures = |rows: &[TrialRow]| -> Vec<(u32, u32, u64, u64, u64)> {
        rows.iter().map(|r| (r.trial_id, r.training_iteration, r.loss.to_bits(), r.accuracy.to_bits(), r.test_accuracy.to_bits())).collect()
    };
    assert_eq!(figures(&rows), figures(&trials(&fresh)));

    // The same study killed mid-line: the cut line is reported and dropped.
    let p = project(&study("space: {variant: {choice: [rand, static]}, epochs: {choice: [2]}}"));
    let mut c = p.cmd(&["tune", "study"]);
    c.env("KIMCNN_KILL_AT", "study:half-line-3");
    assert_eq!(p.run_cmd(c).code, -1);
    let r = p.run(&["tune", "study"]).ok();
    assert!(r.stdout.contains("line 3: cut short (the study was killed while writing it); ignored"), "{}", r.stdout);
    assert_eq!(trials(&p).len(), 2 * 2);
}

#[test]
fn bad_studies_fail_before_training_and_a_damaged_or_edited_journal_is_never_mixed_in() {
    // A value the train params refuse: one line naming it, exit 2, nothing run.
    let p = project(&study("space: {variant: {choice: [rand, banana]}}"));
    let r = p.run(&["tune", "study"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("study") && r.stderr.contains("variant = \"banana\""), "{}", r.stderr);
    assert!(!p.path().join("artifacts/runs").exists() || train_runs(&p) == 0);
    for (with, says) in [
        ("space: {lr: {uniform: [1.0, 0.1]}}, search: random, trials: 3", "lr"),
        ("space: {variant: {choice: [rand]}}, metric: test_accuracy", "dev"),
        ("space: {variant: {choice: [rand]}}, search: tpe, trials: 0", "trials"),
        ("space: {colour: {choice: [red]}}", "colour"),
    ] {
        p.write("pipeline.yaml", &format!("stages:\n{TOY_STAGES}{}", study(with)));
        let r = p.run(&["tune", "study"]);
        assert_eq!(r.code, 2, "{with}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{with}: {}", r.stderr);
    }

    // A damaged journal line: named, and the study refuses to resume from it.
    p.write(
        "pipeline.yaml",
        &format!("stages:\n{TOY_STAGES}{}", study("space: {variant: {choice: [rand, static]}, epochs: {choice: [2]}}")),
    );
    let r = p.run(&["tune", "embed"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("selects no `study` stage (pipeline.yaml has: study)"), "{}", r.stderr);
    let mut c = p.cmd(&["tune", "study"]);
    c.env("KIMCNN_KILL_AT", "study:line-4");
    assert_eq!(p.run_cmd(c).code, -1);
    let j = journal(&p);
    let text = std::fs::read_to_string(&j).unwrap();
    std::fs::write(&j, text.replacen("\"epoch\":1", "\"epoch\":9", 1)).unwrap();
    let r = p.run(&["tune", "study"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("journal.jsonl line 2: its hash does not match its event"), "{}", r.stderr);
    std::fs::write(&j, text).unwrap();

    // The study edited meanwhile: its old journal is named and not used.
    p.write("pipeline.yaml", &p.read("pipeline.yaml").replace("seed: 1", "seed: 2"));
    let r = p.run(&["tune", "study"]).ok();
    assert!(r.stdout.contains("changed since the journal in"), "{}", r.stdout);
    assert!(!r.stdout.contains("resumed"), "{}", r.stdout);
    assert_eq!(trials(&p).len(), 2 * 2);
}

#[test]
fn tune_then_train_the_best_config_on_more_seeds_is_one_pipeline() {
    let best = |field: &str| format!("\"${{study.best:config.{field}}}\"");
    let p = project(&format!(
        "{}  train.best:\n    uses: train\n    matrix: {{seed: [1, 2]}}\n    inputs: {INPUTS}\n    \
         with: {{dataset: toy, batch: 10, maps: 10, seed: \"${{seed}}\", pad: bucket, optimizer: adam, lr: 0.01, variant: {}, epochs: {}}}\n",
        study("space: {variant: {choice: [rand, static]}, epochs: {choice: [3]}}"),
        best("variant"),
        best("epochs")
    ));
    let r = p.run(&["status", "train.best"]).ok();
    assert!(r.stdout.contains("param `${study.best:config.epochs}` waits for stage study"), "{}", r.stdout);
    let r = p.run(&["run", "--dry-run"]).ok();
    assert!(r.stdout.contains("would run  train.best.seed1") && r.stdout.contains("would run  study"), "{}", r.stdout);

    let r = p.run(&["run"]).ok();
    let chosen: StudyBest = read_json(&p.path().join("artifacts/out/study/best")).unwrap();
    // Seed 1 is the study's own seed: the best trial's key, restored, not trained again.
    assert!(!r.ran().contains(&"train.best.seed1".to_string()), "{}", r.stdout);
    assert!(r.ran().contains(&"train.best.seed2".to_string()), "{}", r.stdout);
    assert_eq!(train_runs(&p), 3, "two trials and one new seed");
    let lock = p.read("pipeline.lock");
    let entry = &lock[lock.find("\n  train.best.seed2:").unwrap()..];
    let variant = chosen.config["variant"].as_str().unwrap();
    assert!(entry.contains(&format!("variant: {variant}")) && entry.contains("epochs: 3"), "the lock has the values: {entry}");
    let r = p.run(&["status"]).ok();
    assert!(r.stdout.contains("0 stale"), "{}", r.stdout);

    // A field the output does not have: the stage fails naming it; a stage that does not exist: refused up front.
    p.write("pipeline.yaml", &p.read("pipeline.yaml").replace("config.epochs", "config.colour"));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("stage `study`'s `best` has no field `config.colour`"), "{}", r.stderr);
    p.write("pipeline.yaml", &p.read("pipeline.yaml").replace("study.best:config.colour", "stduy.best:config.epochs"));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no stage `stduy`"), "{}", r.stderr);
}

#[test]
fn a_seeded_search_proposes_the_same_trials_however_many_run_at_once() {
    // 12 trials: the last two are TPE proposals (10 random to start), each from a fixed set of finished and pending trials.
    let with = "space: {lr: {loguniform: [0.001, 0.1]}, maps: {int: [4, 12]}, epochs: {choice: [1]}}, search: tpe, trials: 12, parallel: 2, seed: 7";
    let points = |jobs: &str| {
        let p = project(&study(with));
        p.run(&["tune", "study", "-j", jobs]).ok();
        let mut pts: Vec<(u32, String)> = trials(&p).iter().map(|r| (r.trial_id, format!("{:?}", r.config))).collect();
        pts.dedup();
        pts
    };
    let two = points("2");
    assert_eq!(two.len(), 12, "{two:?}");
    assert_eq!(points("1"), two, "one at a time or two at once: the same proposals");
}
