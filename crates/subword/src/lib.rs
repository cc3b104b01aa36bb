//! Trained subword tokenizers, through Hugging Face's `tokenizers` crate
//! (the library behind Python's `tokenizers`: a `tokenizer.json` written
//! here loads there, same minor version).
//!
//! Korean words take many endings, so whitespace words split the data thinly
//! and borrowed vectors know few of them. A tokenizer trained on the data's
//! own training text (never its test text) and an unlabeled corpus cuts the
//! cleaned words into pieces that recur:
//!
//! - the `subword` stage trains one: `unigram` (SentencePiece's), `bpe`,
//!   `wordpiece`, or `syllable` (each character a token: the baseline);
//! - the `segment` stage cuts a tokens table's words into its pieces, and
//!   its summary carries the tokenizer whole, so that a model trained on the
//!   pieces records it and predicts on raw text exactly as it was trained;
//! - [`Segmenter`] does the same to raw text (`predict`).

mod kind;

pub use kind::{SegmentKind, SubwordKind, SubwordParams};

use kimcnn_schema::{SubwordModel, SubwordSpec, TokenizerSpec};
use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::{AddedToken, DecoderWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// The version of `tokenizers` this build trains and loads with.
pub const TOKENIZERS_VERSION: &str = "0.23";

/// The unknown piece of the unigram, BPE and syllable models (WordPiece's
/// is `[UNK]`, its own convention).
pub const UNK: &str = "<unk>";

#[derive(Debug, thiserror::Error)]
pub enum SubwordError {
    /// Nothing to train on, or a tokenizer that cannot be built.
    #[error("{0}")]
    Invalid(String),
    /// A tokenizer.json that does not load or does not match its record.
    #[error("{0}")]
    Load(String),
    #[error("the subword tokenizer: {0}")]
    Tokenizers(String),
}

pub type Result<T, E = SubwordError> = std::result::Result<T, E>;

fn tk_err(e: impl std::fmt::Display) -> SubwordError {
    SubwordError::Tokenizers(e.to_string())
}

/// Trains a tokenizer of `model` on `texts` (cleaned words joined by spaces,
/// a document each). Deterministic for the same texts in the same order.
pub fn train(model: SubwordModel, vocab_size: usize, min_frequency: u64, texts: &[String]) -> Result<Tokenizer> {
    if texts.is_empty() {
        return Err(SubwordError::Invalid("no text to train a subword tokenizer on".into()));
    }
    let unk = || vec![AddedToken::from(UNK, true)];
    let (mut tk, mut trainer): (Tokenizer, TrainerWrapper) = match model {
        SubwordModel::Unigram => (
            Tokenizer::new(Unigram::default()),
            UnigramTrainer::builder()
                .vocab_size(vocab_size as u32)
                .special_tokens(unk())
                .unk_token(Some(UNK.into()))
                .show_progress(false)
                .build()
                .map_err(tk_err)?
                .into(),
        ),
        SubwordModel::Bpe => (
            Tokenizer::new(BPE::default()),
            BpeTrainer::builder()
                .vocab_size(vocab_size)
                .min_frequency(min_frequency)
                .special_tokens(unk())
                .show_progress(false)
                .build()
                .into(),
        ),
        SubwordModel::WordPiece => (
            Tokenizer::new(WordPiece::default()),
            WordPieceTrainer::builder()
                .vocab_size(vocab_size)
                .min_frequency(min_frequency)
                .special_tokens(vec![AddedToken::from("[UNK]", true)])
                .show_progress(false)
                .build()
                .into(),
        ),
        SubwordModel::Syllable => (
            Tokenizer::new(WordLevel::builder().unk_token(UNK.into()).build().map_err(tk_err)?),
            WordLevelTrainer::builder()
                .vocab_size(vocab_size)
                .min_frequency(min_frequency)
                .special_tokens(unk())
                .show_progress(false)
                .build()
                .map_err(tk_err)?
                .into(),
        ),
    };
    let (pre, decoder): (PreTokenizerWrapper, Option<DecoderWrapper>) = match model {
        // SentencePiece's convention: `▁` starts each word's first piece.
        SubwordModel::Unigram | SubwordModel::Bpe => {
            (Metaspace::new('▁', PrependScheme::Always, true).into(), Some(MetaspaceDecoder::new('▁', PrependScheme::Always, true).into()))
        }
        SubwordModel::WordPiece => (WhitespaceSplit.into(), Some(WordPieceDecoder::default().into())),
        SubwordModel::Syllable => {
            let chars = Split::new(SplitPattern::Regex(".".into()), SplitDelimiterBehavior::Isolated, false).map_err(tk_err)?;
            (Sequence::new(vec![WhitespaceSplit.into(), chars.into()]).into(), None)
        }
    };
    tk.with_pre_tokenizer(Some(pre));
    tk.with_decoder(decoder);
    tk.train(&mut trainer, texts.iter()).map_err(|e| {
        if e.to_string().contains("not large enough to contain all chars") {
            let chars: std::collections::BTreeSet<char> = texts.iter().flat_map(|t| t.chars()).filter(|c| !c.is_whitespace()).collect();
            SubwordError::Invalid(format!(
                "`vocab_size` {vocab_size} cannot hold the {} characters of the training text: raise `vocab_size`",
                chars.len()
            ))
        } else {
            tk_err(e)
        }
    })?;
    // BPE's trainer leaves the model without an unknown piece: an unseen character would vanish.
    if let ModelWrapper::BPE(b) = tk.get_model() {
        let mut b: BPE = b.clone();
        b.unk_token = Some(UNK.into());
        tk.with_model(ModelWrapper::BPE(b));
    }
    canonical(&tk)
}

/// The same tokenizer, written the same way whatever order the trainer's
/// hash maps (seeded at random per process) visited its pieces in: the
/// unigram and WordPiece trainers learn the same pieces every time but list
/// them in that order; the unigram's EM also sums in that order (scores
/// differ in the last bits) and gives the characters it pruned their small
/// penalties in it. So: WordPiece ids in text order (it matches by text);
/// unigram scores rounded to 1e-8 (a 1e-15 wobble crosses a rounding edge
/// about once in 10^7 pieces), and the penalties (single characters at the
/// lowest score plus k x 1e-4) handed out in text order; no other piece's
/// score moves. Segmentation changes only among those rare characters.
fn canonical(tk: &Tokenizer) -> Result<Tokenizer> {
    let mut v: serde_json::Value = serde_json::from_str(&tk.to_string(false).map_err(tk_err)?).map_err(tk_err)?;
    let specials = v["added_tokens"].as_array().map_or(0, Vec::len);
    let model = &mut v["model"];
    match model["type"].as_str() {
        Some("WordPiece") => {
            let vocab = model["vocab"].as_object().ok_or_else(|| tk_err("a WordPiece model without a vocab"))?;
            let mut words: Vec<(&String, u64)> = vocab.iter().map(|(w, id)| (w, id.as_u64().unwrap_or(u64::MAX))).collect();
            // Special tokens keep their ids; the rest follow in text order.
            words.sort_by(|a, b| (a.1 >= specials as u64, a.0).cmp(&(b.1 >= specials as u64, b.0)));
            let ids: serde_json::Map<String, serde_json::Value> =
                words.iter().enumerate().map(|(i, (w, _))| ((*w).clone(), serde_json::json!(i))).collect();
            model["vocab"] = serde_json::Value::Object(ids);
        }
        Some("Unigram") => {
            let vocab = model["vocab"].as_array().ok_or_else(|| tk_err("a unigram model without a vocab"))?;
            let round = |x: f64| (x * 1e8).round() / 1e8;
            let mut pieces: Vec<(String, f64)> = vocab
                .iter()
                .map(|p| Some((p.get(0)?.as_str()?.to_string(), round(p.get(1)?.as_f64()?))))
                .collect::<Option<_>>()
                .ok_or_else(|| tk_err("a unigram piece that is not [text, score]"))?;
            let rest = pieces.get_mut(specials..).ok_or_else(|| tk_err("fewer unigram pieces than special tokens"))?;
            // The characters the trainer kept at the lowest score plus k x 1e-4
            // (k = 0, 1, ...), in its hash order: single characters only, on that
            // grid; given the same scores in text order. Every other piece keeps its score.
            let low = rest.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let on_grid = |p: &(String, f64)| {
                let k = (p.1 - low) / 1e-4;
                p.0.chars().count() == 1 && (k - k.round()).abs() < 1e-3
            };
            let mut block: Vec<usize> = (0..rest.len()).filter(|&i| on_grid(&rest[i])).collect();
            let mut scores: Vec<f64> = block.iter().map(|&i| rest[i].1).collect();
            scores.sort_by(|a, b| b.total_cmp(a));
            block.sort_by(|&a, &b| rest[a].0.cmp(&rest[b].0));
            for (&i, sc) in block.iter().zip(scores) {
                rest[i].1 = sc;
            }
            rest.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            model["vocab"] = serde_json::Value::Array(pieces.into_iter().map(|(p, s)| serde_json::json!([p, s])).collect());
        }
        _ => return Ok(tk.clone()),
    }
    load(&v.to_string(), "the trained tokenizer")
}

/// The words of a cleaned sentence cut into `tk`'s pieces.
pub fn pieces(tk: &Tokenizer, words: &[String]) -> Result<Vec<String>> {
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let enc = tk.encode(words.join(" "), false).map_err(tk_err)?;
    // By id: an unknown character is the unknown piece (a unigram model's
    // token would be the character itself).
    Ok(enc.get_ids().iter().map(|&id| tk.id_to_token(id).unwrap_or_else(|| UNK.to_string())).collect())
}

/// A tokenizer.json's text as a [`SubwordSpec`] (with its hash).
pub fn spec_of(model: SubwordModel, json: String) -> SubwordSpec {
    SubwordSpec { model, blake3: blake3::hash(json.as_bytes()).to_hex().to_string(), json }
}

/// Loads a tokenizer.json's text; `what` names it in errors.
pub fn load(json: &str, what: &str) -> Result<Tokenizer> {
    json.parse::<Tokenizer>().map_err(|e| {
        SubwordError::Load(format!(
            "{what}: not a tokenizer.json that `tokenizers` {TOKENIZERS_VERSION} loads ({e}); train it again with this kimcnn's `subword` stage"
        ))
    })
}

/// Raw text to the tokens a model was trained on: the tokenize stage's
/// cleaning, then the subword pieces if the spec has a tokenizer.
pub struct Segmenter {
    spec: TokenizerSpec,
    subword: Option<Tokenizer>,
}

impl Segmenter {
    /// Refuses a tokenizer whose text does not hash to its record.
    pub fn new(spec: &TokenizerSpec) -> Result<Segmenter> {
        let subword = match &spec.subword {
            None => None,
            Some(s) => {
                let found = blake3::hash(s.json.as_bytes()).to_hex().to_string();
                if found != s.blake3 {
                    return Err(SubwordError::Load(format!(
                        "the model's subword tokenizer is not the one it was trained with (BLAKE3 {} recorded, {} found)",
                        s.blake3.get(..12).unwrap_or(&s.blake3),
                        &found[..12]
                    )));
                }
                Some(load(&s.json, "the model's subword tokenizer")?)
            }
        };
        Ok(Segmenter { spec: spec.clone(), subword })
    }

    pub fn tokens(&self, text: &str) -> Result<Vec<String>> {
        self.pieces(kimcnn_tokenize::tokenize_text(&self.spec, text))
    }

    /// Cleaned words to tokens: the words themselves, or their pieces.
    pub fn pieces(&self, words: Vec<String>) -> Result<Vec<String>> {
        match &self.subword {
            None => Ok(words),
            Some(tk) => pieces(tk, &words),
        }
    }
}

#[cfg(test)]
mod tests;
