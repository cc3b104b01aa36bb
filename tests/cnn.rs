//! Training, evaluation, the results table, predict and models through the
//! binary, on a small data set the test writes (a real run of every kind).
mod common;

use common::Project;

/// The toy pipeline: the data stages, then every variant trained and evaluated.
fn pipe() -> String {
    format!("params: {{seed: 1, variants: [rand, static, non-static, multichannel]}}\nstages:\n{}{MODELS}", common::TOY_STAGES)
}

const MODELS: &str = r#"  train:
    uses: train
    matrix: {variant: '${variants}'}
    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}
    with: {dataset: toy, variant: '${variant}', epochs: 6, batch: 10, maps: 10, seed: '${seed}', pad: bucket}
  evaluate:
    uses: evaluate
    matrix: {variant: '${variants}'}
    inputs: {model: 'train.${variant}.model', tokens: tokenize.tokens, vocab: vocab.vocab}
  results: {uses: aggregate, inputs: {metrics: 'evaluate.*.metrics'}}
"#;

fn project() -> Project {
    let p = Project::new(&pipe());
    common::write_toy_data(&p);
    p
}

fn json(p: &Project, link: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p.path().join("artifacts/out").join(link)).unwrap()).unwrap()
}

fn model_hash(p: &Project, stage: &str) -> String {
    let lock = p.read("pipeline.lock");
    let at = lock.find(&format!("\n  {stage}:\n")).unwrap();
    let rest = &lock[at..];
    let m = rest.find("      model: ").unwrap();
    rest[m + 13..m + 13 + 64].to_string()
}

#[test]
fn train_evaluate_aggregate_predict_and_models() {
    let p = project();
    let r = p.run(&["run"]).ok();
    assert_eq!(r.ran().len(), 15, "{}", r.stdout);
    let m = json(&p, "evaluate.non-static/metrics");
    assert_eq!(m["dataset"], "toy");
    assert_eq!(m["n"], 60);
    assert!(m["accuracy"].as_f64().unwrap() >= 0.9, "{m}");
    assert_eq!(m["confusion"].as_array().unwrap().len(), 2);
    let s = json(&p, "train.multichannel/summary");
    assert_eq!((s["train"].as_u64(), s["dev"].as_u64(), s["test"].as_u64()), (Some(360), Some(40), Some(60)));
    let table = std::fs::read_to_string(p.path().join("artifacts/out/results/table")).unwrap();
    assert!(table.contains("| model | toy |") && table.contains("| CNN-multichannel | "), "{table}");
    let plot = std::fs::read_to_string(p.path().join("artifacts/out/results/plot")).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("\nTOY\n") && plot.contains("\nmultichannel\n"), "{plot}");
    let r = p.run(&["show", "results"]).ok();
    assert!(r.stdout.contains("SVG image, ") && !r.stdout.contains("<svg"), "{}", r.stdout);
    assert!(r.stdout.contains("parquet, 4 rows") && r.stdout.contains("columns: dataset (Utf8), variant (Utf8), fold (Int32), seed (UInt64), accuracy (Float64), macro_f1 (Float64), epochs (UInt32), best_epoch (UInt32), pad (Utf8), init (Utf8)"), "{}", r.stdout);

    // predict: arguments, stdin, JSON, and the notes for odd sentences.
    let r =
        p.run(&["predict", "--model", "train.non-static", "the film was great and the acting", "the plot was awful and the story"]).ok();
    let labels: Vec<&str> = r.stdout.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(labels, ["pos", "neg"], "{}", r.stdout);
    let r = p.run(&["predict", "--model", "train.non-static", "--json", "", "zzz qqq"]).ok();
    let rows: Vec<serde_json::Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows[0]["note"], "empty sentence");
    assert_eq!(rows[1]["note"], "no known tokens");
    let pr = rows[1]["probabilities"].as_object().unwrap();
    assert!((pr["neg"].as_f64().unwrap() + pr["pos"].as_f64().unwrap() - 1.0).abs() < 1e-5);

    // models: list and export; predict from the exported copy.
    let r = p.run(&["models"]).ok();
    assert_eq!(r.stdout.lines().count(), 5, "{}", r.stdout);
    assert!(r.stdout.contains("train.static") && r.stdout.contains("toy"), "{}", r.stdout);
    let out = p.path().join("exported");
    p.run(&["models", "export", "train.non-static", out.to_str().unwrap()]).ok();
    for f in ["model.safetensors", "vocab.parquet", "cleaning.json", "config.json", "metrics.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let r = p.run(&["predict", "--model", out.join("model.safetensors").to_str().unwrap(), "great acting"]).ok();
    assert!(r.stdout.starts_with("pos\t"), "{}", r.stdout);
    let r = p.run(&["models", "export", "train.non-static", out.to_str().unwrap()]);
    assert_eq!(r.code, 2, "refuses to overwrite");
}

