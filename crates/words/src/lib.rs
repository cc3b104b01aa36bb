//! What fine-tuning did to the word vectors, from a trained model and the
//! pretrained matrix it started from (same vocabulary, checked):
//!
//! - `tsne`: Barnes-Hut t-SNE maps of the most frequent words, pretrained
//!   and fine-tuned, each word with the labels of the sentences it occurs
//!   in (its polarity). The fit starts from a seeded initial embedding, its
//!   nearest neighbours are exact (ties broken by word id) and it runs on one
//!   thread, so a key names the map's bytes.
//! - `neighbours`: each query word's nearest words by cosine in the static
//!   (pretrained) vectors and in the fine-tuned ones: Kim's Table 3.
//!
//! t-SNE is the `bhtsne` crate's; the nearest neighbours are computed here
//! (a brute-force scan, parallel over words): bhtsne's own search seeds its
//! vantage-point tree from the thread's random generator.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::{Array2, ArrayView1, Axis};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use kimcnn_embed::Embeddings;
use kimcnn_schema::{ModelMeta, Neighbour, TsnePoint, TsneSummary, Variant};
use kimcnn_stage::{Job, Kind, Progress, RunInfo, StageError};
use kimcnn_tokenize::TokensTable;
use kimcnn_vocab::Vocab;

/// A model's word vectors before and after training, on one vocabulary.
struct Vectors {
    meta: ModelMeta,
    vocab: Vocab,
    pretrained: Array2<f32>,
    /// Whether the pretrained vectors knew each word (else it started random).
    found: Vec<u8>,
    tuned: Array2<f32>,
}

fn bad(m: impl Into<String>) -> StageError {
    StageError::BadInput(m.into())
}

fn input<'a>(job: &'a Job, name: &str) -> Result<&'a Path, StageError> {
    job.inputs.get(name).map(|p| p.as_path()).ok_or_else(|| bad(format!("no `{name}` input")))
}

impl Vectors {
    /// Reads `model`, `embeddings` and `vocab`, refusing a model that did not
    /// fine-tune pretrained vectors and inputs of different vocabularies.
    fn load(job: &Job) -> Result<Vectors, StageError> {
        let (model, embeddings, vocab) = (input(job, "model")?, input(job, "embeddings")?, input(job, "vocab")?);
        let meta = ModelMeta::read(model).map_err(|e| bad(format!("input `model`: {e}")))?;
        let v = meta.config.variant;
        if !matches!(v, Variant::NonStatic | Variant::Multichannel) {
            return Err(bad(format!(
                "input `model`: a CNN-{v} model did not fine-tune the pretrained vectors (give a non-static or multichannel model)"
            )));
        }
        let vocab_bytes = std::fs::read(vocab).map_err(|e| bad(format!("input `vocab`: {e}")))?;
        let vocab_hash = blake3::hash(&vocab_bytes).to_hex().to_string();
        let short = |h: &str| h.chars().take(12).collect::<String>();
        if meta.vocab_blake3 != vocab_hash {
            return Err(bad(format!(
                "runs over different vocabularies: the model was trained on vocabulary {}, the `vocab` input is {} (give the vocab stage the model was trained on)",
                short(&meta.vocab_blake3),
                short(&vocab_hash)
            )));
        }
        let (emb, emeta) = Embeddings::read(embeddings).map_err(|e| bad(format!("input `embeddings`: {e}")))?;
        if emeta.vocab_blake3 != vocab_hash {
            return Err(bad(format!(
                "runs over different vocabularies: the embeddings were built for vocabulary {}, the model's is {} (give the embed stage of the model's vocab)",
                short(&emeta.vocab_blake3),
                short(&vocab_hash)
            )));
        }
        let vocab = Vocab::read(vocab).map_err(|e| bad(format!("input `vocab`: {e}")))?;
        let tuned = read_matrix(model, "embedding")?;
        if tuned.dim() != emb.matrix.dim() || tuned.nrows() != vocab.tokens.len() {
            return Err(bad(format!(
                "input `model`: its embedding is {:?}, the pretrained matrix {:?}, the vocabulary {} words",
                tuned.dim(),
                emb.matrix.dim(),
                vocab.tokens.len()
            )));
        }
        Ok(Vectors { meta, vocab, pretrained: emb.matrix, found: emb.found, tuned })
    }
}

