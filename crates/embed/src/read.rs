//! Streaming readers for word-vector files. Hand-written: the crates that
//! read these formats (finalfusion, gensim in Python) load the whole file
//! into memory; the embed stage must not hold a 3.6 GB file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use kimcnn_schema::Named;

use crate::{EmbedError, Result};

/// The layout of a vectors file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorFormat {
    /// Detect: a `count dim` first line means word2vec (binary or text,
    /// told apart by the bytes after the first word); otherwise GloVe.
    Auto,
    /// GloVe text: `word v1 ... vD` lines, no header.
    Glove,
    /// word2vec text, and fastText `.vec`: a `count dim` header, then text lines.
    Word2vecText,
    /// word2vec binary (GoogleNews): header, then `word ` and D little-endian f32s.
    Word2vecBinary,
}

/// `word2vec` and `fasttext` are other names of `word2vec-text`.
impl kimcnn_schema::Named for VectorFormat {
    const ALL: &'static [(&'static str, VectorFormat)] = &[
        ("auto", VectorFormat::Auto),
        ("glove", VectorFormat::Glove),
        ("word2vec-text", VectorFormat::Word2vecText),
        ("word2vec", VectorFormat::Word2vecText),
        ("fasttext", VectorFormat::Word2vecText),
        ("word2vec-binary", VectorFormat::Word2vecBinary),
    ];
}

kimcnn_schema::named_serde!(VectorFormat);

pub(crate) struct StreamStats {
    pub format: VectorFormat,
    pub dim: usize,
    pub words: u64,
}

/// Sum and sum of squares (f64) of a vector's entries.
pub(crate) fn sums(v: &[f32]) -> (f64, f64) {
    let mut s = [0f64; 4];
    let mut q = [0f64; 4];
    let chunks = v.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            let x = c[k] as f64;
            s[k] += x;
            q[k] += x * x;
        }
    }
    for &x in rest {
        s[0] += x as f64;
        q[0] += (x as f64) * (x as f64);
    }
    (s.iter().sum(), q.iter().sum())
}

/// A reader that tells `progress` (bytes read, file size) every 4 MiB.
struct Counting<'p, R> {
    inner: R,
    done: u64,
    told: u64,
    total: u64,
    progress: &'p dyn Fn(u64, u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.told >= 4 << 20 || (n == 0 && self.done != self.told) {
            self.told = self.done;
            (self.progress)(self.done, self.total);
        }
        Ok(n)
    }
}

