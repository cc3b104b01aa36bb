//! Trained subword tokenizers and word vectors through the binary, on a
//! small Korean data set the test writes: trained on the training rows and
//! a corpus (never the test rows), the tokens cut into pieces, a model
//! trained on them that predicts on raw Korean text; the tokenizer.json
//! loaded by Python's `tokenizers` (same minor version) cuts the same
//! pieces, gensim reads the word2vec vectors; bad input.
mod common;

use std::io::Write;
use std::path::PathBuf;

use common::Project;

const POS: [&str; 4] = ["최고였어요", "재밌었어요", "감동적이었어요", "좋았어요"];
const NEG: [&str; 4] = ["별로였어요", "지루했어요", "실망스러웠어요", "나빴어요"];
const FILLER: [&str; 10] = ["영화가", "영화는", "배우들", "배우가", "연기는", "연기가", "스토리가", "정말", "너무", "오늘"];

/// `n` Korean reviews: even ones positive, odd ones negative.
fn reviews(n: usize, offset: usize) -> String {
    let mut s = String::from("id\tdocument\tlabel\n");
    for i in offset..offset + n {
        let pos = i % 2 == 0;
        let mut words: Vec<&str> = (0..(2 + i % 4)).map(|j| FILLER[(i * 3 + j) % FILLER.len()]).collect();
        words.push(if pos { POS[(i / 2) % 4] } else { NEG[(i / 2) % 4] });
        s.push_str(&format!("{i}\t{}\t{}\n", words.join(" "), u8::from(pos)));
    }
    s
}

fn pipeline(model: &str) -> String {
    format!(
        "stages:
  raw.train: {{uses: source, with: {{path: train.txt}}}}
  raw.test: {{uses: source, with: {{path: test.txt}}}}
  raw.corpus: {{uses: source, with: {{path: corpus.txt.gz}}}}
  vectors: {{uses: source, with: {{path: vectors.txt}}}}
  tokenize: {{uses: tokenize, inputs: {{train: raw.train.data, test: raw.test.data}}, with: {{format: nsmc, cleaner: unicode, classes: [0, 1]}}}}
  subword:
    uses: subword
    inputs: {{tokens: tokenize.tokens, summary: tokenize.summary, corpus: raw.corpus.data}}
    with: {{model: {model}, vocab_size: 120}}
  segment: {{uses: segment, inputs: {{tokens: tokenize.tokens, summary: tokenize.summary, tokenizer: subword.tokenizer}}}}
  vocab: {{uses: vocab, inputs: {{tokens: segment.tokens}}}}
  embed: {{uses: embed, inputs: {{vocab: vocab.vocab, vectors: vectors.data}}}}
  train:
    uses: train
    inputs: {{tokens: segment.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: segment.summary}}
    with: {{dataset: toy, variant: non-static, epochs: 10, batch: 10, maps: 20, seed: 1, pad: bucket}}
"
    )
}

fn project(model: &str) -> Project {
    let p = Project::new(&pipeline(model));
    p.write("train.txt", &reviews(300, 0));
    // A character only the test rows have.
    p.write("test.txt", &reviews(40, 1000).replace("오늘", "쀍오늘"));
    // The corpus: unlabeled reviews, a blank line and a line in another encoding (EUC-KR bytes).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let docs: Vec<String> = reviews(100, 5000).lines().skip(1).map(|l| format!("{}\n", l.split('\t').nth(1).unwrap())).collect();
    gz.write_all(docs.concat().as_bytes()).unwrap();
    gz.write_all(b"\n\xc1\xa4\xb8\xbb \xc1\xc1\xbe\xc6\xbf\xe4\n").unwrap();
    std::fs::write(p.path().join("corpus.txt.gz"), gz.finish().unwrap()).unwrap();
    p.write("vectors.txt", "▁영화 0.1 0.2 0.3 0.0 0.1 0.2 0.3 0.0 -0.1 0.2\n▁정말 0.3 0.1 0.0 0.2 -0.3 0.1 0.0 0.2 0.1 0.0\n");
    p
}

/// Python with `tokenizers` 0.23 and gensim 4.4 (`make test` installs them).
fn python() -> PathBuf {
    common::cached_tool("KIMCNN_PY_TOOLS", "py-tools/bin/python")
}

