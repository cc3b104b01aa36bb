use std::collections::BTreeMap;

use crate::{Input, Params, Result, TokenizeError};

/// The layout of a data set's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// One sentence a line, one input file per class (MR: pos/neg, Subj).
    Lines,
    /// `COARSE:fine question` (TREC); the label is the coarse class.
    Trec,
    /// `label sentence` (SST-1, SST-2).
    Sst,
    /// TSV with header `id document label` (NSMC).
    Nsmc,
    /// Tab-separated with a header naming the text and label columns.
    Tsv { text: String, label: String },
    /// Comma-separated (quoted fields allowed), with a header.
    Csv { text: String, label: String },
}

impl Format {
    /// The encoding a format's files come in by default.
    pub fn default_encoding(&self) -> Encoding {
        match self {
            Format::Lines | Format::Trec | Format::Sst => Encoding::Utf8Latin1,
            _ => Encoding::Utf8,
        }
    }
}

kimcnn_schema::named_enum! {
    pub enum Encoding {
        /// UTF-8; a line that is not valid UTF-8 is re-decoded as Latin-1 and counted.
        Utf8Latin1 = "utf8-latin1",
        /// UTF-8 only; invalid bytes are an error naming the line.
        Utf8 = "utf8",
    }
}

/// One sentence as read: where it came from, its label, its raw text.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub input: String,
    pub line: usize,
    pub label: String,
    pub text: String,
    pub split: &'static str,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub skipped: BTreeMap<String, usize>,
    pub redecoded: BTreeMap<String, usize>,
}

const SPLITS: [&str; 3] = ["train", "dev", "test"];

pub(crate) fn read_all(p: &Params, inputs: &[Input]) -> Result<(Vec<Row>, Stats)> {
    let mut stats = Stats::default();
    let mut rows = Vec::new();
    if inputs.is_empty() {
        return Err(TokenizeError::Invalid("no inputs: wire the data set's files as inputs".into()));
    }
    let ordered: Vec<&Input> = if p.format() == Format::Lines {
        let mut names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        names.sort();
        if !p.order.is_empty() {
            let mut o: Vec<&str> = p.order.iter().map(String::as_str).collect();
            o.sort();
            if o != names {
                return Err(TokenizeError::Invalid(format!("`order` must list the inputs ({}) exactly", names.join(", "))));
            }
            p.order.iter().filter_map(|n| inputs.iter().find(|i| &i.name == n)).collect()
        } else {
            names.iter().filter_map(|n| inputs.iter().find(|i| i.name == *n)).collect()
        }
    } else {
        for i in inputs {
            if !SPLITS.contains(&i.name.as_str()) {
                return Err(TokenizeError::Invalid(format!("input `{}`: inputs of this format are named train, dev or test", i.name)));
            }
        }
        SPLITS.iter().filter_map(|s| inputs.iter().find(|i| i.name == *s)).collect()
    };
    for input in ordered {
        let split: &'static str = SPLITS.iter().copied().find(|s| *s == input.name).unwrap_or("train");
        let before = rows.len();
        read_one(p, input, split, &mut rows, &mut stats)?;
        if rows.len() == before {
            return Err(TokenizeError::Invalid(format!("input `{}` ({}): no sentences in it", input.name, input.path.display())));
        }
    }
    if !p.classes.is_empty() {
        let classes: Vec<&str> = p.classes.iter().map(|c| c.0.as_str()).collect();
        for r in &rows {
            if !classes.contains(&r.label.as_str()) {
                return Err(TokenizeError::Line {
                    input: r.input.clone(),
                    line: r.line,
                    message: format!("label `{}` is not one of the classes ({})", r.label, classes.join(", ")),
                });
            }
        }
    }
    Ok((rows, stats))
}

