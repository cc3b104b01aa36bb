//! `kimcnn report` through the binary: the page of a real (toy) pipeline
//! with a study, checked in headless Chromium; a report over nothing; a
//! script without a font; the stage cached until its inputs change.
mod browser;
mod common;

use common::{Project, TOY_STAGES};

const INPUTS: &str = "{tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}";

const REPORT: &str = r#"  report:
    uses: report
    inputs:
      metrics: "evaluate.*.metrics?"
      model: "train.*.model?"
      history: "train.*.history?"
      timings: "train.*.timings?"
      trials: "study*.trials?"
      best: "study*.best?"
      tokens: "tokenize*.summary?"
      vocab: "vocab*.summary?"
      coverage: "embed*.coverage?"
      tsne: "tsne.*.points?"
      tsne_summary: "tsne.*.summary?"
      neighbours: "neighbours.*.table?"
"#;

/// Two variants trained and evaluated, and a study with a trial that diverges (SGD at 1e30).
fn pipeline() -> String {
    format!(
        "stages:\n{TOY_STAGES}  train:
    uses: train
    matrix: {{variant: [rand, non-static]}}
    inputs: {INPUTS}
    with: {{dataset: toy, variant: '${{variant}}', epochs: 6, batch: 10, maps: 10, seed: 1, pad: bucket}}
  evaluate:
    uses: evaluate
    matrix: {{variant: [rand, non-static]}}
    inputs: {{model: 'train.${{variant}}.model', tokens: tokenize.tokens, vocab: vocab.vocab}}
  study:
    uses: study
    inputs: {INPUTS}
    with:
      base: {{dataset: toy, batch: 10, maps: 10, seed: 1, pad: bucket, optimizer: sgd, max_norm: 0}}
      space: {{variant: {{choice: [rand, static]}}, lr: {{choice: [0.1, 1.0e+30]}}, epochs: {{choice: [2, 3]}}}}
  neighbours.toy:
    uses: neighbours
    inputs: {{model: train.non-static.model, embeddings: embed.embeddings, vocab: vocab.vocab}}
    with: {{words: [great, awful, zzz], k: 3}}
  tsne.toy:
    uses: tsne
    inputs: {{model: train.non-static.model, embeddings: embed.embeddings, vocab: vocab.vocab, tokens: tokenize.tokens}}
    with: {{epochs: 300}}
{REPORT}"
    )
}

fn page_dir(p: &Project) -> std::path::PathBuf {
    p.path().join("artifacts/reports/report")
}