#[test]
fn a_trained_tokenizer_cuts_korean_words_and_the_model_predicts_on_raw_text() {
    let p = project("unigram");
    let r = p.run(&["run", "train"]).ok();
    assert!(r.ran().contains(&"subword".to_string()) && r.ran().contains(&"segment".to_string()), "{}", r.stdout);
    assert!(r.stdout.contains("1 of") && r.stdout.contains("not UTF-8"), "the corpus line in another encoding is reported: {}", r.stdout);
    let out = |s: &str| p.path().join("artifacts/out").join(s);
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out("subword/summary")).unwrap()).unwrap();
    assert_eq!(summary["rows"], 270, "the training rows only (30 of 300 carved out for dev): {summary}");
    assert_eq!(summary["corpus"]["invalid_utf8"], 1, "{summary}");
    assert_eq!(summary["corpus"]["empty"], 1, "{summary}");
    assert!(summary["vocab_size"].as_u64().unwrap() <= 120, "{summary}");
    assert!(summary["pieces"].as_u64() > summary["words"].as_u64(), "words are cut: {summary}");
    // Never the test text: a character only the test rows have is not a piece.
    let json = std::fs::read_to_string(out("subword/tokenizer")).unwrap();
    assert!(json.contains("영화") && !json.contains('쀍'), "{json}");

    // The pieces in the table, and the model predicts on raw text with them.
    let r = p.run(&["show", "segment/tokens", "--rows", "2"]).ok();
    assert!(r.stdout.contains('▁'), "{}", r.stdout);
    let r = p.run(&["predict", "--model", "train", "배우들 연기가 정말 최고였어요", "스토리가 너무 지루했어요"]).ok();
    let labels: Vec<&str> = r.stdout.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(labels, ["1", "0"], "{}", r.stdout);

    // Python's tokenizers loads the exported tokenizer.json and cuts the same pieces.
    let dir = p.path().join("exported");
    p.run(&["models", "export", "train", dir.to_str().unwrap()]).ok();
    let tok = dir.join("tokenizer.json");
    assert!(tok.is_file());
    let py = std::process::Command::new(python())
        .arg("-c")
        .arg("import sys, tokenizers; t = tokenizers.Tokenizer.from_file(sys.argv[1]); print(tokenizers.__version__); print(' '.join(t.encode(sys.argv[2]).tokens))")
        .arg(&tok)
        .arg("배우들 연기가 정말 최고였어요")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&py.stdout);
    assert!(py.status.success(), "{stdout}{}", String::from_utf8_lossy(&py.stderr));
    let mut lines = stdout.lines();
    assert!(lines.next().unwrap().starts_with("0.23."), "{stdout}");
    let python_pieces = lines.next().unwrap().to_string();
    let words: Vec<String> = ["배우들", "연기가", "정말", "최고였어요"].map(String::from).to_vec();
    let tk = kimcnn_subword::load(&std::fs::read_to_string(&tok).unwrap(), "exported").unwrap();
    assert_eq!(python_pieces, kimcnn_subword::pieces(&tk, &words).unwrap().join(" "));

    // The same inputs, the same tokenizer bytes (recomputed in scratch).
    let r = p.run(&["verify", "--recompute", "subword", "segment"]).ok();
    assert!(!r.stdout.contains("differ"), "{}", r.stdout);
}

