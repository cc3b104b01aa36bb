//! `kimcnn init`: a working pipeline.yaml for a user's own labelled data.
//!
//! It reads the data once (the header, the labels, a sample of the text) so
//! that what it writes runs: the columns exist, there are two or more
//! labels, a test file's labels are the training file's, the text is UTF-8,
//! and the cleaner suits the script (Kim's clean_str deletes every letter
//! that is not ASCII). Everything else is a param in the file it writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;

use crate::Failure;

/// Column names tried, in order, when `--text-column` / `--label-column` are not given.
const TEXT_COLUMNS: [&str; 5] = ["text", "sentence", "document", "review", "content"];
const LABEL_COLUMNS: [&str; 5] = ["label", "class", "sentiment", "category", "target"];
const VARIANTS: [&str; 4] = ["rand", "static", "non-static", "multichannel"];
/// Texts sampled to choose the cleaner.
const SAMPLE: usize = 2000;

#[derive(clap::Args)]
pub struct InitArgs {
    /// The project directory to write pipeline.yaml into (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Labelled data: one TSV or CSV file with a header row naming a text and a label column,
    /// or one plain-text file per class (a sentence a line; the file's name is the label).
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    data: Vec<PathBuf>,
    /// A test file laid out as --data (TSV/CSV). Without one, the data is split into 10 folds
    /// (Kim's protocol for MR) and fold 0 is the test set.
    #[arg(long, value_name = "FILE")]
    test: Option<PathBuf>,
    /// The layout of --data [default: .csv is csv, several files are lines, else tsv].
    #[arg(long, value_enum)]
    format: Option<Layout>,
    /// TSV/CSV: the text column [default: the first of text, sentence, document, review, content].
    #[arg(long)]
    text_column: Option<String>,
    /// TSV/CSV: the label column [default: the first of label, class, sentiment, category, target].
    #[arg(long)]
    label_column: Option<String>,
    /// Pretrained word vectors: word2vec (binary or text), GloVe or fastText .vec, plain or gzip.
    /// Without: word2vec skip-gram vectors trained here on your training text (and --corpus).
    #[arg(long, value_name = "FILE")]
    vectors: Option<PathBuf>,
    /// Unlabeled text, a document a line (plain or gzip), that the trained tokenizer and word
    /// vectors also learn from.
    #[arg(long, value_name = "FILE")]
    corpus: Option<PathBuf>,
    /// Token units: whitespace words after cleaning, or units of a tokenizer trained on your
    /// training text: syllable (characters), unigram (SentencePiece-style), bpe, wordpiece. For
    /// Korean and other languages whose words take many endings, try syllable or unigram.
    #[arg(long, value_enum, default_value = "words")]
    units: Units,
    /// The trained tokenizer's vocabulary size (unigram, bpe, wordpiece).
    #[arg(long, default_value_t = 8000)]
    vocab_size: usize,
    /// Text cleaning: kim (Kim's clean_str, for English) or unicode (any script)
    /// [default: unicode when most letters in the data are not ASCII, else kim].
    #[arg(long, value_enum)]
    cleaner: Option<CleanerArg>,
    /// The CNN variants to train (comma-separated): rand, static, non-static, multichannel.
    #[arg(long, value_delimiter = ',', default_value = "non-static")]
    variants: Vec<String>,
    /// Training epochs (the model is the best epoch on dev, 10% of the training rows).
    #[arg(long, default_value_t = 25)]
    epochs: u32,
    /// The data set's name in stage names (train.NAME.non-static) and reports [default: the
    /// data file's name; the project directory's for a file per class or a file named train].
    #[arg(long)]
    name: Option<String>,
    /// Overwrite an existing pipeline.yaml.
    #[arg(long)]
    force: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Layout {
    /// Tab-separated, header row first.
    Tsv,
    /// Comma-separated (quoted fields allowed), header row first.
    Csv,
    /// One file per class, a sentence a line.
    Lines,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Units {
    Words,
    Syllable,
    Unigram,
    Bpe,
    Wordpiece,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CleanerArg {
    Kim,
    Unicode,
}

/// What reading the data found.
struct Data {
    layout: Layout,
    /// TSV/CSV: the text and label columns.
    columns: Option<(String, String)>,
    /// Rows per label, over --data.
    labels: BTreeMap<String, usize>,
    test_rows: usize,
    /// Letters in the sampled text: (ASCII, not ASCII).
    letters: (usize, usize),
    latin1: Latin1,
}

pub fn init(a: &InitArgs) -> Result<ExitCode, Failure> {
    let bad = |m: String| Failure(m, 2);
    for v in &a.variants {
        if !VARIANTS.contains(&v.as_str()) {
            return Err(bad(format!("--variants: unknown variant `{v}` (choose from {})", VARIANTS.join(", "))));
        }
    }
    if let Some(n) = &a.name {
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(bad(format!("--name `{n}`: use letters, digits, `-` and `_` (it becomes part of stage names)")));
        }
    }
    if a.epochs == 0 {
        return Err(bad("--epochs must be at least 1".into()));
    }
    for f in a.data.iter().chain(&a.test).chain(&a.vectors).chain(&a.corpus) {
        if !f.is_file() {
            return Err(bad(format!("{}: no such file", f.display())));
        }
    }
    let out = a.dir.join("pipeline.yaml");
    if out.exists() && !a.force {
        return Err(bad(format!("{} exists (pass --force to overwrite it)", out.display())));
    }
    let data = inspect(a).map_err(bad)?;
    std::fs::create_dir_all(&a.dir).map_err(|e| Failure(format!("{}: {e}", a.dir.display()), 1))?;
    let dir = a.dir.canonicalize().map_err(|e| Failure(format!("{}: {e}", a.dir.display()), 1))?;
    let cleaner = match a.cleaner {
        Some(c) => c,
        None if data.letters.1 > data.letters.0 => CleanerArg::Unicode,
        None => CleanerArg::Kim,
    };
    let (yaml, outside) = pipeline(a, &data, cleaner, &dir)?;
    std::fs::write(&out, yaml).map_err(|e| Failure(format!("{}: {e}", out.display()), 1))?;
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "/artifacts\n/.kimcnn/\n").map_err(|e| Failure(format!("{}: {e}", ignore.display()), 1))?;
    }

