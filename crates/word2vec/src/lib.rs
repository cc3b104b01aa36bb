//! Word vectors trained on the data's own text: word2vec (Mikolov et al.
//! 2013), skip-gram and CBOW with negative sampling, as word2vec.c computes
//! them: a unigram^0.75 table of negatives, sub-sampling of frequent words,
//! a learning rate decaying linearly to 1e-4 of its start, a random window
//! per word, word2vec.c's random generator and its sigmoid table, and
//! Hogwild threads (lock-free updates that may race, as word2vec.c's do).
//!
//! Written here because no maintained Rust crate trains word2vec:
//! finalfrontier, the one that did, last released in 2020. gensim is the
//! baseline (`bench/word2vec.py`): the same corpus, params and threads.
//!
//! One thread gives the same bytes for the same inputs and seed; more
//! threads race by design and do not (the key is the same: a
//! `verify --recompute` says `differ`).

mod kind;

pub use kind::{Word2VecKind, Word2VecParams};

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

kimcnn_schema::named_enum! {
    /// What predicts what.
    pub enum Arch {
        /// Each word predicts its context words.
        SkipGram = "skipgram",
        /// The mean of the context predicts the word.
        Cbow = "cbow",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Word2VecError {
    #[error("{0}")]
    TooSmall(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Word2VecError> = std::result::Result<T, E>;

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub arch: Arch,
    pub dim: usize,
    pub window: usize,
    pub negative: usize,
    pub min_count: u64,
    pub sample: f64,
    pub epochs: usize,
    pub alpha: f32,
    pub threads: usize,
    pub seed: u64,
}

/// Sentences as word ids over a vocabulary sorted by count.
pub struct Corpus {
    pub words: Vec<String>,
    pub counts: Vec<u64>,
    /// The ids of every sentence, one after another; `ends[i]` closes sentence i.
    ids: Vec<u32>,
    ends: Vec<usize>,
}

/// word2vec.c's longest sentence: longer ones are cut in pieces of this.
const MAX_SENTENCE: usize = 1000;

impl Corpus {
    /// Counts the words of `sentences`, keeps those seen `min_count` times
    /// (most frequent first; ties by their text, so the ids do not depend
    /// on a hash's order) and maps the sentences to their ids, cut at
    /// 1000 words (word2vec.c cuts after sub-sampling, and counts a `</s>`
    /// per line as a word; neither is done here).
    pub fn new(sentences: &[Vec<String>], min_count: u64) -> Result<Corpus> {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        let mut total = 0u64;
        for s in sentences {
            for w in s {
                *counts.entry(w.as_str()).or_default() += 1;
                total += 1;
            }
        }
        let mut kept: Vec<(&str, u64)> = counts.iter().filter(|(_, &c)| c >= min_count).map(|(w, c)| (*w, *c)).collect();
        if kept.is_empty() {
            return Err(Word2VecError::TooSmall(format!(
                "no word occurs `min_count` = {min_count} times in {total} tokens ({} distinct words): lower `min_count` or add text",
                counts.len()
            )));
        }
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let index: HashMap<&str, u32> = kept.iter().enumerate().map(|(i, (w, _))| (*w, i as u32)).collect();
        let (mut ids, mut ends) = (Vec::new(), Vec::new());
        for s in sentences {
            let mut n = 0;
            for w in s {
                if let Some(&i) = index.get(w.as_str()) {
                    ids.push(i);
                    n += 1;
                    if n == MAX_SENTENCE {
                        ends.push(ids.len());
                        n = 0;
                    }
                }
            }
            if n > 0 {
                ends.push(ids.len());
            }
        }
        Ok(Corpus { words: kept.iter().map(|(w, _)| w.to_string()).collect(), counts: kept.iter().map(|k| k.1).collect(), ids, ends })
    }

    /// Tokens of the kept words.
    pub fn tokens(&self) -> u64 {
        self.ids.len() as u64
    }

    fn sentence(&self, i: usize) -> &[u32] {
        &self.ids[if i == 0 { 0 } else { self.ends[i - 1] }..self.ends[i]]
    }
}

/// The trained vectors, `words[i]`'s at `vectors[i * dim..]`.
pub struct Vectors {
    pub words: Vec<String>,
    pub dim: usize,
    pub vectors: Vec<f32>,
}

/// What training did.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    /// Words trained on over all epochs (after sub-sampling).
    pub words_trained: u64,
    /// Corpus words processed (before sub-sampling), as gensim counts its words/s.
    pub words_processed: u64,
}

const EXP_TABLE: usize = 1000;
const MAX_EXP: f32 = 6.0;
const TABLE: usize = 10_000_000;

/// word2vec.c's generator: a 64-bit linear congruence.
#[derive(Clone)]
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(25_214_903_917).wrapping_add(11);
        self.0
    }
}