#[test]
fn same_seed_same_model_bytes_and_the_seed_changes_them() {
    let p = project();
    p.run(&["run", "train.non-static"]).ok();
    let first = model_hash(&p, "train.non-static");
    let r = p.run(&["run", "train.non-static", "--force", "-v"]).ok();
    assert_eq!(r.ran(), ["train.non-static"]);
    assert!(r.stdout.contains("epoch      train.non-static  6/6  loss "), "-v logs epochs without a terminal: {}", r.stdout);
    assert_eq!(model_hash(&p, "train.non-static"), first, "byte-identical model.safetensors");
    p.run(&["run", "train.non-static", "--set", "seed=2"]).ok();
    assert_ne!(model_hash(&p, "train.non-static"), first);
}

#[test]
fn bad_models_and_bad_training_fail_clearly() {
    let p = project();
    p.run(&["run", "evaluate.static"]).ok();
    // A corrupt model file, and a model with another vocabulary's file beside it.
    let dir = p.path().join("m");
    p.run(&["models", "export", "train.static", dir.to_str().unwrap()]).ok();
    std::fs::write(p.path().join("broken.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}xxxxxx").unwrap();
    let r = p.run(&["predict", "--model", "broken.safetensors", "x"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.trim().starts_with("error: broken.safetensors: not a kimcnn model"), "{}", r.stderr);
    let other = Project::new("stages:\n  raw: {uses: source, with: {path: t.tsv}}\n  t: {uses: tokenize, inputs: {train: raw.data}, with: {format: tsv}}\n  v: {uses: vocab, inputs: {tokens: t.tokens}}\n");
    other.write("t.tsv", "text\tlabel\nsomething else entirely\tx\n");
    other.run(&["run"]).ok();
    std::fs::remove_file(dir.join("vocab.parquet")).unwrap();
    std::fs::copy(other.path().join("artifacts/out/v/vocab"), dir.join("vocab.parquet")).unwrap();
    let moved = p.path().join("m2");
    std::fs::rename(&dir, &moved).unwrap();
    // Out of the store's reach: the vocab beside it is used, and refused.
    let lone = tempfile::tempdir().unwrap();
    for f in ["model.safetensors", "vocab.parquet"] {
        std::fs::copy(moved.join(f), lone.path().join(f)).unwrap();
    }
    let fresh = Project::new("stages: {}\n");
    let r = fresh.run(&["predict", "--model", lone.path().join("model.safetensors").to_str().unwrap(), "great"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("the model was trained with another vocabulary"), "{}", r.stderr);

    // NaN loss: a learning rate that blows up; nothing of the stage is kept.
    let r = p.run(&["run", "train.rand", "--set", "train.optimizer=sgd", "--set", "train.lr=1e35", "--set", "train.max_norm=0"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("stage `train.rand` failed: epoch 1 batch ") && r.stderr.contains("the loss is"), "{}", r.stderr);
    assert!(r.stdout.contains("diverged   train.rand: epoch 1 batch "), "told apart from other failures: {}", r.stdout);
    assert!(!p.path().join("artifacts/out/train.rand").exists());

    // A class in test that train never saw.
    p.write("test.tsv", &format!("{}great plot\tmeh\n", common::toy_tsv(10, 1000)));
    let r = p.run(&["run", "evaluate.static"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("class `meh` appears in test (test:12) but not in train (classes: neg, pos)"), "{}", r.stderr);
    assert!(r.stdout.contains("bad input  train.static: class `meh`"), "told apart from other failures: {}", r.stdout);
}

#[test]
fn the_device_is_not_part_of_the_key_and_a_crashed_worker_is_named() {
    let p = project();
    p.run(&["run", "train.static"]).ok();
    let key = |p: &Project| {
        p.read("pipeline.lock").split("\n  train.static:\n").nth(1).and_then(|r| r.lines().find(|l| l.contains(" key: ")).map(String::from))
    };
    let before = key(&p);
    assert!(before.is_some(), "{}", p.read("pipeline.lock"));
    // `--device` and the `device` param alike: the same stage, restored, not rerun.
    assert!(p.run(&["run", "train.static", "--device", "cpu"]).ok().ran().is_empty());
    assert!(p.run(&["run", "train.static", "--set", "train.static.device=cpu"]).ok().ran().is_empty());
    assert_eq!(key(&p), before);
    let r = p.run(&["status", "train.static"]).ok();
    assert!(r.stdout.contains("1 stages: 1 up to date"), "{}", r.stdout);
    let r = p.run(&["run", "train.static", "--device", "tpu"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains(": param `device` must be auto, cpu, cuda or cuda:N, found `tpu`"), "{}", r.stderr);
    // Where it ran is recorded: in the model's metadata and in the run record.
    let r = p.run(&["show", "train.static/model"]).ok();
    assert!(r.stdout.contains("\"device\": \"cpu\"") && r.stdout.contains("\"threads\": 1"), "{}", r.stdout);
    let records: Vec<String> =
        std::fs::read_dir(p.path().join("artifacts/runs")).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    assert!(records.iter().any(|r| r.contains("\"kind\": \"train\"") && r.contains("\"device\": \"cpu\"")), "{records:?}");

    // A worker that dies without a result: a crash, named with its signal and last words; nothing kept.
    p.write("crash.sh", "#!/bin/sh\necho 'out of device memory' >&2\nkill -SEGV $$\n");
    std::fs::set_permissions(p.path().join("crash.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let before = p.snapshot();
    let mut c = p.cmd(&["run", "train.rand"]);
    c.env("KIMCNN_TORCH", p.path().join("crash.sh"));
    let r = p.run_cmd(c);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "error: stage `train.rand` failed: the torch worker was killed by signal 11 (SIGSEGV); its last output: out of device memory"
    );
    assert!(r.stdout.contains("crashed    train.rand: "), "{}", r.stdout);
    let after = p.snapshot();
    assert!(after.iter().all(|(n, _)| !n.starts_with("artifacts/out/train.rand")), "nothing of the crashed stage");
    assert!(before.iter().all(|x| after.contains(x) || x.0 == "pipeline.lock" || x.0.starts_with("artifacts/state/")), "nothing lost");
}

/// The state letter of a process (None: gone), from /proc.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
}

/// The pids of `kimcnn-torch` processes whose parent is `parent`.
fn workers_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if head.ends_with("(kimcnn-torch") && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

/// A train run killed after an epoch goes on from that epoch's checkpoint,
/// to the bytes of a run never stopped; the checkpoint goes once the outputs
/// are in the store.
#[test]
fn a_killed_train_run_goes_on_from_its_last_epoch() {
    let p = project();
    let mut c = p.cmd(&["run", "train.non-static"]);
    c.env("KIMCNN_KILL_AT", "train:epoch-3");
    let r = p.run_cmd(c);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("the torch worker was killed by signal 9"), "{}", r.stderr);
    let states = p.path().join("artifacts/journals/train.non-static");
    assert!(std::fs::read_dir(&states).unwrap().any(|e| e.unwrap().path().join("checkpoint.safetensors").is_file()));

    let r = p.run(&["run", "train.non-static", "-v"]).ok();
    assert!(r.stdout.contains("resumed after epoch 3, from its checkpoint"), "{}", r.stdout);
    assert_eq!(std::fs::read_dir(&states).unwrap().count(), 0, "the checkpoint is gone with the run");
    let history = kimcnn_schema::read_history(&p.path().join("artifacts/out/train.non-static/history")).unwrap();
    let resumed = (model_hash(&p, "train.non-static"), history);

    // Recomputed from the start: the same bytes.
    p.run(&["run", "train.non-static", "--force"]).ok();
    let history = kimcnn_schema::read_history(&p.path().join("artifacts/out/train.non-static/history")).unwrap();
    assert!(resumed == (model_hash(&p, "train.non-static"), history), "a resumed run is not the run never stopped");

    // --force does not use a killed run's checkpoint.
    let mut c = p.cmd(&["run", "train.non-static", "--force"]);
    c.env("KIMCNN_KILL_AT", "train:epoch-2");
    assert_eq!(p.run_cmd(c).code, 1);
    let r = p.run(&["run", "train.non-static", "--force"]).ok();
    assert!(!r.stdout.contains("resumed after"), "{}", r.stdout);
    assert_eq!(model_hash(&p, "train.non-static"), resumed.0);
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_run_leaves_no_training_behind() {
    let p = project();
    // Epochs of several seconds: without the death signal the worker would
    // only die at its next progress line, after the end of an epoch.
    p.write("train.tsv", &common::toy_tsv(200_000, 0));
    p.write("pipeline.yaml", &pipe().replace("epochs: 6", "epochs: 1000"));
    let mut c = p.cmd(&["run", "train.static"]);
    let mut runner = c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let t0 = std::time::Instant::now();
    let worker = loop {
        if let Some(&w) = workers_of(runner.id()).first() {
            break w;
        }
        assert!(t0.elapsed().as_secs() < 60, "no worker started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    runner.kill().unwrap(); // SIGKILL: no chance to clean up
    runner.wait().unwrap();
    let t1 = std::time::Instant::now();
    while proc_state(worker).is_some_and(|s| s != 'Z') {
        // Well under an epoch (tens of seconds here): it died with its runner, not at an epoch's end.
        assert!(t1.elapsed().as_secs() < 10, "the worker {worker} of a killed run is still training");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The next run starts over cleanly (a few epochs).
    p.write("train.tsv", &common::toy_tsv(400, 0));
    p.write("pipeline.yaml", &pipe());
    assert_eq!(p.run(&["run", "train.static"]).ok().ran().last().map(String::as_str), Some("train.static"));
}

/// The tiny model of `train.static` in reproducible numerics: its BLAKE3
/// (weights and metadata, which names torch 2.11.0+cu130 and its MKL).
/// The same on x86-64 CPUs with AVX2 (CI checks it on its machine; an
/// AVX-512 AMD EPYC wrote it at train kind 8; bench/numerics.py checks the
/// weights on emulated AVX2-only Haswell and AMD EPYC-Rome CPUs); another
/// torch version changes it.
const REPRODUCIBLE_TOY_STATIC: &str = "5d0b8bb9d62bdd6e2cd79ad1f2ed6bf3ce3cc43c3f6052cb369b0c5cdd155dc4";

#[test]
fn reproducible_numerics_give_the_committed_bytes_whatever_the_environment_pins() {
    let p = project();
    p.run(&["run", "train.static"]).ok();
    let hash = model_hash(&p, "train.static");
    assert_eq!(hash, REPRODUCIBLE_TOY_STATIC, "the reproducible toy model changed (another torch, or a change to training?)");
    let r = p.run(&["show", "train.static/model"]).ok();
    assert!(
        r.stdout.contains("\"mode\": \"reproducible\"")
            && r.stdout.contains("\"isa\": \"avx2\"")
            && r.stdout.contains("\"torch\": \"2.11.0"),
        "{}",
        r.stdout
    );
    let records: Vec<String> =
        std::fs::read_dir(p.path().join("artifacts/runs")).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    assert!(records.iter().any(|r| r.contains("\"numerics\": \"reproducible\"") && r.contains("\"isa\": \"avx2\"")), "{records:?}");

    // Kernel pins in the caller's environment do not leak into a reproducible run: the worker sets its own.
    let mut c = p.cmd(&["run", "train.static", "--force"]);
    c.env("ATEN_CPU_CAPABILITY", "default").env("ONEDNN_MAX_CPU_ISA", "SSE41").env("MKL_CBWR", "COMPATIBLE");
    assert_eq!(p.run_cmd(c).ok().ran(), ["train.static"]);
    assert_eq!(model_hash(&p, "train.static"), hash);

    // The mode is part of the key; a GPU device makes a run fast, so it is another stage (no GPU needed to plan it).
    let r = p.run(&["run", "train.static", "--dry-run", "--device", "cpu"]).ok();
    assert!(r.stdout.contains("0 would run, 7 cached"), "{}", r.stdout);
    let r = p.run(&["run", "train.static", "--dry-run", "--device", "cuda"]).ok();
    assert!(r.stdout.contains("1 would run, 6 cached"), "{}", r.stdout);
    p.run(&["run", "train.static", "--set", "train.static.numerics=fast"]).ok();
    let r = p.run(&["show", "train.static/model"]).ok();
    assert!(r.stdout.contains("\"mode\": \"fast\""), "{}", r.stdout);
    let r = p.run(&["run", "train.static", "--set", "train.static.numerics=exact"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("param `numerics` must be one of reproducible, fast, found `exact`"), "{}", r.stderr);
}