    let total: usize = data.labels.values().sum();
    let labels: Vec<String> = data.labels.iter().map(|(l, n)| format!("{l} ({n})")).collect();
    println!("wrote {}", out.display());
    println!("  data: {total} rows, {} labels: {}", data.labels.len(), labels.join(", "));
    match &a.test {
        Some(t) => println!("  test: {} ({} rows)", t.display(), data.test_rows),
        None => println!("  test: fold 0 of 10 (no test file given)"),
    }
    let why = match (a.cleaner, cleaner) {
        (Some(_), _) => "as asked",
        (None, CleanerArg::Unicode) => "most letters are not ASCII, which Kim's clean_str would delete",
        (None, CleanerArg::Kim) => "Kim's clean_str: the text is mostly ASCII",
    };
    println!("  cleaner: {} ({why})", cleaner.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default());
    if let Latin1 { lines, first: Some((f, line)) } = &data.latin1 {
        println!(
            "  note: {lines} lines are not UTF-8 (the first: {} line {line}); they are read as Latin-1 \
             (encoding: utf8-latin1). If the file is in another encoding (EUC-KR, CP949, ...), convert it to UTF-8 first.",
            f.display()
        );
    }
    if cleaner == CleanerArg::Unicode && a.units == Units::Words {
        println!(
            "  tip: for Korean and other languages whose words take many endings, a trained tokenizer helps: \
             on NSMC, --units unigram scored 87.7% against 83.5% for words (README.md, \"Korean\")"
        );
    }
    for f in outside {
        println!("  note: {f} is outside {} and is named by its absolute path: copy it in to share the project", dir.display());
    }
    let name = dataset_name(a, &dir);
    let cd = if a.dir == Path::new(".") { String::new() } else { format!("cd {} && ", a.dir.display()) };
    println!("next:\n  {cd}kimcnn run          # tokenize, vectors, train and evaluate (kimcnn dag shows the stages)");
    let variant = a.variants.iter().find(|v| *v == "non-static").unwrap_or(&a.variants[0]);
    println!("  kimcnn predict --model train.{name}.{variant} \"a sentence to classify\"");
    println!("  kimcnn report --open    # the results page");
    Ok(ExitCode::SUCCESS)
}