/// The weights every thread updates without locks (Hogwild): races lose an
/// update now and then, as word2vec.c's threads do, and cost nothing else.
/// With one thread (the default) nothing is shared. With more, each thread
/// views the whole buffers as its own `&mut` slices: a data race Rust's
/// memory model calls undefined, though on x86-64 it compiles to the plain
/// loads and stores word2vec.c races with (atomics would forgo SIMD).
struct Shared {
    syn0: *mut f32,
    syn1: *mut f32,
}

unsafe impl Sync for Shared {}

/// Trains on `corpus`; `progress(words processed, of)` now and then.
pub fn train(corpus: &Corpus, s: &Settings, progress: &(dyn Fn(u64, u64) + Sync)) -> (Vectors, Trained) {
    let (v, d) = (corpus.words.len(), s.dim);
    let mut rng = Lcg(s.seed);
    // word2vec.c: syn0 uniform in [-0.5, 0.5) / dim, syn1neg zero.
    let mut syn0: Vec<f32> = (0..v * d).map(|_| ((rng.next() & 0xFFFF) as f32 / 65536.0 - 0.5) / d as f32).collect();
    let mut syn1 = vec![0f32; v * d];
    // Negatives drawn from the unigram distribution to the power 0.75.
    let pow: Vec<f64> = corpus.counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
    let sum: f64 = pow.iter().sum();
    let size = TABLE.min(1000 * v).max(v);
    let mut table = vec![0u32; size];
    let (mut w, mut acc) = (0usize, pow[0] / sum);
    for (a, t) in table.iter_mut().enumerate() {
        *t = w as u32;
        if a as f64 / size as f64 > acc && w + 1 < v {
            w += 1;
            acc += pow[w] / sum;
        }
    }
    // One more entry than steps, as word2vec.c: f just under MAX_EXP rounds to index EXP_TABLE.
    let exp: Vec<f32> = (0..=EXP_TABLE)
        .map(|i| {
            let e = ((i as f32 / EXP_TABLE as f32 * 2.0 - 1.0) * MAX_EXP).exp();
            e / (e + 1.0)
        })
        .collect();
    let total_tokens = corpus.tokens();
    let threshold = s.sample * total_tokens as f64;
    // Sub-sampling: the chance to keep each word (word2vec.c's formula).
    let keep: Vec<f64> = corpus
        .counts
        .iter()
        .map(|&c| if s.sample > 0.0 { ((c as f64 / threshold).sqrt() + 1.0) * threshold / c as f64 } else { 1.0 })
        .collect();
    let job = Job {
        corpus,
        s,
        shared: Shared { syn0: syn0.as_mut_ptr(), syn1: syn1.as_mut_ptr() },
        table: &table,
        exp: &exp,
        keep: &keep,
        all: s.epochs as u64 * total_tokens,
        processed: AtomicU64::new(0),
        trained: AtomicU64::new(0),
        threads: s.threads.max(1),
        progress,
    };
    std::thread::scope(|scope| {
        for t in 0..job.threads {
            let job = &job;
            scope.spawn(move || job.run(t));
        }
    });
    progress(job.all, job.all);
    let out = Trained { words_trained: job.trained.into_inner(), words_processed: job.processed.into_inner() };
    (Vectors { words: corpus.words.clone(), dim: d, vectors: syn0 }, out)
}

/// A thread's random draws: its generator, and the negatives of the pair at hand.
struct Draws {
    rng: Lcg,
    drawn: Vec<usize>,
}

/// What every training thread reads (and, through `shared`, writes).
struct Job<'a> {
    corpus: &'a Corpus,
    s: &'a Settings,
    shared: Shared,
    /// Negatives drawn from it: word ids, each as often as its count^0.75.
    table: &'a [u32],
    /// The sigmoid at EXP_TABLE + 1 points of [-MAX_EXP, MAX_EXP].
    exp: &'a [f32],
    /// Each word's chance to be kept by sub-sampling.
    keep: &'a [f64],
    /// Words to process over all epochs.
    all: u64,
    processed: AtomicU64,
    trained: AtomicU64,
    threads: usize,
    progress: &'a (dyn Fn(u64, u64) + Sync),
}

