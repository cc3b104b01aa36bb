//! An unlabeled corpus (a document a line, plain or gzip) read as the
//! tokenize stage reads its text, for the stages that learn from raw text
//! (a subword tokenizer, word vectors).

use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::Path;

use kimcnn_schema::{CorpusCounts, TokenizerSpec};

use crate::{Result, TokenizeError};

/// Reads `path` (gzip when it starts with gzip's magic bytes), cleans each
/// line with `spec` and hands its words to `each`, up to `max_lines` lines
/// or until `each` breaks. Lines that are empty after cleaning and lines
/// that are not UTF-8 (a corpus of mixed encodings) are skipped and
/// counted, not guessed at.
pub fn read_corpus(
    path: &Path,
    spec: &TokenizerSpec,
    max_lines: Option<u64>,
    mut each: impl FnMut(Vec<String>) -> ControlFlow<()>,
) -> Result<CorpusCounts> {
    let io = |source| TokenizeError::Io { path: path.to_path_buf(), source };
    let mut file = BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(io)?);
    let gzip = file.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    let mut r: Box<dyn BufRead> =
        if gzip { Box::new(BufReader::with_capacity(1 << 20, flate2::bufread::MultiGzDecoder::new(file))) } else { Box::new(file) };
    let mut counts = CorpusCounts::default();
    let mut buf = Vec::new();
    while max_lines.is_none_or(|m| counts.lines < m) {
        buf.clear();
        if r.read_until(b'\n', &mut buf).map_err(io)? == 0 {
            break;
        }
        counts.lines += 1;
        let Ok(line) = std::str::from_utf8(&buf) else {
            counts.invalid_utf8 += 1;
            continue;
        };
        let words = crate::tokenize_text(spec, line);
        if words.is_empty() {
            counts.empty += 1;
            continue;
        }
        counts.used += 1;
        if each(words).is_break() {
            break;
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kimcnn_schema::Cleaner;
    use std::io::Write;

    #[test]
    fn plain_and_gzip_with_bad_lines_counted() {
        let d = tempfile::tempdir().unwrap();
        let text: &[u8] =
            b"Good movie!\n\n   \n\xff\xfe broken\n\xec\xa2\x8b\xec\x95\x84\xec\x9a\x94 \xec\xb5\x9c\xea\xb3\xa0\nlast line no newline";
        let plain = d.path().join("c.txt");
        std::fs::write(&plain, text).unwrap();
        let gz = d.path().join("c.txt.gz");
        let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap();
        let spec = TokenizerSpec { cleaner: Cleaner::Unicode, lower: true, kim_quirk: false, subword: None };
        for p in [&plain, &gz] {
            let mut docs = Vec::new();
            let c = read_corpus(p, &spec, None, |w| {
                docs.push(w.join(" "));
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_eq!(c, CorpusCounts { lines: 6, used: 3, empty: 2, invalid_utf8: 1 }, "{}", p.display());
            assert_eq!(docs, ["good movie !", "좋아요 최고", "last line no newline"]);
        }
        let mut n = 0;
        let c = read_corpus(&gz, &spec, Some(2), |_| {
            n += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!((c.lines, n), (2, 1));
        // `each` stops the reading.
        let c = read_corpus(&plain, &spec, None, |_| ControlFlow::Break(())).unwrap();
        assert_eq!((c.lines, c.used), (1, 1));
        let e = read_corpus(&d.path().join("none.txt"), &spec, None, |_| ControlFlow::Continue(())).unwrap_err();
        assert!(e.to_string().contains("none.txt"), "{e}");
    }
}