/// Reads --data (and --test): the layout, the columns, the labels and a sample of the text.
fn inspect(a: &InitArgs) -> Result<Data, String> {
    let layout = a.format.unwrap_or(match a.data.as_slice() {
        [one] if one.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) => Layout::Csv,
        [_] => Layout::Tsv,
        _ => Layout::Lines,
    });
    let mut d = Data { layout, columns: None, labels: BTreeMap::new(), test_rows: 0, letters: (0, 0), latin1: Latin1::default() };
    let mut sampled = 0;
    let mut sample = |text: &str, letters: &mut (usize, usize)| {
        if sampled < SAMPLE {
            sampled += 1;
            for c in text.chars().filter(|c| c.is_alphabetic()) {
                if c.is_ascii() {
                    letters.0 += 1
                } else {
                    letters.1 += 1
                }
            }
        }
    };
    match layout {
        Layout::Lines => {
            if a.data.len() < 2 {
                return Err("one file per class needs two or more --data files (or pass --format tsv or csv)".into());
            }
            if a.test.is_some() {
                return Err("--test needs TSV or CSV data; one-file-per-class data is split into 10 folds".into());
            }
            for f in &a.data {
                let label = class_name(f);
                let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
                let mut n = 0;
                for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
                    let (l, latin1) = decode(raw);
                    if latin1 {
                        d.latin1.note(f, i as u64 + 1);
                    }
                    if !l.trim().is_empty() {
                        n += 1;
                        sample(&l, &mut d.letters);
                    }
                }
                if n == 0 {
                    return Err(format!("{}: no sentences", f.display()));
                }
                if d.labels.insert(label.clone(), n).is_some() {
                    return Err(format!("{}: two --data files give the label `{label}` (labels are the files' names)", f.display()));
                }
            }
        }
        Layout::Tsv | Layout::Csv => {
            let [f] = a.data.as_slice() else {
                return Err("TSV/CSV data is one --data file (several files are one per class: --format lines)".into());
            };
            let (text, label) = columns(a, f, layout)?;
            table(f, layout, &text, &label, &mut d.latin1, |l, t| {
                *d.labels.entry(l.to_string()).or_default() += 1;
                sample(t, &mut d.letters);
            })?;
            if let Some(t) = &a.test {
                let mut unknown = None;
                table(t, layout, &text, &label, &mut d.latin1, |l, _| {
                    d.test_rows += 1;
                    if unknown.is_none() && !d.labels.contains_key(l) {
                        unknown = Some(l.to_string());
                    }
                })?;
                if let Some(l) = unknown {
                    return Err(format!(
                        "{}: label `{l}` is not in {} (a model can only predict the labels it trained on)",
                        t.display(),
                        f.display()
                    ));
                }
                if d.test_rows == 0 {
                    return Err(format!("{}: no rows", t.display()));
                }
            }
            let rows: usize = d.labels.values().sum();
            if rows > 20 && d.labels.len() * 2 > rows {
                return Err(format!(
                    "{}: column `{label}` has {} different values in {rows} rows: is it the text? (--label-column)",
                    f.display(),
                    d.labels.len()
                ));
            }
            d.columns = Some((text, label));
        }
    }
    match d.labels.len() {
        0 => Err(format!("{}: no rows", a.data[0].display())),
        1 => Err(format!(
            "{}: every row has the label `{}`: a classifier needs two or more",
            a.data[0].display(),
            d.labels.keys().next().map(String::as_str).unwrap_or_default()
        )),
        _ => Ok(d),
    }
}

/// Lines that are not UTF-8, read as Latin-1 (as the tokenize stage's `utf8-latin1` encoding does).
#[derive(Default)]
struct Latin1 {
    lines: usize,
    /// The first one: file and line.
    first: Option<(PathBuf, u64)>,
}

