//! `kimcnn init` on a user's own data, as README shows it: three commands
//! (init, run, predict) from a file to a trained model and a prediction, in
//! English (a CSV file and GloVe vectors) and in Korean (a TSV file, a test
//! file and a trained tokenizer and vectors), on small slices of the real
//! data sets the test writes; then init's bad input.
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;

use common::{mirror, Project};

/// The first `n` lines of a mirror file (gzip by its name).
fn head(path: &Path, n: usize) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r: Box<dyn std::io::Read> =
        if path.extension().is_some_and(|e| e == "gz") { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    // MR has Latin-1 lines: read bytes, keep the lines that are UTF-8.
    BufReader::new(r).split(b'\n').take(n).map(|l| String::from_utf8_lossy(&l.unwrap()).into_owned()).collect()
}

/// A directory for the user's files; `kimcnn init` writes the project in `proj/` beside them.
fn user() -> Project {
    Project::new("")
}

/// An evaluate stage's metrics, through the project's artifacts/out/ link.
fn metrics(project: &Path, stage: &str) -> serde_json::Value {
    let path = project.join("artifacts/out").join(stage).join("metrics");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn labels_of(stdout: &str) -> Vec<String> {
    stdout.lines().map(|l| l.split('\t').next().unwrap_or("").to_string()).collect()
}

#[test]
fn english_csv_with_glove_in_three_commands() {
    let u = user();
    let kim = mirror().join("datasets/kim");
    let mut csv = String::from("id,review,sentiment\n");
    for (i, (pos, neg)) in head(&kim.join("rt-polarity.pos"), 300).iter().zip(head(&kim.join("rt-polarity.neg"), 300)).enumerate() {
        // Quoted fields with commas and quotes in them.
        csv.push_str(&format!("{},\"{}\",pos\n{},\"{}\",neg\n", 2 * i, pos.replace('"', "\"\""), 2 * i + 1, neg.replace('"', "\"\"")));
    }
    u.write("reviews.csv", &csv);
    u.write("glove.txt", &(head(&mirror().join("vectors/glove.6B.50d.txt.gz"), 20_000).join("\n") + "\n"));

    let r = u.run(&["init", "proj", "--data", "reviews.csv", "--vectors", "glove.txt", "--epochs", "3"]).ok();
    assert!(r.stdout.contains("600 rows, 2 labels: neg (300), pos (300)"), "{}", r.stdout);
    assert!(r.stdout.contains("cleaner: kim") && r.stdout.contains("fold 0 of 10"), "{}", r.stdout);
    assert!(r.stdout.contains("kimcnn predict --model train.reviews.non-static"), "{}", r.stdout);
    let yaml = u.read("proj/pipeline.yaml");
    assert!(yaml.contains("text_column: \"review\", label_column: \"sentiment\""), "{yaml}");

    let proj = |args: &[&str]| u.run(&[&["-f", "proj/pipeline.yaml"], args].concat());
    let r = proj(&["run"]).ok();
    for stage in ["tokenize.reviews", "vocab.reviews", "embed.reviews", "train.reviews.non-static", "evaluate.reviews.non-static", "report"]
    {
        assert!(r.ran().contains(&stage.to_string()), "{stage} did not run:\n{}", r.stdout);
    }
    let m = metrics(&u.path().join("proj"), "evaluate.reviews.non-static");
    assert_eq!((m["dataset"].as_str(), m["n"].as_u64()), (Some("reviews"), Some(60)), "{m}");
    let r = proj(&["predict", "--model", "train.reviews.non-static", "a moving , beautiful film", "dull , tedious and far too long"]).ok();
    let labels = labels_of(&r.stdout);
    assert!(labels.len() == 2 && labels.iter().all(|l| l == "pos" || l == "neg"), "{}", r.stdout);
    // Nothing reruns.
    let r = proj(&["run"]).ok();
    assert!(r.ran().is_empty(), "{}", r.stdout);
}

#[test]
fn korean_tsv_with_a_trained_tokenizer_and_vectors_in_three_commands() {
    let u = user();
    let nsmc = mirror().join("datasets/nsmc");
    // The project directory holds the data: the pipeline names it relatively, ready to share.
    std::fs::create_dir(u.path().join("nsmc-small")).unwrap();
    u.write("nsmc-small/train.tsv", &(head(&nsmc.join("ratings_train.txt"), 1201).join("\n") + "\n"));
    u.write("nsmc-small/test.tsv", &(head(&nsmc.join("ratings_test.txt"), 201).join("\n") + "\n"));
    let args =
        ["--data", "nsmc-small/train.tsv", "--test", "nsmc-small/test.tsv", "--units", "unigram", "--vocab-size", "3000", "--epochs", "3"];
    let r = u.run(&[&["init", "nsmc-small"], &args[..]].concat()).ok();
    assert!(r.stdout.contains("1200 rows, 2 labels: 0 (") && r.stdout.contains("test: nsmc-small/test.tsv (200 rows)"), "{}", r.stdout);
    assert!(r.stdout.contains("cleaner: unicode (most letters are not ASCII"), "{}", r.stdout);
    assert!(!r.stdout.contains("outside"), "{}", r.stdout);
    let yaml = u.read("nsmc-small/pipeline.yaml");
    assert!(yaml.contains("path: \"train.tsv\"") && yaml.contains("text_column: \"document\""), "{yaml}");
    let proj = |args: &[&str]| u.run(&[&["-f", "nsmc-small/pipeline.yaml"], args].concat());

    let r = proj(&["run"]).ok();
    for stage in
        ["subword.nsmc-small", "segment.nsmc-small", "word2vec.nsmc-small", "train.nsmc-small.non-static", "evaluate.nsmc-small.non-static"]
    {
        assert!(r.ran().contains(&stage.to_string()), "{stage} did not run:\n{}", r.stdout);
    }
    let m = metrics(&u.path().join("nsmc-small"), "evaluate.nsmc-small.non-static");
    assert_eq!(m["n"].as_u64(), Some(200), "{m}");
    let r = proj(&["predict", "--model", "train.nsmc-small.non-static", "정말 재밌게 봤어요 최고", "시간 낭비 최악의 영화"]).ok();
    let labels = labels_of(&r.stdout);
    assert!(labels.len() == 2 && labels.iter().all(|l| l == "0" || l == "1"), "{}", r.stdout);
}

#[test]
fn bad_input_gets_one_line_and_exit_2_and_writes_nothing() {
    let u = user();
    u.write("ok.tsv", "id\ttext\tlabel\n1\tgood film\tpos\n2\tbad film\tneg\n");
    u.write("cols.tsv", "id\tdocument\tstars\n1\tgood\t5\n");
    u.write("one.tsv", "text\tlabel\ngood\tpos\nfine\tpos\n");
    let many: String = (0..40).map(|i| format!("{i}\tfilm {i}\n")).collect();
    u.write("swapped.tsv", &format!("label\ttext\n{many}"));
    u.write("test.tsv", "text\tlabel\nso so\tmeh\n");
    u.write("short.tsv", "id\ttext\tlabel\n1\tgood film\n");
    for (args, want) in [
        (vec!["--data", "missing.tsv"], "missing.tsv: no such file"),
        (vec!["--data", "cols.tsv"], "cols.tsv line 1: no label column (label, class, sentiment, category, target) in the header [id | document | stars] (name it with --label-column"),
        (vec!["--data", "cols.tsv", "--text-column", "review", "--label-column", "stars"], "no text column (`review`)"),
        (vec!["--data", "one.tsv"], "one.tsv: every row has the label `pos`: a classifier needs two or more"),
        (vec!["--data", "swapped.tsv", "--text-column", "label", "--label-column", "text"], "column `text` has 40 different values in 40 rows: is it the text?"),
        (vec!["--data", "ok.tsv", "--test", "test.tsv"], "test.tsv: label `meh` is not in ok.tsv"),
        (vec!["--data", "short.tsv"], "short.tsv line 2: too few fields"),
        (vec!["--data", "ok.tsv", "ok.tsv", "--format", "tsv"], "TSV/CSV data is one --data file"),
        (vec!["--data", "ok.tsv", "--variants", "static,wide"], "--variants: unknown variant `wide`"),
        (vec!["--data", "ok.tsv", "ok.tsv"], "two --data files give the label `ok`"),
    ] {
        let mut all = vec!["init", "proj"];
        all.extend(&args);
        let r = u.run(&all);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(want) && r.stderr.lines().count() == 1, "{args:?}: {}", r.stderr);
        assert!(!u.path().join("proj/pipeline.yaml").exists(), "{args:?} wrote a pipeline");
    }
    // An existing pipeline is kept unless --force.
    u.run(&["init", "proj", "--data", "ok.tsv"]).ok();
    let before = u.read("proj/pipeline.yaml");
    let r = u.run(&["init", "proj", "--data", "ok.tsv", "--units", "syllable"]);
    assert!(r.code == 2 && r.stderr.contains("proj/pipeline.yaml exists (pass --force"), "{}", r.stderr);
    assert_eq!(u.read("proj/pipeline.yaml"), before);
    u.run(&["init", "proj", "--data", "ok.tsv", "--units", "syllable", "--force"]).ok();
    assert!(u.read("proj/pipeline.yaml").contains("model: syllable"));
}