#[test]
fn every_model_trains_and_bad_tokenizers_are_refused() {
    for model in ["bpe", "wordpiece", "syllable"] {
        let p = project(model);
        p.run(&["run", "segment"]).ok();
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p.path().join("artifacts/out/segment/summary")).unwrap()).unwrap();
        assert_eq!(s["subword"]["model"], model, "{s}");
    }
    let p = project("unigram");
    // A tokenizer.json that is not one (another version, another tool): one line naming the input.
    p.write("other.json", r#"{"version": "9.9", "model": {"type": "Neural"}}"#);
    let text = pipeline("unigram").replace("tokenizer: subword.tokenizer", "tokenizer: other.data")
        + "  other: {uses: source, with: {path: other.json}}\n";
    p.write("pipeline.yaml", &text);
    let r = p.run(&["run", "segment"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(said.contains("segment") && said.contains("input `tokenizer`") && said.contains("not a tokenizer.json"), "{said}");
    // Segmenting pieces again is refused.
    let text = pipeline("unigram")
        + "  again: {uses: segment, inputs: {tokens: segment.tokens, summary: segment.summary, tokenizer: subword.tokenizer}}\n";
    p.write("pipeline.yaml", &text);
    let r = p.run(&["run", "again"]);
    assert_eq!(r.code, 1);
    assert!(format!("{}{}", r.stdout, r.stderr).contains("subword pieces already"), "{}{}", r.stdout, r.stderr);
    // No training text (every row left out, an empty corpus): a clear error, not an empty tokenizer.
    p.write("pipeline.yaml", &pipeline("unigram"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"\n  \n").unwrap();
    std::fs::write(p.path().join("corpus.txt.gz"), gz.finish().unwrap()).unwrap();
    let r = p.run(&["run", "subword", "--set", "subword.vocab_size=5"]);
    assert_eq!(r.code, 1);
    assert!(format!("{}{}", r.stdout, r.stderr).contains("raise `vocab_size`"), "{}{}", r.stdout, r.stderr);
    let r = p.run(&["run", "subword", "--set", "subword.exclude_fold=-1"]);
    assert_eq!(r.code, 1);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("no training text: 0 training rows outside fold -1 and 0 corpus lines"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn word_vectors_trained_on_the_pieces_feed_the_embedding_and_gensim_reads_them() {
    let p = project("unigram");
    let text = pipeline("unigram").replace(
        "  embed: {uses: embed, inputs: {vocab: vocab.vocab, vectors: vectors.data}}",
        "  word2vec:
    uses: word2vec
    inputs: {tokens: segment.tokens, summary: segment.summary, corpus: raw.corpus.data}
    with: {dim: 16, min_count: 2, epochs: 3}
  embed: {uses: embed, inputs: {vocab: vocab.vocab, vectors: word2vec.vectors}, with: {format: word2vec-binary}}",
    );
    p.write("pipeline.yaml", &text);
    let r = p.run(&["run", "train"]).ok();
    assert!(r.ran().contains(&"word2vec".to_string()), "{}", r.stdout);
    let out = |s: &str| p.path().join("artifacts/out").join(s);
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out("word2vec/summary")).unwrap()).unwrap();
    assert_eq!((summary["rows"].as_u64(), summary["corpus"]["used"].as_u64()), (Some(270), Some(100)), "{summary}");
    let coverage: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out("embed/coverage")).unwrap()).unwrap();
    assert!(coverage["word_coverage"].as_f64().unwrap() > 0.9, "our vectors know our pieces: {coverage}");
    // One thread: the same bytes when recomputed (the timings aside).
    let r = p.run(&["verify", "--recompute", "word2vec"]).ok();
    assert!(!r.stdout.contains("differ"), "{}", r.stdout);

    // gensim reads the binary file: the same words, the same numbers.
    let py = std::process::Command::new(python())
        .arg("-c")
        .arg("import sys, json; from gensim.models import KeyedVectors as K; k = K.load_word2vec_format(sys.argv[1], binary=True); w = k.index_to_key[0]; print(json.dumps([len(k.index_to_key), k.vector_size, w, [float(x) for x in k[w]]]))")
        .arg(out("word2vec/vectors"))
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(seen[0].as_u64(), summary["words"].as_u64());
    assert_eq!(seen[1], 16);
    let bytes = std::fs::read(out("word2vec/vectors")).unwrap();
    let header = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let word = seen[2].as_str().unwrap();
    assert!(bytes[header..].starts_with(format!("{word} ").as_bytes()));
    let at = header + word.len() + 1;
    let first = f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(seen[3][0].as_f64().unwrap() as f32, first);

    // Too little text for `min_count`: one line naming the stage and what to do.
    let r = p.run(&["run", "word2vec", "--set", "word2vec.min_count=100000"]);
    assert_eq!(r.code, 1);
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(said.contains("word2vec") && said.contains("lower `min_count`"), "{said}");
}
