//! Every vectors format, plain and gzip, written by finalfusion (another
//! implementation) and read back here; then every way a file can be bad.
use std::io::Write;

use finalfusion::compat::text::{WriteText, WriteTextDims};
use finalfusion::compat::word2vec::WriteWord2Vec;
use finalfusion::embeddings::Embeddings as FfEmbeddings;
use finalfusion::norms::NdNorms;
use finalfusion::storage::NdArray;
use finalfusion::vocab::SimpleVocab;

use super::*;

const WORDS: [&str; 5] = ["the", "film", "Great", "great", "bad"];

fn pretrained() -> Vec<Vec<f32>> {
    (0..WORDS.len()).map(|i| (0..4).map(|j| (i * 4 + j) as f32 * 0.25 - 2.0).collect()).collect()
}

fn ff() -> FfEmbeddings<SimpleVocab, NdArray> {
    let flat: Vec<f32> = pretrained().concat();
    let arr = ndarray015::Array2::from_shape_vec((WORDS.len(), 4), flat).unwrap();
    let vocab = SimpleVocab::new(WORDS.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    FfEmbeddings::new(None, vocab, NdArray::new(arr), NdNorms::new(ndarray015::Array1::ones(WORDS.len())))
}

fn vocab(words: &[&str]) -> Vocab {
    let mut tokens = vec!["<pad>".to_string(), "<unk>".to_string()];
    tokens.extend(words.iter().map(|w| w.to_string()));
    let counts = (0..tokens.len()).map(|i| if i < 2 { 0 } else { i as u64 }).collect();
    Vocab { tokens, counts }
}

fn params() -> Params {
    Params { seed: 7, ..Params::default() }
}

fn write(dir: &Path, name: &str, bytes: &[u8], gz: bool) -> PathBuf {
    let p = dir.join(name);
    if gz {
        let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap();
    } else {
        std::fs::write(&p, bytes).unwrap();
    }
    p
}

fn formats() -> Vec<(&'static str, Vec<u8>, VectorFormat)> {
    let e = ff();
    let (mut glove, mut w2v_text, mut w2v_bin) = (Vec::new(), Vec::new(), Vec::new());
    e.write_text(&mut glove, true).unwrap();
    e.write_text_dims(&mut w2v_text, true).unwrap();
    e.write_word2vec_binary(&mut w2v_bin, true).unwrap();
    vec![
        ("glove", glove, VectorFormat::Glove),
        ("word2vec-text", w2v_text, VectorFormat::Word2vecText),
        ("word2vec-binary", w2v_bin, VectorFormat::Word2vecBinary),
    ]
}

#[test]
fn every_format_plain_and_gzip_detected_and_declared() {
    let d = tempfile::tempdir().unwrap();
    let v = vocab(&["film", "unseen", "great", "the"]);
    let want = pretrained();
    for (name, bytes, fmt) in formats() {
        for gz in [false, true] {
            for declared in [VectorFormat::Auto, fmt] {
                let path = write(d.path(), name, &bytes, gz);
                let mut p = params();
                p.format = declared;
                let (e, c) = extract(&v, &path, "vectors", &p).unwrap_or_else(|e| panic!("{name} gz={gz}: {e}"));
                assert_eq!(c.format, fmt.name(), "{name}");
                assert_eq!((c.dim, c.pretrained_words), (4, 5));
                assert_eq!(e.matrix.row(2).to_vec(), want[1], "{name} gz={gz}: film");
                assert_eq!(e.matrix.row(4).to_vec(), want[3], "great (exact, not Great)");
                assert_eq!(e.matrix.row(5).to_vec(), want[0]);
                assert_eq!(e.found, [0, 0, 1, 0, 1, 1]);
                assert!(e.matrix.row(0).iter().all(|&x| x == 0.0), "pad row zero");
                assert_eq!((c.words_found, c.vocab_words), (3, 4));
                assert_eq!((c.tokens_found, c.tokens_total), (2 + 4 + 5, 2 + 3 + 4 + 5));
            }
        }
    }
}

#[test]
fn extraction_reports_how_much_of_the_file_it_has_read() {
    let d = tempfile::tempdir().unwrap();
    let (_, bytes, _) = formats().remove(0);
    for gz in [false, true] {
        let path = write(d.path(), "p.txt", &bytes, gz);
        let size = std::fs::metadata(&path).unwrap().len();
        let seen = std::sync::Mutex::new(Vec::new());
        extract_with_progress(&vocab(&["the"]), &path, "vectors", &params(), &|done, total| seen.lock().unwrap().push((done, total)))
            .unwrap();
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.last(), Some(&(size, size)), "gz={gz}: {seen:?}");
    }
}

