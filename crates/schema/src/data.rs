//! What the data stages write about what they did: the tokenizer a model
//! must reuse, and the summaries of tokenize, vocab and embed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

crate::named_enum! {
    /// How a sentence becomes tokens.
    pub enum Cleaner {
        /// Kim's `clean_str`: keep `A-Za-z0-9(),!?'\``, split clitics
        /// (`'s 've n't 're 'd 'll`) and `, ! ( ) ?` into tokens.
        Kim = "kim",
        /// Kim's `clean_str_sst`: only the character filter and whitespace
        /// (SST is already tokenised).
        KimSst = "kim_sst",
        /// `Kim` with any Unicode letter or digit kept (Korean, accented words).
        Unicode = "unicode",
        /// Split on whitespace only.
        Whitespace = "whitespace",
    }
}

crate::named_enum! {
    /// How words missing from the pretrained vectors are initialised.
    pub enum UnkInit { Uniform = "uniform", Normal = "normal", Zeros = "zeros" }
}

/// How raw text becomes tokens: what a model needs to predict on raw text
/// exactly as it was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizerSpec {
    pub cleaner: Cleaner,
    /// Lower-case every token (Kim: every data set but TREC).
    pub lower: bool,
    /// Kim's `\(` `\)` `\?` tokens (his re.sub replacement-string quirk).
    pub kim_quirk: bool,
    /// A trained subword tokenizer that cuts the cleaned words into pieces
    /// (a `segment` stage's output); none: the words are the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subword: Option<SubwordSpec>,
}

/// A trained subword tokenizer, whole: a model carries it, so that it
/// predicts on raw text exactly as it was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubwordSpec {
    pub model: SubwordModel,
    /// The BLAKE3 of `json`, checked when it is loaded.
    pub blake3: String,
    /// Hugging Face `tokenizers`' tokenizer.json.
    pub json: String,
}

crate::named_enum! {
    /// How a subword tokenizer cuts words.
    pub enum SubwordModel {
        /// SentencePiece's unigram language model (Kudo 2018).
        Unigram = "unigram",
        /// Byte-pair encoding (Sennrich et al. 2016).
        Bpe = "bpe",
        /// BERT's WordPiece (`##` marks a piece inside a word).
        WordPiece = "wordpiece",
        /// Each character a token (a Korean syllable): the baseline.
        Syllable = "syllable",
    }
}

/// The `subword` stage's `summary`: what the tokenizer was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubwordSummary {
    pub model: SubwordModel,
    pub vocab_size: usize,
    pub vocab_size_asked: usize,
    /// Training rows of the tokens table read (never a test row or fold).
    pub rows: usize,
    /// Lines of the unlabeled corpus read, and those skipped.
    pub corpus: CorpusCounts,
    /// Words trained on, and the pieces they were cut into.
    pub words: u64,
    pub pieces: u64,
    /// The `tokenizers` crate that trained it (Python's `tokenizers` of the
    /// same minor version loads it).
    pub tokenizers_version: String,
}

/// What reading an unlabeled corpus (a document a line) found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusCounts {
    pub lines: u64,
    pub used: u64,
    pub empty: u64,
    /// Lines that are not valid UTF-8 (skipped: a corpus of mixed encodings).
    pub invalid_utf8: u64,
}

impl CorpusCounts {
    /// What a stage says when lines were skipped for their encoding.
    pub fn skipped_note(&self) -> Option<String> {
        (self.invalid_utf8 > 0).then(|| format!("the corpus: {} of {} lines are not UTF-8 and were skipped", self.invalid_utf8, self.lines))
    }
}

/// The `tokenize` stage's `summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizeSummary {
    pub rows: usize,
    /// Rows per label.
    pub classes: BTreeMap<String, usize>,
    /// Rows per split (`train`, `dev`, `test`; k-fold data: all `train`).
    pub splits: BTreeMap<String, usize>,
    pub folds: Option<u32>,
    pub tokens: usize,
    pub mean_len: f64,
    pub max_len: usize,
    /// Sentences that are empty after cleaning (kept, with no tokens).
    pub empty_after_cleaning: usize,
    /// Blank lines / empty documents skipped, per input.
    pub skipped_blank: BTreeMap<String, usize>,
    /// Lines that were not valid UTF-8 and were re-decoded as Latin-1, per input.
    pub redecoded_latin1: BTreeMap<String, usize>,
    #[serde(flatten)]
    pub tokenizer: TokenizerSpec,
}

/// The `vocab` stage's `summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VocabSummary {
    pub size: usize,
    pub rows_counted: usize,
    pub tokens_counted: u64,
    pub distinct_words: usize,
    pub dropped_words: usize,
    pub unk_occurrences: u64,
}

/// The `embed` stage's `coverage`: how much of the vocabulary the
/// pretrained vectors know, and how the rest was initialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub format: String,
    pub dim: usize,
    pub pretrained_words: u64,
    pub vocab_words: usize,
    pub words_found: usize,
    pub words_found_lowercased: usize,
    pub word_coverage: f64,
    pub tokens_total: u64,
    pub tokens_found: u64,
    pub token_coverage: f64,
    pub pretrained_entry_mean: f64,
    pub pretrained_entry_var: f64,
    pub unk_init: UnkInit,
    /// The uniform bound (or normal std) used for unknown words.
    pub unk_scale: f64,
}

impl Coverage {
    /// The uniform bound that matches these vectors: the unknown-word bound
    /// where unknown words were drawn uniformly (variance-matched unless the
    /// embed stage's `unk_a` fixed it), else sqrt(3 var) of the pretrained
    /// entries. CNN-rand's `rand_a: matched`.
    pub fn matched_bound(&self) -> f64 {
        match self.unk_init {
            UnkInit::Uniform => self.unk_scale,
            _ => (3.0 * self.pretrained_entry_var).sqrt(),
        }
    }
}

/// The metadata of `embeddings.safetensors`: the vocabulary it was built
/// for (its BLAKE3) and its coverage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsMeta {
    pub vocab_blake3: String,
    pub coverage: Coverage,
}