impl Job<'_> {
    /// Thread `t`'s share of the sentences, every epoch: compiled for AVX2
    /// where the CPU has it (checked once, here), so the dot products and
    /// updates inlined into it take 8 lanes at once instead of 4. The sums
    /// are the same in the same order (no FMA): the same bytes either way.
    fn run(&self, t: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // Safety: the CPU has AVX2 (checked just above).
            return unsafe { self.run_avx2(t) };
        }
        self.run_any(t)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&self, t: usize) {
        self.run_any(t)
    }

    #[inline(always)]
    fn run_any(&self, t: usize) {
        let (s, corpus, d) = (self.s, self.corpus, self.s.dim);
        let v = corpus.words.len();
        let mut draws = Draws { rng: Lcg(s.seed.wrapping_add(t as u64 + 1)), drawn: Vec::with_capacity(s.negative) };
        let (mut neu1, mut neu1e) = (vec![0f32; d], vec![0f32; d]);
        let mut sen: Vec<u32> = Vec::with_capacity(MAX_SENTENCE);
        let (mut seen_local, mut kept_local) = (0u64, 0u64);
        let sentences = corpus.ends.len();
        let (lo, hi) = (sentences * t / self.threads, sentences * (t + 1) / self.threads);
        for _epoch in 0..s.epochs {
            for i in lo..hi {
                let raw = corpus.sentence(i);
                seen_local += raw.len() as u64;
                sen.clear();
                for &w in raw {
                    // A draw for every word when sub-sampling, as word2vec.c.
                    if s.sample > 0.0 && self.keep[w as usize] < (draws.rng.next() & 0xFFFF) as f64 / 65536.0 {
                        continue;
                    }
                    sen.push(w);
                }
                kept_local += sen.len() as u64;
                // The learning rate, from the words all threads have processed.
                if seen_local > 10_000 {
                    let done = self.processed.fetch_add(seen_local, Relaxed) + seen_local;
                    self.trained.fetch_add(kept_local, Relaxed);
                    (seen_local, kept_local) = (0, 0);
                    (self.progress)(done, self.all);
                }
                let done = self.processed.load(Relaxed) + seen_local;
                let alpha = (s.alpha * (1.0 - done as f32 / (self.all as f32 + 1.0))).max(s.alpha * 1e-4);
                // Safety: the buffers outlive the threads; races between threads are Hogwild's.
                let (syn0, syn1) = unsafe {
                    (std::slice::from_raw_parts_mut(self.shared.syn0, v * d), std::slice::from_raw_parts_mut(self.shared.syn1, v * d))
                };
                for pos in 0..sen.len() {
                    let word = sen[pos] as usize;
                    let b = (draws.rng.next() % s.window as u64) as usize;
                    let span = s.window - b;
                    let (start, end) = (pos.saturating_sub(span), (pos + span + 1).min(sen.len()));
                    match s.arch {
                        Arch::SkipGram => {
                            for c in (start..end).filter(|&c| c != pos) {
                                let l1 = sen[c] as usize * d;
                                neu1e.fill(0.0);
                                self.negatives(word, &syn0[l1..l1 + d], syn1, &mut neu1e, alpha, &mut draws);
                                add(&mut syn0[l1..l1 + d], &neu1e);
                            }
                        }
                        Arch::Cbow => {
                            neu1.fill(0.0);
                            let mut cw = 0;
                            for c in (start..end).filter(|&c| c != pos) {
                                let l = sen[c] as usize * d;
                                add(&mut neu1, &syn0[l..l + d]);
                                cw += 1;
                            }
                            if cw == 0 {
                                continue;
                            }
                            neu1.iter_mut().for_each(|x| *x /= cw as f32);
                            neu1e.fill(0.0);
                            self.negatives(word, &neu1, syn1, &mut neu1e, alpha, &mut draws);
                            for c in (start..end).filter(|&c| c != pos) {
                                let l = sen[c] as usize * d;
                                add(&mut syn0[l..l + d], &neu1e);
                            }
                        }
                    }
                }
            }
        }
        self.processed.fetch_add(seen_local, Relaxed);
        self.trained.fetch_add(kept_local, Relaxed);
    }

    /// One positive and `negative` sampled targets for the hidden vector `h`:
    /// updates their output vectors and adds the gradient for `h` into `grad`.
    /// The negatives are drawn first (the same draws in the same order) and
    /// their rows prefetched: they are random rows of a matrix larger than
    /// the caches, and waiting for them is most of skip-gram's time.
    #[inline(always)]
    fn negatives(&self, word: usize, h: &[f32], syn1: &mut [f32], grad: &mut [f32], alpha: f32, draws: &mut Draws) {
        let (d, table, exp) = (self.s.dim, self.table, self.exp);
        let Draws { rng, drawn } = draws;
        drawn.clear();
        for _ in 0..self.s.negative {
            // word2vec.c takes (r >> 16) % size; a multiply-shift maps the same 48
            // random bits onto the table as evenly, without a division per draw.
            let t = table[(((rng.next() >> 16) as u128 * table.len() as u128) >> 48) as usize] as usize;
            if t != word {
                prefetch(&syn1[t * d..(t + 1) * d]);
                drawn.push(t);
            }
        }
        for (target, label) in std::iter::once((word, 1.0)).chain(drawn.iter().map(|&t| (t, 0.0))) {
            let l2 = target * d;
            let out = &mut syn1[l2..l2 + d];
            let f = dot(h, out);
            let g = if f > MAX_EXP {
                (label - 1.0) * alpha
            } else if f < -MAX_EXP {
                label * alpha
            } else {
                (label - exp[((f + MAX_EXP) * (EXP_TABLE as f32 / MAX_EXP / 2.0)) as usize]) * alpha
            };
            for ((e, o), x) in grad.iter_mut().zip(out.iter_mut()).zip(h) {
                *e += g * *o;
                *o += g * x;
            }
        }
    }
}