/// Calls `each(word, vector)` for every entry of the file, in order;
/// `progress` hears how much of the file (as stored: compressed, if so) is read.
pub(crate) fn stream(
    path: &Path,
    label: &str,
    format: VectorFormat,
    declared_dim: Option<usize>,
    progress: &dyn Fn(u64, u64),
    mut each: impl FnMut(&[u8], &[f32]),
) -> Result<StreamStats> {
    let err = |m: String| EmbedError::Vectors { file: label.to_string(), message: m };
    let io = |e: std::io::Error| EmbedError::Io { path: path.to_path_buf(), source: e };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(io)?;
    drop(file);
    let file = File::open(path).map_err(io)?;
    let total = file.metadata().map_err(io)?.len();
    let file = Counting { inner: file, done: 0, told: 0, total, progress };
    let mut r: Box<dyn BufRead + '_> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file))))
    } else {
        Box::new(BufReader::with_capacity(4 << 20, file))
    };

    let mut line = Vec::new();
    let got = read_line(&mut r, &mut line).map_err(io)?;
    if got == 0 {
        return Err(err("the file is empty".into()));
    }
    let header = parse_header(&line);
    let format = match (format, header) {
        (VectorFormat::Glove, _) | (VectorFormat::Auto, None) => VectorFormat::Glove,
        (VectorFormat::Word2vecText | VectorFormat::Word2vecBinary, None) => {
            return Err(err(format!("line 1: expected a `count dim` header for {}, found `{}`", format.name(), preview(&line))))
        }
        (VectorFormat::Auto, Some((_, d))) => {
            if looks_binary(&mut r, d).map_err(io)? {
                VectorFormat::Word2vecBinary
            } else {
                VectorFormat::Word2vecText
            }
        }
        (f, Some(_)) => f,
    };
    if let (Some((_, d)), Some(want)) = (header, declared_dim) {
        if d != want {
            return Err(err(format!("the header declares dimension {d}, but the stage expects {want}")));
        }
    }
    if let Some((_, 0)) = header {
        return Err(err("the header declares dimension 0".into()));
    }

    let mut words = 0u64;
    let mut vec: Vec<f32> = Vec::new();
    let dim = match format {
        VectorFormat::Word2vecBinary => {
            let (count, dim) = header.expect("binary has a header");
            let mut word = Vec::new();
            let mut raw = vec![0u8; 4 * dim];
            vec.resize(dim, 0.0);
            for i in 0..count {
                word.clear();
                // Skip the newline some writers put after each vector.
                loop {
                    let buf = r.fill_buf().map_err(io)?;
                    match buf.iter().position(|&b| b != b'\n' && b != b'\r') {
                        Some(k) => {
                            r.consume(k);
                            break;
                        }
                        None if buf.is_empty() => break,
                        None => {
                            let k = buf.len();
                            r.consume(k);
                        }
                    }
                }
                let n = r.read_until(b' ', &mut word).map_err(io)?;
                if n == 0 {
                    return Err(err(format!("the header says {count} words, but the file ends after {i}")));
                }
                if word.last() != Some(&b' ') {
                    return Err(err(format!("truncated in record {} (word `{}`): no vector", i + 1, preview(&word))));
                }
                word.pop();
                if let Err(e) = r.read_exact(&mut raw) {
                    return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        err(format!("truncated in record {} (word `{}`): fewer than {dim} values", i + 1, preview(&word)))
                    } else {
                        io(e)
                    });
                }
                for (x, c) in vec.iter_mut().zip(raw.chunks_exact(4)) {
                    *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
                each(&word, &vec);
                words += 1;
            }
            // Only newlines may follow the last record.
            let mut rest = Vec::new();
            r.take(4096).read_to_end(&mut rest).map_err(io)?;
            if rest.iter().any(|&b| b != b'\n' && b != b'\r') {
                return Err(err(format!("the header says {count} words, but the file has more")));
            }
            dim
        }
        VectorFormat::Glove | VectorFormat::Word2vecText => {
            let mut dim = header.map(|(_, d)| d);
            let mut lineno = if header.is_some() { 1 } else { 0 };
            let mut have = header.is_none(); // GloVe: `line` already holds the first entry
            loop {
                if !have {
                    line.clear();
                    if read_line(&mut r, &mut line).map_err(io)? == 0 {
                        break;
                    }
                }
                have = false;
                lineno += 1;
                let l = trim_end(&line);
                if l.is_empty() {
                    continue;
                }
                let sp = memchr::memchr(b' ', l).ok_or_else(|| err(format!("line {lineno}: a word with no vector")))?;
                let (word, rest) = (&l[..sp], &l[sp + 1..]);
                vec.clear();
                for field in rest.split(|&b| b == b' ').filter(|f| !f.is_empty()) {
                    let x: f32 = fast_float2::parse(field)
                        .map_err(|_| err(format!("line {lineno}: `{}` (word `{}`) is not a number", preview(field), preview(word))))?;
                    vec.push(x);
                }
                match dim {
                    None => {
                        if declared_dim.is_some_and(|d| d != vec.len()) {
                            return Err(err(format!(
                                "line {lineno}: {} values, but the stage expects dimension {}",
                                vec.len(),
                                declared_dim.unwrap_or(0)
                            )));
                        }
                        dim = Some(vec.len())
                    }
                    Some(d) if d != vec.len() => {
                        return Err(err(format!("line {lineno}: word `{}` has {} values, expected {d}", preview(word), vec.len())))
                    }
                    _ => {}
                }
                each(word, &vec);
                words += 1;
            }
            if let Some((count, _)) = header {
                if words != count as u64 {
                    return Err(err(format!("the header says {count} words, but the file has {words}")));
                }
            }
            dim.ok_or_else(|| err("no vectors in the file".into()))?
        }
        VectorFormat::Auto => unreachable!("resolved above"),
    };
    if words == 0 {
        return Err(err("no vectors in the file".into()));
    }
    Ok(StreamStats { format, dim, words })
}

fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    r.read_until(b'\n', buf)
}

fn trim_end(l: &[u8]) -> &[u8] {
    let mut end = l.len();
    while end > 0 && matches!(l[end - 1], b'\n' | b'\r' | b' ') {
        end -= 1;
    }
    &l[..end]
}

fn parse_header(line: &[u8]) -> Option<(usize, usize)> {
    let s = std::str::from_utf8(trim_end(line)).ok()?;
    let mut it = s.split_whitespace();
    let (a, b) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?);
    it.next().is_none().then_some((a, b))
}

/// After a word2vec header: is the first record binary? In text, the first
/// word is followed by `dim` numbers and a newline; raw float bytes are
/// (for any real file) not.
fn looks_binary(r: &mut dyn BufRead, dim: usize) -> std::io::Result<bool> {
    let buf = r.fill_buf()?;
    let Some(sp) = buf.iter().position(|&b| b == b' ') else { return Ok(false) };
    let rest = &buf[sp + 1..];
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else { return Ok(true) };
    let numbers = rest[..nl].split(|&b| b == b' ' || b == b'\r').filter(|f| !f.is_empty());
    let mut n = 0;
    for f in numbers {
        if fast_float2::parse::<f32, _>(f).is_err() {
            return Ok(true);
        }
        n += 1;
    }
    Ok(n != dim)
}

fn preview(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned();
    if b.len() > 40 {
        format!("{s}...")
    } else {
        s
    }
}