fn read_one(p: &Params, input: &Input, split: &'static str, rows: &mut Vec<Row>, stats: &mut Stats) -> Result<()> {
    let bytes = std::fs::read(&input.path).map_err(|source| TokenizeError::Io { path: input.path.clone(), source })?;
    if bytes.is_empty() {
        return Err(TokenizeError::Invalid(format!("input `{}` ({}): the file is empty", input.name, input.path.display())));
    }
    let name = input.name.clone();
    let line_err = |line: usize, message: String| TokenizeError::Line { input: name.clone(), line, message };
    let mut skipped = 0;
    let mut redecoded = 0;
    let (format, encoding) = (p.format(), p.encoding());
    match &format {
        Format::Lines | Format::Trec | Format::Sst => {
            // A final newline ends the last line; it does not start an empty one.
            let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
                let line = i + 1;
                let text = decode(raw, encoding, &mut redecoded)
                    .ok_or_else(|| line_err(line, "invalid UTF-8 (this format must be UTF-8)".into()))?;
                let text = text.trim();
                if text.is_empty() {
                    skipped += 1;
                    continue;
                }
                let (label, text) = match format {
                    Format::Lines => (input.name.clone(), text.to_string()),
                    Format::Trec => {
                        let (head, rest) = text
                            .split_once(' ')
                            .ok_or_else(|| line_err(line, "expected `COARSE:fine question`, found no question".into()))?;
                        let (coarse, _fine) = head
                            .split_once(':')
                            .ok_or_else(|| line_err(line, format!("expected `COARSE:fine question`, found label `{head}`")))?;
                        if coarse.is_empty() {
                            return Err(line_err(line, "empty label".into()));
                        }
                        (coarse.to_string(), rest.to_string())
                    }
                    _ => {
                        let (label, rest) =
                            text.split_once(' ').ok_or_else(|| line_err(line, "expected `label sentence`, found no label".into()))?;
                        (label.to_string(), rest.to_string())
                    }
                };
                rows.push(Row { input: input.name.clone(), line, label, text, split });
            }
        }
        Format::Nsmc | Format::Tsv { .. } | Format::Csv { .. } => {
            let (text_col, label_col, delim, quoting) = match &format {
                Format::Nsmc => ("document", "label", b'\t', false),
                Format::Tsv { text, label } => (text.as_str(), label.as_str(), b'\t', false),
                Format::Csv { text, label } => (text.as_str(), label.as_str(), b',', true),
                _ => unreachable!("table formats"),
            };
            let mut rdr = csv::ReaderBuilder::new().delimiter(delim).quoting(quoting).flexible(true).from_reader(bytes.as_slice());
            let header = rdr.byte_headers().map_err(|e| line_err(1, format!("cannot read the header: {e}")))?.clone();
            let col = |want: &str| -> Result<usize> {
                header.iter().position(|h| h == want.as_bytes()).ok_or_else(|| {
                    let found: Vec<String> = header.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect();
                    line_err(1, format!("no `{want}` column in the header (found: {})", found.join(", ")))
                })
            };
            let (ti, li) = (col(text_col)?, col(label_col)?);
            let mut rec = csv::ByteRecord::new();
            loop {
                match rdr.read_byte_record(&mut rec) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => {
                        let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                        return Err(line_err(line, format!("unreadable record: {e}")));
                    }
                }
                let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
                let mut field = |i: usize, what: &str| -> Result<String> {
                    let raw = rec.get(i).ok_or_else(|| line_err(line, format!("no {what} (too few fields)")))?;
                    decode(raw, encoding, &mut redecoded)
                        .map(|s| s.trim().to_string())
                        .ok_or_else(|| line_err(line, format!("invalid UTF-8 in the {what} (this format must be UTF-8)")))
                };
                let label = field(li, "label")?;
                let text = field(ti, "text")?;
                if label.is_empty() {
                    return Err(line_err(line, "no label".into()));
                }
                if text.is_empty() {
                    skipped += 1;
                    continue;
                }
                rows.push(Row { input: input.name.clone(), line, label, text, split });
            }
        }
    }
    stats.skipped.insert(input.name.clone(), skipped);
    stats.redecoded.insert(input.name.clone(), redecoded);
    Ok(())
}

/// UTF-8, or (if allowed) Latin-1 for a line that is not valid UTF-8.
fn decode(raw: &[u8], enc: Encoding, redecoded: &mut usize) -> Option<String> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    match std::str::from_utf8(raw) {
        Ok(s) => Some(s.to_string()),
        Err(_) if enc == Encoding::Utf8Latin1 => {
            *redecoded += 1;
            Some(raw.iter().map(|&b| b as char).collect())
        }
        Err(_) => None,
    }
}
