//! The `subword` and `segment` stage kinds.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use kimcnn_schema::{read_json, CorpusCounts, SubwordModel, SubwordSummary, TokenizeSummary};
use kimcnn_stage::{Job, Kind, Progress, RunInfo, StageError};
use kimcnn_tokenize::TokensTable;

use crate::{load, pieces, spec_of, train, SubwordError};

/// A `subword` stage's params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubwordParams {
    pub model: SubwordModel,
    /// Pieces in the vocabulary, the unknown piece included (a small
    /// corpus may give fewer; the summary says how many).
    pub vocab_size: usize,
    /// BPE, WordPiece and syllables: a piece seen fewer times is not kept.
    pub min_frequency: u64,
    /// With k-fold data: leave this fold's rows (its test rows) out.
    pub exclude_fold: Option<i32>,
    /// Read at most this many lines of the `corpus` input.
    pub corpus_lines: Option<u64>,
}

impl Default for SubwordParams {
    fn default() -> SubwordParams {
        SubwordParams { model: SubwordModel::Unigram, vocab_size: 16_000, min_frequency: 2, exclude_fold: None, corpus_lines: None }
    }
}

/// `subword`: `tokens` (+ the tokenize `summary`, whose cleaning the
/// `corpus` gets) -> `tokenizer` (tokenizer.json) + `summary`.
pub struct SubwordKind;

impl Kind for SubwordKind {
    const NAME: &'static str = "subword";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["tokenizer", "summary"];
    type Params = SubwordParams;

    fn check(&self, p: &mut SubwordParams) -> Result<(), String> {
        if p.vocab_size < 2 {
            return Err(format!("`vocab_size` must be at least 2 (the unknown piece and one more), found {}", p.vocab_size));
        }
        Ok(())
    }

    fn check_inputs(&self, _: &SubwordParams, inputs: &[&str]) -> Result<(), String> {
        let mut names: Vec<&str> = inputs.to_vec();
        names.sort();
        if names != ["summary", "tokens"] && names != ["corpus", "summary", "tokens"] {
            return Err(
                "a `subword` stage takes `tokens` and `summary` (a tokenize stage's) and optionally `corpus` (unlabeled text, a document a line, plain or gzip)"
                    .into(),
            );
        }
        Ok(())
    }

    fn run(&self, p: &SubwordParams, job: &Job) -> Result<RunInfo, StageError> {
        let bad = |name: &str, e: &dyn std::fmt::Display| StageError::BadInput(format!("input `{name}`: {e}"));
        let table = TokensTable::read(&job.inputs["tokens"]).map_err(|e| bad("tokens", &e))?;
        let summary: TokenizeSummary = read_json(&job.inputs["summary"]).map_err(|e| bad("summary", &e))?;
        if summary.tokenizer.subword.is_some() {
            return Err(bad("summary", &"its tokens are subword pieces already; wire the tokenize stage's summary, not a segment stage's"));
        }
        let rows = table.training_rows(p.exclude_fold);
        let mut texts: Vec<String> = rows.iter().map(|&i| table.tokens[i].join(" ")).filter(|t| !t.is_empty()).collect();
        let labelled = texts.len();
        let mut corpus = CorpusCounts::default();
        if let Some(path) = job.inputs.get("corpus") {
            (job.progress)(Progress::Note(format!("reading the corpus {}", path.display())));
            corpus = kimcnn_tokenize::read_corpus(path, &summary.tokenizer, p.corpus_lines, |w| {
                texts.push(w.join(" "));
                std::ops::ControlFlow::Continue(())
            })
            .map_err(|e| bad("corpus", &e))?;
            if let Some(note) = corpus.skipped_note() {
                (job.progress)(Progress::Note(note));
            }
        }
        if texts.is_empty() {
            return Err(StageError::BadInput(format!(
                "no training text: {} training rows{} and {} corpus lines, all empty",
                rows.len(),
                p.exclude_fold.map(|f| format!(" outside fold {f}")).unwrap_or_default(),
                corpus.used
            )));
        }
        (job.progress)(Progress::Note(format!(
            "training a {} tokenizer of {} pieces on {labelled} training rows and {} corpus lines",
            p.model, p.vocab_size, corpus.used
        )));
        let tk = train(p.model, p.vocab_size, p.min_frequency, &texts).map_err(failed)?;
        // Fertility over the labelled training rows: pieces per word.
        let counts: Vec<(u64, u64)> = rows
            .par_iter()
            .map(|&i| pieces(&tk, &table.tokens[i]).map(|ps| (table.tokens[i].len() as u64, ps.len() as u64)))
            .collect::<Result<_, _>>()
            .map_err(failed)?;
        let json = tk.to_string(false).map_err(|e| failed(SubwordError::Tokenizers(e.to_string())))?;
        std::fs::write(&job.outputs["tokenizer"], &json)?;
        let out = SubwordSummary {
            model: p.model,
            vocab_size: tk.get_vocab_size(true),
            vocab_size_asked: p.vocab_size,
            rows: rows.len(),
            corpus,
            words: counts.iter().map(|c| c.0).sum(),
            pieces: counts.iter().map(|c| c.1).sum(),
            tokenizers_version: crate::TOKENIZERS_VERSION.into(),
        };
        kimcnn_schema::write_json(&job.outputs["summary"], &out)?;
        Ok(RunInfo::default())
    }
}

