//! The `embed` stage: the embedding matrix of a vocabulary, from pretrained
//! word vectors.
//!
//! Reads GloVe text (no header), word2vec text and fastText `.vec` (a
//! `count dim` header), and word2vec binary (GoogleNews format), each plain
//! or gzip; the format is detected or declared. The file is streamed: memory
//! is bounded by the vocabulary, not the file. Words not in the vectors get
//! a seeded random vector: uniform U[-a, a] with `a` matched to the variance
//! of all pretrained entries (Kim's recipe; a = 0.25 for word2vec 300-d), a
//! fixed `a`, normal with matched variance, or zeros. Row 0 (`<pad>`) is zero.
//!
//! Output: `embeddings.safetensors` with `embeddings` [V, D] f32 and `found`
//! [V] u8 (1 where the row came from the pretrained vectors), and the
//! coverage numbers.

mod read;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kimcnn_schema::{Coverage, EmbeddingsMeta, Named, UnkInit};
use kimcnn_stage::{Job, Kind, Progress, RunInfo, StageError};
use kimcnn_vocab::Vocab;
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

pub use read::VectorFormat;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A problem at a place in the vectors file.
    #[error("{file}: {message}")]
    Vectors { file: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// An `embed` stage's params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    pub format: VectorFormat,
    /// How words missing from the vectors start: uniform, normal or zeros.
    pub unk_init: UnkInit,
    /// Uniform: U[-a, a]; default: a = sqrt(3 var) of the pretrained entries.
    pub unk_a: Option<f64>,
    /// Normal: N(0, s); default: s = the pretrained entries' standard deviation.
    pub unk_std: Option<f64>,
    pub seed: u64,
    /// If a (cased) word is not in the vectors, use its lower-cased form's
    /// vector (GloVe 6B is lower-cased; TREC is not).
    pub lower_lookup: bool,
    /// Expected dimension, if declared; checked against the file.
    pub dim: Option<usize>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            format: VectorFormat::Auto,
            unk_init: UnkInit::Uniform,
            unk_a: None,
            unk_std: None,
            seed: 3435,
            lower_lookup: false,
            dim: None,
        }
    }
}

/// An `embed` stage: `vocab` + `vectors` -> `embeddings` (safetensors) + `coverage`.
pub struct EmbedKind;

impl Kind for EmbedKind {
    const NAME: &'static str = "embed";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["embeddings", "coverage"];
    type Params = Params;

    fn check(&self, p: &mut Params) -> std::result::Result<(), String> {
        if p.unk_a.is_some() && p.unk_init != UnkInit::Uniform {
            return Err("param `unk_a` is the bound of `unk_init: uniform`".into());
        }
        if p.unk_std.is_some() && p.unk_init != UnkInit::Normal {
            return Err("param `unk_std` is the spread of `unk_init: normal`".into());
        }
        if p.unk_a.or(p.unk_std).is_some_and(|x| !(x.is_finite() && x >= 0.0)) {
            return Err("params `unk_a` and `unk_std` must be finite and >= 0".into());
        }
        Ok(())
    }

    fn check_inputs(&self, _: &Params, inputs: &[&str]) -> std::result::Result<(), String> {
        let mut i = inputs.to_vec();
        i.sort();
        if i != ["vectors", "vocab"] {
            return Err("an `embed` stage takes two inputs, `vocab` and `vectors`".into());
        }
        Ok(())
    }

    fn run(&self, p: &Params, job: &Job) -> std::result::Result<RunInfo, StageError> {
        let vocab_path = &job.inputs["vocab"];
        let vocab = Vocab::read(vocab_path).map_err(|e| StageError::BadInput(format!("input `vocab`: {e}")))?;
        let progress = |done, total| (job.progress)(Progress::Bytes { done, total: Some(total) });
        let (emb, coverage) =
            extract_with_progress(&vocab, &job.inputs["vectors"], "input `vectors`", p, &progress).map_err(|e| match e {
                EmbedError::Vectors { .. } => StageError::BadInput(e.to_string()),
                other => other.into(),
            })?;
        let meta = EmbeddingsMeta { vocab_blake3: kimcnn_store::hash_file(vocab_path)?.to_string(), coverage };
        emb.write(&job.outputs["embeddings"], &meta)?;
        kimcnn_schema::write_json(&job.outputs["coverage"], &meta.coverage)?;
        Ok(RunInfo::default())
    }
}

