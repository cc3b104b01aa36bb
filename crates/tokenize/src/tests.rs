//! Every reader on small files written here, good and bad.
use super::*;

fn params(format: FormatName) -> Params {
    Params { cleaner: Some(Cleaner::Kim), lower: Some(true), seed: 1, ..Params::new(format) }
}

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().unwrap())
    }
    fn input(&self, name: &str, bytes: &[u8]) -> Input {
        let path = self.0.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        Input { name: name.into(), path }
    }
    fn run(&self, p: &Params, inputs: &[Input]) -> Result<(Summary, TokensTable)> {
        let out = self.0.path().join("tokens.parquet");
        let s = tokenize(p, inputs, None, &out)?;
        Ok((s, TokensTable::read(&out).unwrap()))
    }
}

#[test]
fn mr_style_lines_with_latin1_fallback_and_folds() {
    let f = Files::new();
    let pos = f.input("pos", b"a gr\xe9at film !\n\n it's fine\n");
    let neg = f.input("neg", "caf\u{e9} bad\nworse\n".as_bytes());
    let mut p = params(FormatName::Lines);
    p.folds = Some(2);
    p.order = vec!["pos".into(), "neg".into()];
    let (s, t) = f.run(&p, &[neg, pos]).unwrap();
    assert_eq!(t.label, ["pos", "pos", "neg", "neg"], "read in `order`");
    assert_eq!(t.tokens[0], ["a", "gr", "at", "film", "!"]);
    assert_eq!(t.tokens[1], ["it", "'s", "fine"]);
    assert_eq!(t.origin, ["pos:1", "pos:3", "neg:1", "neg:2"]);
    assert_eq!(s.redecoded_latin1["pos"], 1);
    assert_eq!(s.redecoded_latin1["neg"], 0);
    assert_eq!(s.skipped_blank["pos"], 1);
    let mut folds = t.fold.clone();
    folds.sort();
    assert_eq!(folds, [0, 0, 1, 1]);
    assert!(t.split.iter().all(|s| s == "train"), "k-fold data: dev is carved per fold at training");
    assert_eq!(s.max_len, 5);
}

#[test]
fn trec_keeps_case_and_takes_the_coarse_label_with_a_seeded_dev() {
    let f = Files::new();
    let mut train = String::new();
    for i in 0..20 {
        train.push_str(&format!("NUM:date When did Event {i} happen ?\nLOC:city Where is Town{i} ?\n"));
    }
    let tr = f.input("train", train.as_bytes());
    let te = f.input("test", b"HUM:ind Who wrote Hamlet ?\n");
    let mut p = params(FormatName::Trec);
    p.lower = Some(false);
    let (s, t) = f.run(&p, &[te, tr]).unwrap();
    assert_eq!(t.len(), 41);
    assert_eq!(t.label[0], "NUM");
    assert_eq!(t.tokens[1], ["Where", "is", "Town0", "?"]);
    assert_eq!(t.split[40], "test", "train first, then test");
    assert_eq!(s.splits["dev"], 4);
    assert_eq!(s.splits["train"], 36);
    let bad = f.input("train", b"NUM:date When?\nno label here\n");
    let e = f.run(&p, &[bad]).unwrap_err().to_string();
    assert_eq!(e, "train line 2: expected `COARSE:fine question`, found label `no`");
}

#[test]
fn sst_labels_are_checked_against_the_class_set() {
    let f = Files::new();
    let tr = f.input("train", b"1 a gripping , funny film\n0 dull\n");
    let dv = f.input("dev", b"1 fine\n");
    let te = f.input("test", b"0 awful\n");
    let mut p = params(FormatName::Sst);
    p.cleaner = Some(Cleaner::KimSst);
    p.classes = vec![kimcnn_schema::Text("0".into()), kimcnn_schema::Text("1".into())];
    let (s, t) = f.run(&p, &[tr.clone(), dv.clone(), te]).unwrap();
    assert_eq!(t.split, ["train", "train", "dev", "test"]);
    assert_eq!(t.tokens[0], ["a", "gripping", ",", "funny", "film"]);
    assert_eq!(s.classes["0"], 2);
    let bad = f.input("test", b"0 fine\n7 out of range\n");
    let e = f.run(&p, &[tr.clone(), dv.clone(), bad]).unwrap_err().to_string();
    assert_eq!(e, "test line 2: label `7` is not one of the classes (0, 1)");
    let nolabel = f.input("test", b"0 fine\nlonely\n");
    let e = f.run(&p, &[tr, dv, nolabel]).unwrap_err().to_string();
    assert_eq!(e, "test line 2: expected `label sentence`, found no label");
}