/// A float32 matrix of a safetensors file.
fn read_matrix(path: &Path, name: &str) -> Result<Array2<f32>, StageError> {
    let bytes = std::fs::read(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let ([rows, cols], vals) = kimcnn_schema::f32_matrix(&st, name, path).map_err(|e| bad(e.to_string()))?;
    Array2::from_shape_vec((rows, cols), vals).map_err(|e| bad(format!("{}: {e}", path.display())))
}

/// Rows scaled to unit length (zero rows stay zero): Euclidean distance
/// between them orders pairs as cosine does, and is a metric.
fn unit_rows(m: &Array2<f32>, ids: &[usize]) -> Array2<f32> {
    let mut out = m.select(Axis(0), ids);
    for mut row in out.rows_mut() {
        let n = row.dot(&row).sqrt();
        if n > 0.0 {
            row /= n;
        }
    }
    out
}

/// Each row's `k` nearest other rows by Euclidean distance, ties by index:
/// exact, and the same on any number of threads.
fn nearest(rows: &Array2<f32>, k: usize) -> Vec<Vec<bhtsne::Neighbor<f32>>> {
    let n = rows.nrows();
    (0..n)
        .into_par_iter()
        .map(|i| {
            let a = rows.row(i);
            let mut d: Vec<(f32, usize)> = (0..n).filter(|&j| j != i).map(|j| (dist(a, rows.row(j)), j)).collect();
            let k = k.min(d.len());
            d.select_nth_unstable_by(k.saturating_sub(1), |x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            d.truncate(k);
            d.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            d.into_iter().map(|(distance, index)| bhtsne::Neighbor { index, distance }).collect()
        })
        .collect()
}

fn dist(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f32 {
    a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}

// ---- tsne -------------------------------------------------------------------

/// A `tsne` stage's params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsneParams {
    /// The most frequent words to map (not `<pad>`, `<unk>`).
    pub words: usize,
    /// Neighbourhood size (sklearn's default 30); lowered to (words - 1) / 3 for small maps.
    pub perplexity: f64,
    /// Barnes-Hut's accuracy-speed trade-off (0.5, as bhtsne and sklearn).
    pub theta: f64,
    pub epochs: usize,
    /// Seeds the initial embedding, N(0, 1e-4) as van der Maaten's, shared by both maps.
    pub seed: u64,
}

impl Default for TsneParams {
    fn default() -> TsneParams {
        TsneParams { words: 2000, perplexity: 30.0, theta: 0.5, epochs: 1000, seed: 1 }
    }
}

pub struct TsneKind;

impl Kind for TsneKind {
    const NAME: &'static str = "tsne";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["points", "summary"];
    type Params = TsneParams;

    fn check(&self, p: &mut TsneParams) -> Result<(), String> {
        if p.words < 10 {
            return Err(format!("words: {} is too few for a map (at least 10)", p.words));
        }
        if p.perplexity.is_nan() || p.perplexity < 1.0 {
            return Err(format!("perplexity: {} (at least 1)", p.perplexity));
        }
        if p.theta.is_nan() || p.theta <= 0.0 || p.theta >= 1.5 {
            return Err(format!("theta: {} (0 < theta < 1.5; 0.5 is usual)", p.theta));
        }
        if p.epochs < 300 {
            return Err(format!("epochs: {} (at least 300: the first 250 exaggerate the clusters)", p.epochs));
        }
        Ok(())
    }

    fn check_inputs(&self, _: &TsneParams, inputs: &[&str]) -> Result<(), String> {
        check_names("tsne", inputs, &["model", "embeddings", "vocab", "tokens"])
    }

    fn run(&self, p: &TsneParams, job: &Job) -> Result<RunInfo, StageError> {
        let v = Vectors::load(job)?;
        let tokens = TokensTable::read(input(job, "tokens")?).map_err(|e| bad(format!("input `tokens`: {e}")))?;
        // The most frequent words, ties by id.
        let mut ids: Vec<usize> = (2..v.vocab.tokens.len()).collect();
        ids.sort_by(|&a, &b| v.vocab.counts[b].cmp(&v.vocab.counts[a]).then(a.cmp(&b)));
        ids.truncate(p.words);
        if ids.len() < 10 {
            return Err(bad(format!("the vocabulary has {} words: too few for a map", ids.len())));
        }
        let (classes, shares) = class_shares(&tokens, &v.vocab, &ids, v.meta.config.fold);
        let perplexity = p.perplexity.min((ids.len() - 1) as f64 / 3.0).floor().max(1.0);
        let k = ((3.0 * perplexity) as usize).min(ids.len() - 1);
        let n = ids.len();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p.seed);
        let normal = Normal::new(0.0f32, 1e-4).expect("a valid normal");
        let init: Vec<f32> = (0..2 * n).map(|_| normal.sample(&mut rng)).collect();
        let mut maps = Vec::new();
        for (which, m) in [("pretrained", &v.pretrained), ("fine-tuned", &v.tuned)] {
            (job.progress)(Progress::Note(format!("t-SNE of {n} words' {which} vectors (perplexity {perplexity}, {} epochs)", p.epochs)));
            let rows = unit_rows(m, &ids);
            let neighbours = nearest(&rows, k);
            let step = |done: usize| {
                let message = format!("{which} map");
                (job.progress)(Progress::Steps {
                    unit: "iteration",
                    done: done as u64,
                    total: p.epochs as u64,
                    message,
                    metrics: BTreeMap::new(),
                })
            };
            maps.push(fit(&rows, &neighbours, &init, perplexity as f32, p.theta as f32, p.epochs, &step)?);
        }
        let points: Vec<TsnePoint> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| TsnePoint {
                word: v.vocab.tokens[id].clone(),
                count: v.vocab.counts[id],
                pretrained: v.found.get(id).is_some_and(|f| *f != 0),
                class_share: shares[i].0,
                majority: shares[i].1.clone(),
                x_pretrained: maps[0].0[2 * i] as f64,
                y_pretrained: maps[0].0[2 * i + 1] as f64,
                x_tuned: maps[1].0[2 * i] as f64,
                y_tuned: maps[1].0[2 * i + 1] as f64,
            })
            .collect();
        kimcnn_schema::write_tsne(&job.outputs["points"], &points)?;
        let summary = TsneSummary {
            dataset: v.meta.config.dataset.clone(),
            variant: v.meta.config.variant.to_string(),
            words: n,
            classes,
            kl_pretrained: maps[0].1,
            kl_tuned: maps[1].1,
            perplexity,
            epochs: p.epochs,
        };
        kimcnn_schema::write_json(&job.outputs["summary"], &summary)?;
        Ok(RunInfo::default())
    }
}