/// Asks the CPU to start loading `row` into the caches.
#[inline(always)]
fn prefetch(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in row.chunks(16) {
        // Safety: a prefetch only hints; the address is inside `row`.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
    }
}

/// `a += b`, element-wise.
#[inline(always)]
fn add(a: &mut [f32], b: &[f32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// A dot product in 16 lanes (a plain `sum()` is one long chain the
/// compiler may not reorder: no SIMD, and each add waits for the last; 16
/// lanes are two independent AVX chains, four SSE ones). The order is fixed
/// whatever the vector width, so the result is too.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let mut s: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    let mut acc = [0f32; 16];
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    s += acc.iter().sum::<f32>();
    s
}

impl Vectors {
    /// word2vec.c's binary format: `V D\n`, then each word, a space, D
    /// little-endian float32 and a newline (read by `embed`, gensim, fastText).
    pub fn write_binary(&self, path: &Path) -> Result<()> {
        let io = |source| Word2VecError::Io { path: path.to_path_buf(), source };
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        writeln!(f, "{} {}", self.words.len(), self.dim).map_err(io)?;
        for (i, w) in self.words.iter().enumerate() {
            f.write_all(w.as_bytes()).map_err(io)?;
            f.write_all(b" ").map_err(io)?;
            for x in &self.vectors[i * self.dim..(i + 1) * self.dim] {
                f.write_all(&x.to_le_bytes()).map_err(io)?;
            }
            f.write_all(b"\n").map_err(io)?;
        }
        f.flush().map_err(io)
    }

    /// The matrix as safetensors (`vectors` [V, D] float32), the words in
    /// its metadata (`words`, a JSON list).
    pub fn write_safetensors(&self, path: &Path) -> Result<()> {
        let bytes: Vec<u8> = self.vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
        let failed =
            |e: &dyn std::fmt::Display| Word2VecError::Io { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) };
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![self.words.len(), self.dim], &bytes)
            .map_err(|e| failed(&e))?;
        // One key: safetensors writes a metadata map in its hash order.
        let meta = std::collections::HashMap::from([("words".to_string(), serde_json::to_string(&self.words).unwrap_or_default())]);
        safetensors::serialize_to_file([("vectors", view)], Some(meta), path).map_err(|e| failed(&e))
    }

    /// The `k` nearest words of `word` by cosine.
    pub fn nearest(&self, word: &str, k: usize) -> Option<Vec<(String, f32)>> {
        let i = self.words.iter().position(|w| w == word)?;
        let row = |j: usize| &self.vectors[j * self.dim..(j + 1) * self.dim];
        let norm = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
        let q = row(i);
        let nq = norm(q);
        let mut all: Vec<(usize, f32)> = (0..self.words.len())
            .filter(|&j| j != i)
            .map(|j| (j, q.iter().zip(row(j)).map(|(a, b)| a * b).sum::<f32>() / (nq * norm(row(j)))))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(all.into_iter().take(k).map(|(j, c)| (self.words[j].clone(), c)).collect())
    }
}

#[cfg(test)]
mod tests;
