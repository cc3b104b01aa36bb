//! The `word2vec` stage kind.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use kimcnn_schema::{read_json, CorpusCounts, TokenizeSummary};
use kimcnn_stage::{Job, Kind, Progress, Resources, RunInfo, StageError};
use kimcnn_tokenize::TokensTable;

use crate::{train, Arch, Corpus, Settings, Word2VecError};

/// A `word2vec` stage's params (word2vec.c's defaults but `min_count`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Word2VecParams {
    pub arch: Arch,
    pub dim: usize,
    pub window: usize,
    pub negative: usize,
    pub min_count: u64,
    /// Sub-sampling threshold of frequent words (0: off).
    pub sample: f64,
    pub epochs: usize,
    /// The starting learning rate (none: 0.025 skip-gram, 0.05 CBOW).
    pub alpha: Option<f32>,
    /// 1: the same bytes every run. More: Hogwild threads, faster, and
    /// racing: the bytes differ from run to run.
    pub threads: usize,
    pub seed: u64,
    /// With k-fold data: leave this fold's rows (its test rows) out.
    pub exclude_fold: Option<i32>,
    /// Read at most this many lines of the `corpus` input.
    pub corpus_lines: Option<u64>,
}

impl Default for Word2VecParams {
    fn default() -> Word2VecParams {
        Word2VecParams {
            arch: Arch::SkipGram,
            dim: 100,
            window: 5,
            negative: 5,
            min_count: 5,
            sample: 1e-3,
            epochs: 5,
            alpha: None,
            threads: 1,
            seed: 1,
            exclude_fold: None,
            corpus_lines: None,
        }
    }
}

/// What a `word2vec` run trained on (its `summary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Word2VecSummary {
    pub arch: Arch,
    pub dim: usize,
    /// Words with vectors (seen `min_count` times).
    pub words: usize,
    /// Training rows of the tokens table read (never a test row or fold).
    pub rows: usize,
    pub corpus: CorpusCounts,
    /// Tokens of those words in the text, per epoch.
    pub tokens: u64,
    /// Tokens trained on over all epochs, after sub-sampling.
    pub trained: u64,
    pub threads: usize,
}

/// Wall-clock of a `word2vec` run (a measured output: `verify` ignores it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word2VecTimings {
    pub seconds: f64,
    /// Corpus tokens processed per second (before sub-sampling, as gensim reports).
    pub words_per_s: f64,
}

/// `word2vec`: `tokens` + `summary` (a tokenize or segment stage's: its
/// cleaning and pieces are applied to the `corpus`) + optional `corpus` ->
/// `vectors` (word2vec binary, for `embed`), `matrix` (safetensors),
/// `summary`, `timings`.
pub struct Word2VecKind;

impl Kind for Word2VecKind {
    const NAME: &'static str = "word2vec";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["vectors", "matrix", "summary", "timings"];
    const MEASURED: &'static [&'static str] = &["timings"];
    type Params = Word2VecParams;

    fn check(&self, p: &mut Word2VecParams) -> Result<(), String> {
        let positive = [("dim", p.dim), ("window", p.window), ("epochs", p.epochs), ("threads", p.threads)];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be at least 1"));
        }
        if !(0.0..1.0).contains(&p.sample) {
            return Err(format!("`sample` must be in [0, 1), found {}", p.sample));
        }
        if let Some(a) = p.alpha.filter(|a| !(a.is_finite() && *a > 0.0)) {
            return Err(format!("`alpha` must be a positive number, found {a}"));
        }
        p.min_count = p.min_count.max(1);
        Ok(())
    }

    fn check_inputs(&self, _: &Word2VecParams, inputs: &[&str]) -> Result<(), String> {
        let mut names: Vec<&str> = inputs.to_vec();
        names.sort();
        if names != ["summary", "tokens"] && names != ["corpus", "summary", "tokens"] {
            return Err("a `word2vec` stage takes `tokens` and `summary` (a tokenize or segment stage's) and optionally `corpus` (unlabeled text, a document a line, plain or gzip)".into());
        }
        Ok(())
    }

    fn resources(&self, p: &Word2VecParams) -> Resources {
        Resources { cpus: p.threads, gpus: 0 }
    }

    fn run(&self, p: &Word2VecParams, job: &Job) -> Result<RunInfo, StageError> {
        let bad = |name: &str, e: &dyn std::fmt::Display| StageError::BadInput(format!("input `{name}`: {e}"));
        let table = TokensTable::read(&job.inputs["tokens"]).map_err(|e| bad("tokens", &e))?;
        let summary: TokenizeSummary = read_json(&job.inputs["summary"]).map_err(|e| bad("summary", &e))?;
        let segmenter = kimcnn_subword::Segmenter::new(&summary.tokenizer).map_err(|e| bad("summary", &e))?;
        let rows = table.training_rows(p.exclude_fold);
        let mut sentences: Vec<Vec<String>> = rows.iter().map(|&i| table.tokens[i].clone()).collect();
        let mut corpus = CorpusCounts::default();
        if let Some(path) = job.inputs.get("corpus") {
            (job.progress)(Progress::Note(format!("reading the corpus {}", path.display())));
            let mut failed = None;
            corpus = kimcnn_tokenize::read_corpus(path, &summary.tokenizer, p.corpus_lines, |words| match segmenter.pieces(words) {
                Ok(ps) => {
                    sentences.push(ps);
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            })
            .map_err(|e| bad("corpus", &e))?;
            if let Some(e) = failed {
                return Err(bad("corpus", &e));
            }
            if let Some(note) = corpus.skipped_note() {
                (job.progress)(Progress::Note(note));
            }
        }
        let c = Corpus::new(&sentences, p.min_count).map_err(|e| match e {
            Word2VecError::TooSmall(m) => StageError::BadInput(m),
            e => StageError::Failed(e.to_string()),
        })?;
        drop(sentences);
        let settings = Settings {
            arch: p.arch,
            dim: p.dim,
            window: p.window,
            negative: p.negative,
            min_count: p.min_count,
            sample: p.sample,
            epochs: p.epochs,
            alpha: p.alpha.unwrap_or(if p.arch == Arch::Cbow { 0.05 } else { 0.025 }),
            threads: p.threads,
            seed: p.seed,
        };
        (job.progress)(Progress::Note(format!(
            "{} of {} words ({} tokens an epoch), {} epochs on {} thread(s)",
            p.arch,
            c.words.len(),
            c.tokens(),
            p.epochs,
            p.threads
        )));
        let t0 = std::time::Instant::now();
        let step = |done: u64, total: u64| {
            (job.progress)(Progress::Steps { unit: "token", done, total, message: String::new(), metrics: Default::default() })
        };
        let (vectors, trained) = train(&c, &settings, &step);
        let seconds = t0.elapsed().as_secs_f64();
        let failed = |e: Word2VecError| StageError::Failed(e.to_string());
        vectors.write_binary(&job.outputs["vectors"]).map_err(failed)?;
        vectors.write_safetensors(&job.outputs["matrix"]).map_err(failed)?;
        let out = Word2VecSummary {
            arch: p.arch,
            dim: p.dim,
            words: c.words.len(),
            rows: rows.len(),
            corpus,
            tokens: c.tokens(),
            trained: trained.words_trained,
            threads: p.threads,
        };
        kimcnn_schema::write_json(&job.outputs["summary"], &out)?;
        let timings = Word2VecTimings { seconds, words_per_s: trained.words_processed as f64 / seconds.max(1e-9) };
        kimcnn_schema::write_json(&job.outputs["timings"], &timings)?;
        Ok(RunInfo::default())
    }
}