/// One Barnes-Hut fit on one thread (rayon's parallel sums would add in an
/// order that depends on timing): the embedding and its KL divergence.
/// `step` hears of every 50th iteration.
fn fit(
    rows: &Array2<f32>,
    neighbours: &[Vec<bhtsne::Neighbor<f32>>],
    init: &[f32],
    perplexity: f32,
    theta: f32,
    epochs: usize,
    step: &(dyn Fn(usize) + Sync),
) -> Result<(Vec<f32>, f64), StageError> {
    let samples: Vec<ArrayView1<f32>> = rows.rows().into_iter().collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().map_err(|e| StageError::Failed(e.to_string()))?;
    Ok(pool.install(|| {
        let mut t: bhtsne::tSNE<f32, ArrayView1<f32>> = bhtsne::tSNE::new(&samples);
        t.perplexity(perplexity).epochs(epochs).initial_embedding(init.to_vec()).epoch_callback(|e, _| {
            if (e + 1) % 50 == 0 {
                step(e + 1)
            }
        });
        t.barnes_hut_with_neighbors(theta, neighbours);
        (t.embedding(), t.kl_divergence().map_or(f64::NAN, |k| k as f64))
    }))
}

/// For each word, the share of the training sentences it occurs in that
/// carry the last class, and their majority class; the classes, sorted.
/// Test sentences (the `test` split, or the model's fold of k-fold data)
/// are left out: their labels stay unseen.
fn class_shares(tokens: &TokensTable, vocab: &Vocab, ids: &[usize], test_fold: Option<i32>) -> (Vec<String>, Vec<(f64, String)>) {
    let mut classes: Vec<String> = tokens.label.clone();
    classes.sort();
    classes.dedup();
    let slot: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, &id)| (vocab.tokens[id].as_str(), i)).collect();
    let mut counts = vec![vec![0u64; classes.len()]; ids.len()];
    for (r, (label, words)) in tokens.label.iter().zip(&tokens.tokens).enumerate() {
        if tokens.split[r] == "test" || (tokens.fold[r] >= 0 && Some(tokens.fold[r]) == test_fold) {
            continue;
        }
        let c = classes.binary_search(label).expect("every label is a class");
        let mut seen: Vec<usize> = words.iter().filter_map(|w| slot.get(w.as_str()).copied()).collect();
        seen.sort_unstable();
        seen.dedup();
        for s in seen {
            counts[s][c] += 1;
        }
    }
    let shares = counts
        .iter()
        .map(|row| {
            let total: u64 = row.iter().sum();
            let share = if total == 0 { f64::NAN } else { *row.last().unwrap_or(&0) as f64 / total as f64 };
            let majority =
                row.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0))).map_or(String::new(), |(c, _)| classes[c].clone());
            (share, majority)
        })
        .collect();
    (classes, shares)
}