#[test]
fn nsmc_tsv_is_strict_utf8_and_skips_empty_documents() {
    let f = Files::new();
    let tr = f.input("train", "id\tdocument\tlabel\n1\t아 더빙.. 진짜 짜증나네요\t0\n2\t\t1\n3\t\"따옴표\" 좋아요\t1\n".as_bytes());
    let te = f.input("test", "id\tdocument\tlabel\n9\t최고!\t1\n".as_bytes());
    let mut p = params(FormatName::Nsmc);
    p.cleaner = Some(Cleaner::Unicode);
    p.dev_fraction = 0.0;
    let (s, t) = f.run(&p, &[tr, te]).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t.tokens[0], ["아", "더빙", "진짜", "짜증나네요"]);
    assert_eq!(t.tokens[1], ["따옴표", "좋아요"]);
    assert_eq!(t.origin[1], "train:4");
    assert_eq!(s.skipped_blank["train"], 1);
    let bad = f.input("train", b"id\tdocument\tlabel\n1\tok\t0\n2\tbad \xff byte\t1\n");
    let e = f.run(&p, &[bad]).unwrap_err().to_string();
    assert_eq!(e, "train line 3: invalid UTF-8 in the text (this format must be UTF-8)");
    let nolabel = f.input("train", b"id\tdocument\tlabel\n1\tok\t0\n2\tno label\n");
    let e = f.run(&p, &[nolabel]).unwrap_err().to_string();
    assert_eq!(e, "train line 3: no label (too few fields)");
}

#[test]
fn generic_tsv_and_csv_with_named_columns() {
    let f = Files::new();
    let csv = f.input("train", b"label,text\npos,\"good, really\"\nneg,bad\n");
    let p = params(FormatName::Csv);
    let (_, t) = f.run(&p, &[csv]).unwrap();
    assert_eq!(t.tokens[0], ["good", ",", "really"]);
    let tsv = f.input("train", b"sentence\tclass\nfine\tx\n");
    let p = params(FormatName::Tsv);
    let e = f.run(&p, &[tsv]).unwrap_err().to_string();
    assert_eq!(e, "train line 1: no `text` column in the header (found: sentence, class)");
}

#[test]
fn empty_and_missing_files_and_bad_inputs() {
    let f = Files::new();
    let empty = f.input("pos", b"");
    let e = f.run(&params(FormatName::Lines), &[empty]).unwrap_err().to_string();
    assert!(e.starts_with("input `pos` (") && e.ends_with("): the file is empty"), "{e}");
    let blank = f.input("pos", b"\n\n");
    let e = f.run(&params(FormatName::Lines), &[blank]).unwrap_err().to_string();
    assert!(e.ends_with("no sentences in it"), "{e}");
    let e = f.run(&params(FormatName::Lines), &[Input { name: "pos".into(), path: f.0.path().join("nope") }]).unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("No such file"), "{e}");
    let odd = f.input("training", b"1 x\n");
    let e = f.run(&params(FormatName::Sst), &[odd]).unwrap_err().to_string();
    assert_eq!(e, "input `training`: inputs of this format are named train, dev or test");
}

#[test]
fn exact_splits_from_a_json_file() {
    let f = Files::new();
    let pos = f.input("pos", b"a\nb\nc\n");
    let out = f.0.path().join("t.parquet");
    let splits = f.0.path().join("s.json");
    std::fs::write(&splits, r#"{"train": [0, 2], "dev": [1], "test": []}"#).unwrap();
    tokenize(&params(FormatName::Lines), std::slice::from_ref(&pos), Some(&splits), &out).unwrap();
    assert_eq!(TokensTable::read(&out).unwrap().split, ["train", "dev", "train"]);
    std::fs::write(&splits, r#"{"train": [0], "dev": [1], "test": []}"#).unwrap();
    let e = tokenize(&params(FormatName::Lines), std::slice::from_ref(&pos), Some(&splits), &out).unwrap_err().to_string();
    assert_eq!(e, "input `splits`: row 2 is in no split (3 rows in all)");
}

#[test]
fn bad_splits_files_are_refused_naming_the_input_and_the_id() {
    let f = Files::new();
    let pos = f.input("pos", b"a\nb\nc\n");
    let out = f.0.path().join("t.parquet");
    let splits = f.0.path().join("s.json");
    let refused = |json: &str| {
        std::fs::write(&splits, json).unwrap();
        tokenize(&params(FormatName::Lines), std::slice::from_ref(&pos), Some(&splits), &out).unwrap_err().to_string()
    };
    assert_eq!(refused(r#"{"train": [0, 1, 1], "dev": [2], "test": []}"#), "input `splits`: id 1 is listed twice in `train`");
    assert_eq!(refused(r#"{"train": [0, 1], "dev": [2], "test": [1]}"#), "input `splits`: id 1 is listed in `train` and in `test`");
    assert_eq!(refused(r#"{"train": [0, 1], "dev": [3], "test": []}"#), "input `splits`: id 3 in `dev` is past the last row (2)");
    assert_eq!(
        refused(r#"{"train": [0, "1"], "dev": [2], "test": []}"#),
        "input `splits`: `train` holds \"1\", which is not a row id (an integer from 0)"
    );
    assert_eq!(
        refused(r#"{"train": [0, -1], "dev": [2], "test": []}"#),
        "input `splits`: `train` holds -1, which is not a row id (an integer from 0)"
    );
    assert_eq!(refused(r#"{"train": [0, 1], "dev": [2]}"#), "input `splits`: no `test` list");
    assert_eq!(refused("train: [0, 1]\n"), "input `splits`: not JSON: expected ident at line 1 column 3");
    assert!(!out.exists(), "nothing written");
}