#[test]
fn unknown_words_match_the_pretrained_variance_and_are_seeded() {
    let d = tempfile::tempdir().unwrap();
    let (_, bytes, _) = formats().remove(0);
    let path = write(d.path(), "g.txt", &bytes, false);
    let v = vocab(&["zz1", "zz2", "the"]);
    let (e, c) = extract(&v, &path, "vectors", &params()).unwrap();
    let all: Vec<f64> = pretrained().concat().iter().map(|&x| x as f64).collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let var = all.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / all.len() as f64;
    assert!((c.pretrained_entry_var - var).abs() < 1e-9);
    let a = (3.0 * var).sqrt();
    assert!((c.unk_scale - a).abs() < 1e-9);
    for id in [1, 2, 3] {
        assert!(e.matrix.row(id).iter().all(|&x| (x as f64).abs() <= a + 1e-6 && x != 0.0));
    }
    let (e2, _) = extract(&v, &path, "vectors", &params()).unwrap();
    assert_eq!(e.matrix, e2.matrix, "same seed, same matrix");
    let mut p = params();
    p.seed = 8;
    assert_ne!(extract(&v, &path, "vectors", &p).unwrap().0.matrix, e.matrix);
    p.unk_a = Some(0.25);
    let (e3, c3) = extract(&v, &path, "vectors", &p).unwrap();
    assert!(e3.matrix.row(2).iter().all(|&x| x.abs() <= 0.25));
    assert_eq!(c3.unk_scale, 0.25);
    (p.unk_init, p.unk_a) = (UnkInit::Zeros, None);
    assert!(extract(&v, &path, "vectors", &p).unwrap().0.matrix.row(2).iter().all(|&x| x == 0.0));
    p.unk_init = UnkInit::Normal;
    assert!(extract(&v, &path, "vectors", &p).unwrap().0.matrix.row(2).iter().any(|&x| x != 0.0));
}

#[test]
fn lower_lookup_falls_back_to_the_lowercased_word() {
    let d = tempfile::tempdir().unwrap();
    let path = write(d.path(), "g.txt", b"film 1 2\nbad 3 4\n", false);
    let v = vocab(&["Film", "BAD", "bad"]);
    let mut p = params();
    p.lower_lookup = true;
    let (e, c) = extract(&v, &path, "vectors", &p).unwrap();
    assert_eq!(e.matrix.row(2).to_vec(), [1.0, 2.0]);
    assert_eq!(e.matrix.row(3).to_vec(), [3.0, 4.0]);
    assert_eq!((c.words_found, c.words_found_lowercased), (3, 2));
    p.lower_lookup = false;
    assert_eq!(extract(&v, &path, "vectors", &p).unwrap().1.words_found, 1);
}

fn refused(bytes: &[u8], format: VectorFormat, dim: Option<usize>) -> String {
    let d = tempfile::tempdir().unwrap();
    let path = write(d.path(), "v", bytes, false);
    let mut p = params();
    p.format = format;
    p.dim = dim;
    extract(&vocab(&["a"]), &path, "vectors", &p).unwrap_err().to_string()
}

#[test]
fn bad_files_are_refused_with_the_place() {
    assert_eq!(refused(b"a 1 2 3\nb 1 2\n", VectorFormat::Auto, None), "vectors: line 2: word `b` has 2 values, expected 3");
    assert_eq!(refused(b"a 1 x 3\n", VectorFormat::Auto, None), "vectors: line 1: `x` (word `a`) is not a number");
    assert_eq!(refused(b"", VectorFormat::Auto, None), "vectors: the file is empty");
    assert_eq!(refused(b"3 2\na 1 2\nb 3 4\n", VectorFormat::Auto, None), "vectors: the header says 3 words, but the file has 2");
    assert_eq!(refused(b"1 2\na 1 2\nb 3 4\n", VectorFormat::Auto, None), "vectors: the header says 1 words, but the file has 2");
    assert_eq!(
        refused(b"2 3\na 1 2 3\n", VectorFormat::Auto, Some(4)),
        "vectors: the header declares dimension 3, but the stage expects 4"
    );
    assert_eq!(refused(b"a 1 2 3\n", VectorFormat::Glove, Some(4)), "vectors: line 1: 3 values, but the stage expects dimension 4");
    assert!(refused(b"a 1 2\n", VectorFormat::Word2vecBinary, None)
        .starts_with("vectors: line 1: expected a `count dim` header for word2vec-binary"));

    // Binary: truncated mid-record, and a header that lies about the count.
    let mut bin = b"2 3\n".to_vec();
    bin.extend(b"a ");
    bin.extend([1f32, 2.0, 3.0].iter().flat_map(|x| x.to_le_bytes()));
    bin.extend(b"\nb ");
    bin.extend([4f32].iter().flat_map(|x| x.to_le_bytes()));
    assert_eq!(refused(&bin, VectorFormat::Word2vecBinary, None), "vectors: truncated in record 2 (word `b`): fewer than 3 values");
    let mut bin = b"3 1\n".to_vec();
    for w in [b"a ", b"b "] {
        bin.extend(w);
        bin.extend(1f32.to_le_bytes());
        bin.push(b'\n');
    }
    assert_eq!(refused(&bin, VectorFormat::Auto, None), "vectors: the header says 3 words, but the file ends after 2");
    let mut bin = b"1 1\n".to_vec();
    for w in [b"a ", b"b "] {
        bin.extend(w);
        bin.extend(7f32.to_le_bytes());
    }
    assert_eq!(refused(&bin, VectorFormat::Word2vecBinary, None), "vectors: the header says 1 words, but the file has more");
}

#[test]
fn safetensors_round_trip_is_byte_stable() {
    let d = tempfile::tempdir().unwrap();
    let path = write(d.path(), "g.txt", b"a 1 2\n", false);
    let (e, _) = extract(&vocab(&["a", "b"]), &path, "vectors", &params()).unwrap();
    let out = d.path().join("e.safetensors");
    let (_, coverage) = extract(&vocab(&["a", "b"]), &path, "vectors", &params()).unwrap();
    let meta = EmbeddingsMeta { vocab_blake3: "x".repeat(64), coverage };
    e.write(&out, &meta).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    e.write(&out, &meta).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let (back, m) = Embeddings::read(&out).unwrap();
    assert_eq!(back.matrix, e.matrix);
    assert_eq!(back.found, e.found);
    assert_eq!(m, meta);
}