// ---- neighbours ---------------------------------------------------------------

/// A `neighbours` stage's params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeighboursParams {
    /// The query words (Kim's Table 3: bad, good, n't, !).
    pub words: Vec<String>,
    /// Neighbours per word.
    pub k: usize,
}

impl Default for NeighboursParams {
    fn default() -> NeighboursParams {
        NeighboursParams { words: ["bad", "good", "n't", "!"].map(String::from).to_vec(), k: 4 }
    }
}

pub struct NeighboursKind;

impl Kind for NeighboursKind {
    const NAME: &'static str = "neighbours";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["table"];
    type Params = NeighboursParams;

    fn check(&self, p: &mut NeighboursParams) -> Result<(), String> {
        if p.words.is_empty() || p.k == 0 {
            return Err("words: at least one, and k at least 1".into());
        }
        Ok(())
    }

    fn check_inputs(&self, _: &NeighboursParams, inputs: &[&str]) -> Result<(), String> {
        check_names("neighbours", inputs, &["model", "embeddings", "vocab"])
    }

    fn run(&self, p: &NeighboursParams, job: &Job) -> Result<RunInfo, StageError> {
        let v = Vectors::load(job)?;
        let index: HashMap<&str, usize> = v.vocab.tokens.iter().enumerate().map(|(i, w)| (w.as_str(), i)).collect();
        let all: Vec<usize> = (2..v.vocab.tokens.len()).collect();
        let (stat, tuned) = (unit_rows(&v.pretrained, &all), unit_rows(&v.tuned, &all));
        let (dataset, variant) = (v.meta.config.dataset.clone(), v.meta.config.variant.to_string());
        let mut rows = Vec::new();
        for q in &p.words {
            let row = |rank: u32, s: (String, f64), t: (String, f64)| Neighbour {
                dataset: dataset.clone(),
                variant: variant.clone(),
                query: q.clone(),
                rank,
                static_word: s.0,
                static_cosine: s.1,
                tuned_word: t.0,
                tuned_cosine: t.1,
            };
            let Some(&id) = index.get(q.as_str()).filter(|&&i| i >= 2) else {
                rows.push(row(0, (String::new(), f64::NAN), (String::new(), f64::NAN)));
                continue;
            };
            let top = |m: &Array2<f32>| -> Vec<(String, f64)> {
                let a = m.row(id - 2);
                let mut c: Vec<(f32, usize)> = (0..m.nrows()).filter(|&j| j != id - 2).map(|j| (a.dot(&m.row(j)), j)).collect();
                c.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
                c.into_iter().take(p.k).map(|(cos, j)| (v.vocab.tokens[all[j]].clone(), cos as f64)).collect()
            };
            for (r, (s, t)) in top(&stat).into_iter().zip(top(&tuned)).enumerate() {
                rows.push(row(r as u32 + 1, s, t));
            }
        }
        kimcnn_schema::write_neighbours(&job.outputs["table"], &rows)?;
        Ok(RunInfo::default())
    }
}

fn check_names(kind: &str, inputs: &[&str], want: &[&str]) -> Result<(), String> {
    let mut have: BTreeMap<&str, usize> = BTreeMap::new();
    for i in inputs {
        if !want.contains(i) {
            return Err(format!("a `{kind}` stage takes the inputs {}; `{i}` is not one", want.join(", ")));
        }
        *have.entry(i).or_default() += 1;
    }
    match want.iter().find(|w| !have.contains_key(*w)) {
        Some(w) => Err(format!("a `{kind}` stage needs a `{w}` input (it takes {})", want.join(", "))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
