//! The data stages through the binary on real data: MR from the mirror,
//! tokenized, a vocabulary, an embedding matrix from a small vectors file the
//! test writes; summaries, `show`, caching, and bad input.
mod common;

use common::Project;

const PIPE: &str = r#"
params:
  kim: https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data
  seed: 1
stages:
  mr:
    uses: source
    matrix: { file: [rt-polarity.pos, rt-polarity.neg] }
    with: { url: '${kim}/${file}' }
  vectors:
    uses: source
    with: { path: vectors.txt }
  tokenize.mr:
    uses: tokenize
    inputs: { pos: mr.rt-polarity.pos.data, neg: mr.rt-polarity.neg.data }
    with: { format: lines, order: [pos, neg], folds: 10, seed: '${seed}' }
  vocab.mr:
    uses: vocab
    inputs: { tokens: tokenize.mr.tokens }
  embed.mr:
    uses: embed
    inputs: { vocab: vocab.mr.vocab, vectors: vectors.data }
    with: { seed: '${seed}' }
"#;

fn project() -> Project {
    let p = Project::new(PIPE);
    // A word2vec text file (with header) for a few MR words.
    p.write("vectors.txt", "4 3\nthe 0.1 0.2 0.3\nfilm -0.5 0.5 0.0\nmovie 0.3 -0.1 0.2\nzzzunused 1 1 1\n");
    p
}

fn json(p: &Project, link: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p.path().join("artifacts/out").join(link)).unwrap()).unwrap()
}