fn failed(e: SubwordError) -> StageError {
    match e {
        SubwordError::Invalid(m) | SubwordError::Load(m) => StageError::BadInput(m),
        e => StageError::Failed(e.to_string()),
    }
}

/// A `segment` stage takes no params: the tokenizer says it all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentParams {}

/// `segment`: `tokens` + the tokenize `summary` + a `tokenizer` (a
/// `subword` stage's) -> `tokens` (the same rows, cut into pieces) and a
/// `summary` that carries the tokenizer (wire it as a train stage's
/// `tokenizer`).
pub struct SegmentKind;

impl Kind for SegmentKind {
    const NAME: &'static str = "segment";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["tokens", "summary"];
    type Params = SegmentParams;

    fn check_inputs(&self, _: &SegmentParams, inputs: &[&str]) -> Result<(), String> {
        let mut names: Vec<&str> = inputs.to_vec();
        names.sort();
        if names != ["summary", "tokenizer", "tokens"] {
            return Err("a `segment` stage takes `tokens` and `summary` (a tokenize stage's) and `tokenizer` (a subword stage's)".into());
        }
        Ok(())
    }

    fn run(&self, _: &SegmentParams, job: &Job) -> Result<RunInfo, StageError> {
        let bad = |name: &str, e: &dyn std::fmt::Display| StageError::BadInput(format!("input `{name}`: {e}"));
        let mut table = TokensTable::read(&job.inputs["tokens"]).map_err(|e| bad("tokens", &e))?;
        let mut summary: TokenizeSummary = read_json(&job.inputs["summary"]).map_err(|e| bad("summary", &e))?;
        if summary.tokenizer.subword.is_some() {
            return Err(bad("summary", &"its tokens are subword pieces already; segment the tokenize stage's tokens"));
        }
        let path = &job.inputs["tokenizer"];
        let json = std::fs::read_to_string(path).map_err(|e| bad("tokenizer", &format!("{}: {e}", path.display())))?;
        let tk = load(&json, &format!("input `tokenizer` ({})", path.display())).map_err(failed)?;
        let model = model_of(&json).map_err(|e| bad("tokenizer", &e))?;
        table.tokens = table.tokens.par_iter().map(|words| pieces(&tk, words)).collect::<Result<_, _>>().map_err(failed)?;
        table.write(&job.outputs["tokens"]).map_err(|e| StageError::Failed(e.to_string()))?;
        let lens: Vec<usize> = table.tokens.iter().map(Vec::len).collect();
        summary.tokens = lens.iter().sum();
        summary.mean_len = if lens.is_empty() { 0.0 } else { summary.tokens as f64 / lens.len() as f64 };
        summary.max_len = lens.iter().copied().max().unwrap_or(0);
        summary.tokenizer.subword = Some(spec_of(model, json));
        kimcnn_schema::write_json(&job.outputs["summary"], &summary)?;
        Ok(RunInfo::default())
    }
}

/// Which of ours a tokenizer.json is, from its model and pre-tokenizer.
fn model_of(json: &str) -> Result<SubwordModel, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    match v.pointer("/model/type").and_then(|t| t.as_str()) {
        Some("Unigram") => Ok(SubwordModel::Unigram),
        Some("BPE") => Ok(SubwordModel::Bpe),
        Some("WordPiece") => Ok(SubwordModel::WordPiece),
        Some("WordLevel") => Ok(SubwordModel::Syllable),
        other => Err(format!("a tokenizer of model {other:?}, not one a `subword` stage trains")),
    }
}