impl Latin1 {
    fn note(&mut self, f: &Path, line: u64) {
        self.lines += 1;
        self.first.get_or_insert_with(|| (f.to_path_buf(), line));
    }
}

/// UTF-8, or else Latin-1 (true).
fn decode(raw: &[u8]) -> (std::borrow::Cow<'_, str>, bool) {
    match std::str::from_utf8(raw) {
        Ok(s) => (s.into(), false),
        Err(_) => (raw.iter().map(|&b| b as char).collect::<String>().into(), true),
    }
}

fn reader(f: &Path, layout: Layout) -> Result<csv::Reader<std::fs::File>, String> {
    let (delim, quoting) = if layout == Layout::Csv { (b',', true) } else { (b'\t', false) };
    csv::ReaderBuilder::new().delimiter(delim).quoting(quoting).flexible(true).from_path(f).map_err(|e| format!("{}: {e}", f.display()))
}

/// The text and label columns: as given, or the first known names in the header.
fn columns(a: &InitArgs, f: &Path, layout: Layout) -> Result<(String, String), String> {
    let mut r = reader(f, layout)?;
    let header: Vec<String> = r
        .byte_headers()
        .map_err(|e| format!("{} line 1: cannot read the header: {e}", f.display()))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    let pick = |given: &Option<String>, known: &[&str], what: &str, flag: &str| -> Result<String, String> {
        let found = match given {
            Some(g) => header.iter().find(|h| *h == g),
            None => known.iter().find_map(|k| header.iter().find(|h| h.eq_ignore_ascii_case(k))),
        };
        found.cloned().ok_or_else(|| {
            let looked = given.as_ref().map(|g| format!("`{g}`")).unwrap_or_else(|| known.join(", "));
            let sep = if layout == Layout::Csv { "commas" } else { "tabs" };
            format!(
                "{} line 1: no {what} column ({looked}) in the header [{}] (name it with {flag}; the header is split at {sep})",
                f.display(),
                header.join(" | ")
            )
        })
    };
    let text = pick(&a.text_column, &TEXT_COLUMNS, "text", "--text-column")?;
    let label = pick(&a.label_column, &LABEL_COLUMNS, "label", "--label-column")?;
    if text == label {
        return Err(format!("{}: the text and label columns are both `{text}`", f.display()));
    }
    Ok((text, label))
}

/// Calls `row(label, text)` for every row of a TSV/CSV file with a non-empty text.
fn table(f: &Path, layout: Layout, text: &str, label: &str, latin1: &mut Latin1, mut row: impl FnMut(&str, &str)) -> Result<(), String> {
    let mut r = reader(f, layout)?;
    let header = r.byte_headers().map_err(|e| format!("{} line 1: {e}", f.display()))?.clone();
    let col = |want: &str| {
        header
            .iter()
            .position(|h| String::from_utf8_lossy(h).trim() == want)
            .ok_or_else(|| format!("{} line 1: no `{want}` column", f.display()))
    };
    let (ti, li) = (col(text)?, col(label)?);
    let mut rec = csv::ByteRecord::new();
    loop {
        match r.read_byte_record(&mut rec) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(format!("{} line {}: {e}", f.display(), e.position().map(|p| p.line()).unwrap_or(0))),
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let (Some(l), Some(t)) = (rec.get(li), rec.get(ti)) else {
            return Err(format!("{} line {line}: too few fields (the header has {})", f.display(), header.len()));
        };
        let ((l, a), (t, b)) = (decode(l), decode(t));
        if a || b {
            latin1.note(f, line);
        }
        let (l, t) = (l.trim(), t.trim());
        if l.is_empty() {
            return Err(format!("{} line {line}: no label", f.display()));
        }
        if !t.is_empty() {
            row(l, t);
        }
    }
}

/// A label or data-set name from a file name: lower-case letters, digits, `-` and `_`.
fn class_name(f: &Path) -> String {
    let stem = f.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let s: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "data".into()
    } else {
        s
    }
}