#[test]
fn mr_tokens_vocab_and_embeddings_with_summaries() {
    let p = project();
    let r = p.run(&["run"]).ok();
    assert_eq!(r.ran().len(), 6, "{}", r.stdout);
    let s = json(&p, "tokenize.mr/summary");
    assert_eq!(s["rows"], 10662);
    assert_eq!(s["classes"]["pos"], 5331);
    assert_eq!(s["folds"], 10);
    assert_eq!(s["redecoded_latin1"]["pos"], 101, "MR has Latin-1 lines, counted");
    let v = json(&p, "vocab.mr/summary");
    assert!(v["size"].as_u64().unwrap() > 18_000, "{v}");
    let c = json(&p, "embed.mr/coverage");
    assert_eq!(c["format"], "word2vec-text");
    assert_eq!((c["dim"].as_u64(), c["words_found"].as_u64(), c["pretrained_words"].as_u64()), (Some(3), Some(3), Some(4)));
    let r = p.run(&["show", "embed.mr"]).ok();
    assert!(r.stdout.contains("tensor embeddings: F32 [") && r.stdout.contains(", 3]"), "{}", r.stdout);
    assert!(r.stdout.contains("\"vocab_blake3\""), "{}", r.stdout);
    let r = p.run(&["show", "tokenize.mr", "--rows", "1"]).ok();
    assert!(r.stdout.contains("parquet, 10662 rows") && r.stdout.contains("tokens=[the, rock, is, destined"), "{}", r.stdout);
    // One output of a stage, as artifacts/out names it; a wrong output name says which there are.
    let r = p.run(&["show", "embed.mr/coverage"]).ok();
    assert!(r.stdout.contains("coverage: artifacts/out/embed.mr/coverage") && !r.stdout.contains("tensor embeddings"), "{}", r.stdout);
    let r = p.run(&["show", "embed.mr/history"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("stage `embed.mr` has no output `history` (it has: coverage, embeddings)"), "{}", r.stderr);
    assert!(p.run(&["run"]).ok().ran().is_empty());
}

#[test]
fn changing_the_seed_of_embed_reruns_only_embed() {
    let p = project();
    p.run(&["run"]).ok();
    let r = p.run(&["status", "--set", "embed.mr.seed=2"]).ok();
    assert!(r.stdout.contains("embed.mr") && r.stdout.contains("param seed: 1 -> 2"), "{}", r.stdout);
    assert!(r.stdout.contains("5 up to date"), "{}", r.stdout);
    assert_eq!(p.run(&["run", "--set", "embed.mr.seed=2"]).ok().ran(), ["embed.mr"]);
    // Editing the vectors file reruns vectors and embed, nothing else.
    p.write("vectors.txt", "1 3\nthe 0.1 0.2 0.3\n");
    let r = p.run(&["run"]).ok();
    assert_eq!(r.ran(), ["vectors", "embed.mr"], "{}", r.stdout);
}

#[test]
fn a_default_written_out_is_the_same_stage() {
    let p = project();
    p.run(&["run"]).ok();
    let explicit = PIPE.replace(
        "    inputs: { tokens: tokenize.mr.tokens }\n",
        "    inputs: { tokens: tokenize.mr.tokens }\n    with: { min_count: 1, from: all, order: first }\n",
    );
    assert_ne!(explicit, PIPE);
    p.write("pipeline.yaml", &explicit);
    let r = p.run(&["status"]).ok();
    assert!(r.stdout.contains("6 stages: 6 up to date"), "{}", r.stdout);
    // The lock records the normalised params: every default, by name.
    let lock = p.read("pipeline.lock");
    let vocab = lock.split("\n  vocab.mr:\n").nth(1).unwrap();
    assert!(vocab.contains("min_count: 1") && vocab.contains("order: first"), "{vocab}");
    p.write("pipeline.yaml", &explicit.replace("min_count: 1", "min_count: 2"));
    assert_eq!(p.run(&["run"]).ok().ran(), ["vocab.mr", "embed.mr"]);
}

#[test]
fn bad_vectors_and_bad_labels_fail_naming_the_place_and_keep_the_store() {
    let p = project();
    p.run(&["run"]).ok();
    let before = p.snapshot();
    p.write("vectors.txt", "2 3\nthe 0.1 0.2 0.3\nfilm 0.1 0.2\n");
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.trim(), "error: stage `embed.mr` failed: input `vectors`: line 3: word `film` has 2 values, expected 3");
    // Only the new vectors file itself entered the store (one object, one run
    // record: the `vectors` stage's); nothing of the failed embed.
    let after = p.snapshot();
    let new: Vec<String> = after.iter().filter(|x| !before.contains(x)).map(|(n, _)| n.clone()).collect();
    assert_eq!(new.iter().filter(|n| n.starts_with("artifacts/objects/")).count(), 1, "{new:?}");
    assert_eq!(new.iter().filter(|n| n.starts_with("artifacts/runs/")).count(), 1, "{new:?}");
    assert!(new.iter().all(|n| !n.starts_with("artifacts/out/embed.mr")), "{new:?}");
    assert!(
        before.iter().all(|x| after.contains(x)
            || x.0 == "pipeline.lock"
            || x.0 == "artifacts/out/vectors/data"
            || x.0.starts_with("artifacts/state/")),
        "nothing lost"
    );
    let r = p.run(&["status"]).ok();
    assert!(r.stdout.contains("stale") && r.stdout.contains("embed.mr"), "{}", r.stdout);

    let p = Project::new(
        "stages:\n  raw: {uses: source, with: {path: train.txt}}\n  t:\n    uses: tokenize\n    inputs: {train: raw.data}\n    with: {format: sst, classes: [0, 1]}\n",
    );
    p.write("train.txt", "1 good film\n0 bad film\n2 what\n");
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.trim(), "error: stage `t` failed: train line 3: label `2` is not one of the classes (0, 1)");
    assert!(!p.path().join("artifacts/out/t").exists());
}

#[test]
fn tokenize_param_errors_are_caught_before_anything_runs() {
    let p = Project::new(
        "stages:\n  raw: {uses: source, with: {path: a.txt}}\n  t: {uses: tokenize, inputs: {train: raw.data}, with: {format: xml}}\n",
    );
    p.write("a.txt", "x\n");
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.trim(),
        "error: pipeline.yaml: stage `t`: param `format` must be one of lines, trec, sst, nsmc, tsv, csv, found `xml`"
    );
    assert!(p.objects().is_empty());
    let p = Project::new("stages:\n  raw: {uses: source, with: {path: a.txt}}\n  e: {uses: embed, inputs: {vocab: raw.data}}\n");
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("stage `e`: an `embed` stage takes two inputs, `vocab` and `vectors`"), "{}", r.stderr);
}