/// Where a test keeps what a person should look at (the screenshot).
fn output_dir(test: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_page_of_a_pipeline_opens_offline_in_a_browser_with_every_figure() {
    let p = Project::new(&pipeline());
    common::write_toy_data(&p);
    let r = p.run(&["report"]).ok();
    let page = page_dir(&p).join("index.html");
    assert!(r.stdout.contains(&format!("report: {}", page.display())), "{}", r.stdout);
    for f in kimcnn_report::FIGURES {
        for ext in ["svg", "png", "parquet"] {
            let file = page_dir(&p).join(format!("figures/{f}.{ext}"));
            assert!(std::fs::metadata(&file).is_ok_and(|m| m.len() > 100), "{}", file.display());
        }
    }
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: every image inline, no address outside the file.
    assert_eq!(html.matches("<img ").count(), kimcnn_report::FIGURES.len());
    assert_eq!(html.matches("src=\"data:image/svg+xml;base64,").count(), kimcnn_report::FIGURES.len());
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<link") && !html.contains("<script"), "{html}");
    // The copy ends with this run's lock hash and each stage's wall time.
    let lock_id = kimcnn_store::hash_file(&p.path().join("pipeline.lock")).unwrap();
    assert!(html.contains(&format!("pipeline.lock BLAKE3 {lock_id}: ")), "{html}");
    assert!(html.contains("<tr><td>train.rand</td><td>train</td><td>"), "{html}");
    let md = std::fs::read_to_string(page_dir(&p).join("report.md")).unwrap();
    assert!(md.contains("![accuracy](figures/accuracy.png)") && md.contains("| CNN-non-static | "), "{md}");

    // In a real browser: every image loads, nothing is logged, nothing requested but the file.
    let out = output_dir("report-page");
    let shot = out.join("screenshot.png");
    let seen = browser::render(&page, &shot);
    eprintln!("screenshot: {}", shot.display());
    assert_eq!(seen.images.len(), kimcnn_report::FIGURES.len(), "{seen:?}");
    assert!(seen.images.iter().all(|(_, loaded)| *loaded), "{:?}", seen.images);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    let outside: Vec<&String> =
        seen.requests.iter().filter(|u| !u.starts_with("data:") && **u != format!("file://{}", page.display())).collect();
    assert!(outside.is_empty(), "{outside:?}");
    // What a reader sees: Kim's table with this run's figures, the study with its failed trials.
    for want in [
        "Kim's Table 2, this run",
        "CNN-rand",
        "Kim (2014)",
        "Study study",
        "4 trials (2 completed, 0 stopped early, 2 failed)",
        "Results per data set",
        "TOY",
        "F1 pos",
        "Failed: trial 2 (lr=1e+30 variant=rand): diverged",
        "Kim's Table 3",
        "not in the vocabulary",
        "tokenize",
        "How it was produced",
        "This run",
    ] {
        assert!(seen.text.contains(want), "`{want}` not on the page:\n{}", seen.text);
    }
    assert!(std::fs::metadata(&shot).unwrap().len() > 50_000, "a blank screenshot?");

    // Table 3's rows: k neighbours of each word in the vocabulary, one row saying so for `zzz`.
    let rows = kimcnn_schema::read_neighbours(&p.path().join("artifacts/out/neighbours.toy/table")).unwrap();
    assert_eq!(rows.len(), 3 + 3 + 1);
    assert!(rows.iter().any(|r| r.query == "great" && r.rank == 1 && r.static_cosine.is_finite()));
    assert!(rows.iter().any(|r| r.query == "zzz" && r.rank == 0));
    // The t-SNE map: every word of the toy vocabulary, reproducible to the byte.
    let points = kimcnn_schema::read_tsne(&p.path().join("artifacts/out/tsne.toy/points")).unwrap();
    assert_eq!(points.len(), 12);
    let great = points.iter().find(|p| p.word == "great").unwrap();
    assert_eq!((great.class_share, great.majority.as_str()), (1.0, "pos"), "`great` occurs in positive sentences only");
    // The maps, the table and the page itself: recomputed in scratch, the same bytes.
    let r = p.run(&["verify", "--recompute", "tsne.toy", "neighbours.toy", "report"]).ok();
    assert!(r.stdout.contains("tsne.toy") && r.stdout.contains("report") && !r.stdout.contains("differ"), "{}", r.stdout);

    // The data behind a figure: a row per trial per budget, failed ones kept.
    let r = p.run(&["show", "report/budgets_data", "--rows", "0"]).ok();
    assert!(r.stdout.contains("parquet, 8 rows"), "{}", r.stdout);
    // Cached until an input changes; `show` says where the page is.
    let r = p.run(&["report"]).ok();
    assert!(r.ran().is_empty(), "{}", r.stdout);
    let r = p.run(&["show", "report"]).ok();
    assert!(r.stdout.contains(&format!("the page: {}", page.display())), "{}", r.stdout);
    let r = p.run(&["report", "--set", "report.title=Toy results"]).ok();
    assert_eq!(r.ran(), ["report"], "{}", r.stdout);
    assert!(std::fs::read_to_string(&page).unwrap().contains("<h1>Toy results</h1>"));
}

#[test]
fn a_report_over_nothing_is_a_page_that_says_so() {
    let p = Project::new(&format!("stages:\n{REPORT}"));
    p.run(&["report"]).ok();
    let html = std::fs::read_to_string(page_dir(&p).join("index.html")).unwrap();
    assert!(html.contains("No evaluated runs yet") && html.contains("No study has run"), "{html}");
    let lock_id = kimcnn_store::hash_file(&p.path().join("pipeline.lock")).unwrap();
    assert!(html.contains(&format!("pipeline.lock BLAKE3 {lock_id}: 1 stage,")), "{html}");
    let md = std::fs::read_to_string(page_dir(&p).join("report.md")).unwrap();
    assert!(md.contains("No evaluated runs yet"), "{md}");
    // `make accuracy`'s side-by-side file, beside Table 2; a damaged one is one line naming it.
    p.write(
        "acc.json",
        r#"{"epochs": 25, "kimcnn": {"trec": {"static": [91.0, 92.0]}}, "reference": {"trec": {"static": [90.0]}}, "fasttext": {"trec": [85.5, 86.5]}}"#,
    );
    p.run(&["report", "--set", "report.accuracy_benchmark=acc.json"]).ok();
    let md = std::fs::read_to_string(page_dir(&p).join("report.md")).unwrap();
    assert!(md.contains("| trec | static | 91.5 ± 0.7 (2) | 90.0 ± 0.0 (1) | 86.0 ± 0.7 (2) | 92.8 |"), "{md}");
    p.write("acc.json", r#"{"epochs": 25, "kimcnn": {}}"#);
    let r = p.run(&["report", "--set", "report.accuracy_benchmark=acc.json"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("acc.json") && r.stderr.contains("missing field `reference`"), "{}", r.stderr);
    let r = p.run(&["report", "--set", "report.accuracy_benchmark=none.json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("none.json") && r.stderr.contains("`make accuracy` writes it"), "{}", r.stderr);
}

#[test]
fn hangul_labels_need_a_hangul_font_and_say_which_package_has_it() {
    // Korean class names: the confusion matrices label them.
    let korean = |tsv: String| tsv.replace("\tpos\n", "\t긍정\n").replace("\tneg\n", "\t부정\n");
    let stages = format!(
        "stages:\n{TOY_STAGES}  train.ko:
    uses: train
    inputs: {INPUTS}
    with: {{dataset: toy, variant: rand, epochs: 2, batch: 10, maps: 10, seed: 1, pad: bucket}}
  evaluate.ko:
    uses: evaluate
    inputs: {{model: train.ko.model, tokens: tokenize.tokens, vocab: vocab.vocab}}
{REPORT}"
    );
    let p = Project::new(&stages);
    common::write_toy_data(&p);
    p.write("train.tsv", &korean(common::toy_tsv(400, 0)));
    p.write("test.tsv", &korean(common::toy_tsv(60, 1000)));
    // Fonts from a directory with only the Latin one.
    let fonts = tempfile::tempdir().unwrap();
    let latin = kimcnn_report::fonts::find(kimcnn_report::fonts::Script::Latin).expect("DejaVu Sans is installed (make test installs it)");
    std::fs::copy(&latin, fonts.path().join("DejaVuSans.ttf")).unwrap();
    let mut c = p.cmd(&["report"]);
    c.env("KIMCNN_FONTS", fonts.path());
    let r = p.run_cmd(c);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let line = r.stderr.lines().chain(r.stdout.lines()).find(|l| l.contains("NanumGothic.ttf")).unwrap_or_default().to_string();
    assert!(line.contains("no font for Hangul labels") && line.contains("apt-get install fonts-nanum"), "{}{}", r.stdout, r.stderr);
    assert!(!page_dir(&p).exists());
    // With the system's fonts (fonts-nanum installed by make test) it draws them.
    p.run(&["report"]).ok();
    let svg = std::fs::read_to_string(page_dir(&p).join("figures/confusion.svg")).unwrap();
    assert!(svg.contains("긍정") && svg.contains("NanumGothic"), "{svg}");
}

#[test]
fn word_vectors_of_different_vocabularies_are_refused() {
    let stages = format!(
        "stages:\n{TOY_STAGES}  vocab.small: {{uses: vocab, inputs: {{tokens: tokenize.tokens}}, with: {{max_size: 8}}}}
  train:
    uses: train
    inputs: {INPUTS}
    with: {{dataset: toy, variant: non-static, epochs: 2, batch: 10, maps: 10, seed: 1, pad: bucket}}
  tsne.mixed:
    uses: tsne
    inputs: {{model: train.model, embeddings: embed.embeddings, vocab: vocab.small.vocab, tokens: tokenize.tokens}}
  neighbours.rand:
    uses: neighbours
    inputs: {{model: train.model, embeddings: embed.embeddings, vocab: vocab.vocab}}
"
    );
    let p = Project::new(&stages);
    common::write_toy_data(&p);
    let r = p.run(&["run", "tsne.mixed"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("tsne.mixed") && all.contains("runs over different vocabularies: the model was trained on vocabulary"), "{all}");
    assert!(!p.path().join("artifacts/out/tsne.mixed").exists());
    // A model that did not fine-tune: refused, naming what to give instead.
    let r = p.run(&["run", "neighbours.rand", "--set", "train.variant=static"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(format!("{}{}", r.stdout, r.stderr)
        .contains("a CNN-static model did not fine-tune the pretrained vectors (give a non-static or multichannel model)"));
    p.run(&["verify"]).ok();
}