/// The data set's name in stage names and reports: --name, or the data file's name (the
/// project directory's for one file per class, or a file named train or data).
fn dataset_name(a: &InitArgs, dir: &Path) -> String {
    if let Some(n) = &a.name {
        return n.clone();
    }
    match a.data.as_slice() {
        [one] if !["train", "data", "dataset"].contains(&class_name(one).as_str()) => class_name(one),
        _ => class_name(Path::new(dir.file_name().unwrap_or_default())),
    }
}

/// A path as pipeline.yaml names it: relative to the project directory when inside it, else
/// absolute (returned in the second list, to say so).
fn yaml_path(f: &Path, dir: &Path, outside: &mut Vec<String>) -> Result<String, Failure> {
    let abs = f.canonicalize().map_err(|e| Failure(format!("{}: {e}", f.display()), 2))?;
    let p = match abs.strip_prefix(dir) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => {
            outside.push(f.display().to_string());
            abs.display().to_string()
        }
    };
    Ok(quote(&p))
}

/// A YAML double-quoted scalar (JSON's string syntax is YAML's).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The pipeline.yaml text, and the files named by absolute path.
fn pipeline(a: &InitArgs, d: &Data, cleaner: CleanerArg, dir: &Path) -> Result<(String, Vec<String>), Failure> {
    let mut outside = Vec::new();
    let name = dataset_name(a, dir);
    let folds = a.test.is_none();
    let mut y = String::new();
    let mut line = |s: &str| {
        y.push_str(s);
        y.push('\n');
    };
    let files: Vec<String> = a.data.iter().map(|f| f.display().to_string()).collect();
    line(&format!("# kimcnn pipeline for {}, written by `kimcnn init`.", files.join(", ")));
    line("# `kimcnn run` runs what is stale, `kimcnn dag` shows the stages, `kimcnn status`");
    line("# why a stage would rerun. Every stage caches: change a param and `kimcnn run`");
    line("# recomputes only what it changes. Params: README.md, \"Stage kinds\".");
    line("params:");
    line("  seed: 3435");
    line(&format!("  epochs: {}", a.epochs));
    line(&format!("  variants: [{}]   # any of rand, static, non-static, multichannel", a.variants.join(", ")));
    line("");
    line("stages:");

    // Sources.
    let mut inputs: Vec<(String, String)> = Vec::new();
    match d.layout {
        Layout::Lines => {
            for f in &a.data {
                let class = class_name(f);
                line(&format!("  data.{class}: {{ uses: source, with: {{ path: {} }} }}", yaml_path(f, dir, &mut outside)?));
                inputs.push((class.clone(), format!("data.{class}.data")));
            }
        }
        Layout::Tsv | Layout::Csv => {
            line(&format!("  data.train: {{ uses: source, with: {{ path: {} }} }}", yaml_path(&a.data[0], dir, &mut outside)?));
            inputs.push(("train".into(), "data.train.data".into()));
            if let Some(t) = &a.test {
                line(&format!("  data.test: {{ uses: source, with: {{ path: {} }} }}", yaml_path(t, dir, &mut outside)?));
                inputs.push(("test".into(), "data.test.data".into()));
            }
        }
    }
    if let Some(c) = &a.corpus {
        line(&format!("  data.corpus: {{ uses: source, with: {{ path: {} }} }}", yaml_path(c, dir, &mut outside)?));
    }
    if let Some(v) = &a.vectors {
        line(&format!("  data.vectors: {{ uses: source, with: {{ path: {} }} }}", yaml_path(v, dir, &mut outside)?));
    }
    line("");

    // Tokens.
    let mut with = vec![];
    match (&d.layout, &d.columns) {
        (Layout::Lines, _) => {
            with.push("format: lines".to_string());
            let order: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
            with.push(format!("order: [{}]", order.join(", ")));
        }
        (layout, Some((text, label))) => {
            with.push(format!("format: {}", if *layout == Layout::Csv { "csv" } else { "tsv" }));
            with.push(format!("text_column: {}, label_column: {}", quote(text), quote(label)));
            let labels: Vec<String> = d.labels.keys().map(|l| quote(l)).collect();
            with.push(format!("classes: [{}]", labels.join(", ")));
        }
        (_, None) => unreachable!("a table layout has its columns"),
    }
    if d.latin1.lines > 0 {
        with.push("encoding: utf8-latin1".into());
    }
    with.push(format!("cleaner: {}", if cleaner == CleanerArg::Kim { "kim" } else { "unicode" }));
    if folds {
        with.push("folds: 10".into());
    }
    with.push("seed: \"${seed}\"".into());
    let ins: Vec<String> = inputs.iter().map(|(n, s)| format!("{n}: {s}")).collect();
    line(&format!("  # {}", if folds { "10 folds: fold 0 is the test set; 10% of the rest is dev" } else { "10% of train is dev" }));
    line(&format!("  tokenize.{name}:"));
    line("    uses: tokenize");
    line(&format!("    inputs: {{ {} }}", ins.join(", ")));
    line(&format!("    with: {{ {} }}", with.join(", ")));
    let exclude = if folds { ", exclude_fold: 0" } else { "" };
    let corpus = if a.corpus.is_some() { ", corpus: data.corpus.data" } else { "" };
    let (tokens, summary) = match a.units {
        Units::Words => (format!("tokenize.{name}.tokens"), format!("tokenize.{name}.summary")),
        units => {
            let model = units.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            line("  # A tokenizer trained on the training rows (never the test rows); the tokens cut into its units.");
            line(&format!("  subword.{name}:"));
            line("    uses: subword");
            line(&format!("    inputs: {{ tokens: tokenize.{name}.tokens, summary: tokenize.{name}.summary{corpus} }}"));
            line(&format!("    with: {{ model: {model}, vocab_size: {}{exclude} }}", a.vocab_size));
            line(&format!("  segment.{name}:"));
            line("    uses: segment");
            line(&format!(
                "    inputs: {{ tokens: tokenize.{name}.tokens, summary: tokenize.{name}.summary, tokenizer: subword.{name}.tokenizer }}"
            ));
            (format!("segment.{name}.tokens"), format!("segment.{name}.summary"))
        }
    };
    line(&format!("  vocab.{name}:"));
    line("    uses: vocab");
    line(&format!("    inputs: {{ tokens: {tokens} }}"));
    line("    with: { from: all }");
    line("");

    // Word vectors.
    match &a.vectors {
        Some(_) => {
            line("  # Your vectors; words they lack: U[-a, a], a matched to their variance.");
            line(&format!("  embed.{name}:"));
            line("    uses: embed");
            line(&format!("    inputs: {{ vocab: vocab.{name}.vocab, vectors: data.vectors.data }}"));
            line("    with: { unk_init: uniform, seed: \"${seed}\" }");
        }
        None => {
            line("  # word2vec skip-gram vectors trained on the training rows (never the test rows).");
            line("  # threads: 1 gives the same bytes every run; more are faster and vary.");
            line(&format!("  word2vec.{name}:"));
            line("    uses: word2vec");
            line(&format!("    inputs: {{ tokens: {tokens}, summary: {summary}{corpus} }}"));
            line(&format!("    with: {{ arch: skipgram, dim: 100, min_count: 5, epochs: 5, seed: \"${{seed}}\"{exclude} }}"));
            line(&format!("  embed.{name}:"));
            line("    uses: embed");
            line(&format!("    inputs: {{ vocab: vocab.{name}.vocab, vectors: word2vec.{name}.vectors }}"));
            line("    with: { format: word2vec-binary, unk_init: uniform, seed: \"${seed}\" }");
        }
    }
    line("");

    // Train, evaluate, results.
    let fold = if folds { ", fold: 0" } else { "" };
    line("  # Kim's CNN: widths 3,4,5 x 100 maps, dropout 0.5, batch 50, Adadelta; the model");
    line("  # is the epoch with the best dev accuracy (never chosen on test).");
    line(&format!("  train.{name}:"));
    line("    uses: train");
    line("    matrix: { variant: \"${variants}\" }");
    line(&format!(
        "    inputs: {{ tokens: {tokens}, vocab: vocab.{name}.vocab, embeddings: embed.{name}.embeddings, tokenizer: {summary} }}"
    ));
    line(&format!(
        "    with: {{ dataset: {name}, variant: \"${{variant}}\"{fold}, epochs: \"${{epochs}}\", pad: bucket, seed: \"${{seed}}\" }}"
    ));
    line(&format!("  evaluate.{name}:"));
    line("    uses: evaluate");
    line("    matrix: { variant: \"${variants}\" }");
    line(&format!("    inputs: {{ model: \"train.{name}.${{variant}}.model\", tokens: {tokens}, vocab: vocab.{name}.vocab }}"));
    line("");
    line("  results:");
    line("    uses: aggregate");
    line("    inputs: { metrics: \"evaluate.*.metrics\" }");
    line("  # `kimcnn report --open`: one page of every result and figure.");
    line("  report:");
    line("    uses: report");
    line("    inputs:");
    for (input, glob) in [
        ("metrics", "evaluate.*.metrics?"),
        ("model", "train.*.model?"),
        ("history", "train.*.history?"),
        ("timings", "train.*.timings?"),
        ("tokens", "tokenize.*.summary?"),
        ("vocab", "vocab.*.summary?"),
        ("coverage", "embed.*.coverage?"),
    ] {
        line(&format!("      {input}: \"{glob}\""));
    }
    Ok((y, outside))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        init: InitArgs,
    }

    /// `kimcnn init ARGS` in a fresh directory holding the files it names.
    fn init_in(dir: &Path, args: &[&str]) -> Result<ExitCode, Failure> {
        let mut all = vec!["init".to_string(), dir.join("proj").display().to_string()];
        all.extend(args.iter().map(|a| if a.contains('.') { dir.join(a).display().to_string() } else { a.to_string() }));
        init(&Cli::try_parse_from(all).map_err(|e| Failure(e.to_string(), 2))?.init)
    }

    #[test]
    fn every_layout_units_and_vectors_combination_plans() {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
        w("d.tsv", "text\tlabel\n좋은 영화\t1\n나쁜 영화\t0\n".as_bytes());
        w("d.csv", "sentence,class\n\"good, really\",pos\nbad,neg\n".as_bytes());
        w("t.tsv", "text\tlabel\n그저 그런 영화\t0\n".as_bytes());
        w("pos.txt", b"good\n\xa0fine\n");
        w("neg.txt", "bad\n".as_bytes());
        w("v.txt", "good 0.1 0.2\n".as_bytes());
        w("c.txt", "more text\n".as_bytes());
        let cases: &[&[&str]] = &[
            &["--data", "d.tsv", "--test", "t.tsv", "--units", "syllable", "--corpus", "c.txt"],
            &["--data", "d.tsv", "--units", "bpe", "--vectors", "v.txt"],
            &["--data", "d.csv", "--units", "wordpiece", "--variants", "rand,static,multichannel"],
            &["--data", "pos.txt", "neg.txt", "--units", "unigram", "--corpus", "c.txt", "--name", "mine"],
            &["--data", "pos.txt", "neg.txt", "--vectors", "v.txt", "--cleaner", "unicode"],
        ];
        for args in cases {
            init_in(dir.path(), &[args, &["--force"][..]].concat()).unwrap_or_else(|Failure(m, _)| panic!("{args:?}: {m}"));
            let file = dir.path().join("proj/pipeline.yaml");
            let plan = kimcnn_pipeline::Plan::load(&file, &[], None, &crate::registry())
                .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", std::fs::read_to_string(&file).unwrap()));
            let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
            assert!(names.iter().any(|n| n.starts_with("evaluate.")) && names.contains(&"report"), "{args:?}: {names:?}");
        }
        let yaml = std::fs::read_to_string(dir.path().join("proj/pipeline.yaml")).unwrap();
        assert!(yaml.contains("encoding: utf8-latin1") && yaml.contains("train.proj.${variant}.model"), "{yaml}");
    }

    #[test]
    fn names_and_decoding() {
        assert_eq!(class_name(Path::new("dir/My Reviews.v2.tsv")), "my-reviews-v2");
        assert_eq!(class_name(Path::new("긍정.txt")), "data");
        assert_eq!(decode(b"caf\xe9"), ("café".into(), true));
        assert_eq!(decode("좋다".as_bytes()), ("좋다".into(), false));
    }
}