/// The matrix and which rows came from the pretrained vectors.
#[derive(Debug, Clone)]
pub struct Embeddings {
    pub matrix: Array2<f32>,
    pub found: Vec<u8>,
}

/// Streams `vectors` and builds the vocabulary's matrix. `label` names the
/// file in errors.
pub fn extract(vocab: &Vocab, vectors: &Path, label: &str, p: &Params) -> Result<(Embeddings, Coverage)> {
    extract_with_progress(vocab, vectors, label, p, &|_, _| ())
}

/// [`extract`], telling `progress` (bytes read, file size) as it reads.
pub fn extract_with_progress(
    vocab: &Vocab,
    vectors: &Path,
    label: &str,
    p: &Params,
    progress: &dyn Fn(u64, u64),
) -> Result<(Embeddings, Coverage)> {
    // Lookup keys: exact words first, lower-cased forms as a fallback.
    let mut exact: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
    let mut lowered: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
    for (id, w) in vocab.tokens.iter().enumerate().skip(2) {
        exact.entry(w.as_bytes().to_vec()).or_default().push(id as u32);
        if p.lower_lookup {
            let l = w.to_lowercase();
            if l != *w {
                lowered.entry(l.into_bytes()).or_default().push(id as u32);
            }
        }
    }
    let v = vocab.len();
    let mut rows: Option<Array2<f32>> = None;
    let mut found = vec![0u8; v];
    let mut sum = 0f64;
    let mut sumsq = 0f64;
    let mut entries = 0u64;
    let mut n_lower = 0;
    let stats = read::stream(vectors, label, p.format, p.dim, progress, |word, vec| {
        let m = rows.get_or_insert_with(|| Array2::zeros((v, vec.len())));
        let (s, q) = read::sums(vec);
        sum += s;
        sumsq += q;
        entries += vec.len() as u64;
        if let Some(ids) = exact.get(word) {
            for &id in ids {
                m.row_mut(id as usize).assign(&ndarray::ArrayView1::from(vec));
                found[id as usize] = 2;
            }
        }
        if let Some(ids) = lowered.get(word) {
            for &id in ids {
                if found[id as usize] != 2 {
                    m.row_mut(id as usize).assign(&ndarray::ArrayView1::from(vec));
                    found[id as usize] = 1;
                }
            }
        }
    })?;
    let dim = stats.dim;
    let mut matrix = rows.unwrap_or_else(|| Array2::zeros((v, dim)));
    let mean = if entries > 0 { sum / entries as f64 } else { 0.0 };
    let var = if entries > 0 { (sumsq / entries as f64 - mean * mean).max(0.0) } else { 0.0 };
    let scale = match p.unk_init {
        UnkInit::Uniform => p.unk_a.unwrap_or((3.0 * var).sqrt()),
        UnkInit::Normal => p.unk_std.unwrap_or(var.sqrt()),
        UnkInit::Zeros => 0.0,
    };
    if !(scale.is_finite() && scale >= 0.0) {
        return Err(EmbedError::Invalid(format!("unknown-word scale {scale} is not a finite, non-negative number")));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    // Drawn in id order, for unknown words only: depends on (vocab, vectors, seed).
    for (id, _) in found.iter().enumerate().skip(1).filter(|(_, &f)| f == 0) {
        let mut row = matrix.row_mut(id);
        match p.unk_init {
            UnkInit::Zeros => row.fill(0.0),
            UnkInit::Uniform if scale > 0.0 => {
                let u = Uniform::new_inclusive(-scale, scale).map_err(|e| EmbedError::Invalid(e.to_string()))?;
                row.iter_mut().for_each(|x| *x = u.sample(&mut rng) as f32);
            }
            UnkInit::Normal if scale > 0.0 => {
                let n = Normal::new(0.0, scale).map_err(|e| EmbedError::Invalid(e.to_string()))?;
                row.iter_mut().for_each(|x| *x = n.sample(&mut rng) as f32);
            }
            _ => row.fill(0.0),
        }
    }
    matrix.row_mut(0).fill(0.0);
    n_lower += found.iter().filter(|&&f| f == 1).count();
    let words_found = found.iter().filter(|&&f| f != 0).count();
    let tokens_total: u64 = vocab.counts.iter().skip(1).sum();
    let tokens_found: u64 = vocab.counts.iter().zip(&found).filter(|(_, &f)| f != 0).map(|(c, _)| c).sum();
    let vocab_words = v.saturating_sub(2);
    let cov = Coverage {
        format: stats.format.name().to_string(),
        dim,
        pretrained_words: stats.words,
        vocab_words,
        words_found,
        words_found_lowercased: n_lower,
        word_coverage: if vocab_words > 0 { words_found as f64 / vocab_words as f64 } else { 0.0 },
        tokens_total,
        tokens_found,
        token_coverage: if tokens_total > 0 { tokens_found as f64 / tokens_total as f64 } else { 0.0 },
        pretrained_entry_mean: mean,
        pretrained_entry_var: var,
        unk_init: p.unk_init,
        unk_scale: scale,
    };
    let found = found.into_iter().map(|f| u8::from(f != 0)).collect();
    Ok((Embeddings { matrix, found }, cov))
}

impl Embeddings {
    /// Writes `embeddings` and `found` as safetensors. `meta` goes into the
    /// header as one JSON string under `kimcnn` (one key, so the bytes do not
    /// depend on hash-map order).
    pub fn write(&self, path: &Path, meta: &EmbeddingsMeta) -> Result<()> {
        use safetensors::tensor::{Dtype, TensorView};
        let (v, d) = self.matrix.dim();
        // The matrix's own bytes, not a copy (safetensors is little-endian, as is every target we build for).
        #[cfg(not(target_endian = "little"))]
        compile_error!("safetensors output assumes a little-endian target");
        let std_layout = self.matrix.as_standard_layout();
        let floats = std_layout.as_slice().expect("standard layout is contiguous");
        let data: &[u8] = bytemuck::cast_slice(floats);
        let err = |e: safetensors::SafeTensorError| EmbedError::Invalid(format!("{}: {e}", path.display()));
        let emb = TensorView::new(Dtype::F32, vec![v, d], data).map_err(err)?;
        let found = TensorView::new(Dtype::U8, vec![v], &self.found).map_err(err)?;
        let meta = kimcnn_schema::safetensors_meta(meta);
        // Streams to the file: no second copy of the matrix in memory.
        safetensors::tensor::serialize_to_file([("embeddings", emb), ("found", found)], Some(meta), path).map_err(err)
    }

    pub fn read(path: &Path) -> Result<(Embeddings, EmbeddingsMeta)> {
        let bytes = std::fs::read(path).map_err(|source| EmbedError::Io { path: path.into(), source })?;
        let bad = |m: String| EmbedError::Invalid(format!("{}: not an embeddings file: {m}", path.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let meta: EmbeddingsMeta = kimcnn_schema::meta_from_header(&bytes, path).map_err(|e| EmbedError::Invalid(e.to_string()))?;
        let ([rows, cols], vals) = kimcnn_schema::f32_matrix(&st, "embeddings", path).map_err(|e| EmbedError::Invalid(e.to_string()))?;
        let f = st.tensor("found").map_err(|e| bad(e.to_string()))?;
        if f.shape() != [rows] {
            return Err(bad(format!("shapes {:?} and {:?}", [rows, cols], f.shape())));
        }
        let matrix = Array2::from_shape_vec((rows, cols), vals).map_err(|e| bad(e.to_string()))?;
        Ok((Embeddings { matrix, found: f.data().to_vec() }, meta))
    }
}

#[cfg(test)]
mod tests;
