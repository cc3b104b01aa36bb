//! The `tokenize` stage kind: its params and how the runner runs it.

use kimcnn_schema::{Cleaner, Text, TokenizerSpec};
use kimcnn_stage::{Job, Kind, RunInfo, StageError};
use serde::{Deserialize, Serialize};

use crate::{Encoding, Format, Input, TokenizeError};

kimcnn_schema::named_enum! {
    /// The `format` param: the layout of a data set's files.
    pub enum FormatName { Lines = "lines", Trec = "trec", Sst = "sst", Nsmc = "nsmc", Tsv = "tsv", Csv = "csv" }
}

/// A `tokenize` stage's params. The defaults of `cleaner`, `lower` and
/// `encoding` depend on the format; checking fills them in, so the
/// normalised params name them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Required: lines, trec, sst, nsmc, tsv or csv.
    pub format: Option<FormatName>,
    /// tsv/csv: the header's text and label columns.
    pub text_column: String,
    pub label_column: String,
    /// Default: kim_sst for sst, unicode for nsmc, else kim.
    pub cleaner: Option<Cleaner>,
    /// Default: true, except for trec.
    pub lower: Option<bool>,
    /// Kim's `\(` `\)` `\?` tokens (his re.sub replacement-string quirk).
    pub kim_quirk: bool,
    /// Default: utf8-latin1 for lines, trec and sst (their originals need
    /// it), else utf8.
    pub encoding: Option<Encoding>,
    /// k for a k-fold column, for data sets without a test split.
    pub folds: Option<u32>,
    /// Fraction of train carved out as dev where no dev file is given (not
    /// for k-fold data, whose dev depends on the test fold: see [`crate::carve_dev`]).
    pub dev_fraction: f64,
    pub seed: u64,
    /// The allowed labels; a label outside them is an error. Empty: any.
    pub classes: Vec<Text>,
    /// For `lines`: the order the class files are read in (ids follow it).
    /// Empty: input names sorted.
    pub order: Vec<String>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            format: None,
            text_column: "text".into(),
            label_column: "label".into(),
            cleaner: None,
            lower: None,
            kim_quirk: false,
            encoding: None,
            folds: None,
            dev_fraction: 0.1,
            seed: 3435,
            classes: Vec::new(),
            order: Vec::new(),
        }
    }
}

impl Params {
    /// Params for `format` with every other default.
    pub fn new(format: FormatName) -> Params {
        Params { format: Some(format), ..Params::default() }
    }

    fn format_name(&self) -> FormatName {
        self.format.unwrap_or(FormatName::Lines)
    }

    /// The file layout, with the columns of tsv/csv.
    pub fn format(&self) -> Format {
        let (text, label) = (self.text_column.clone(), self.label_column.clone());
        match self.format_name() {
            FormatName::Lines => Format::Lines,
            FormatName::Trec => Format::Trec,
            FormatName::Sst => Format::Sst,
            FormatName::Nsmc => Format::Nsmc,
            FormatName::Tsv => Format::Tsv { text, label },
            FormatName::Csv => Format::Csv { text, label },
        }
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding.unwrap_or_else(|| self.format().default_encoding())
    }

    /// How sentences become tokens.
    pub fn tokenizer(&self) -> TokenizerSpec {
        let f = self.format_name();
        let cleaner = self.cleaner.unwrap_or(match f {
            FormatName::Sst => Cleaner::KimSst,
            FormatName::Nsmc => Cleaner::Unicode,
            _ => Cleaner::Kim,
        });
        TokenizerSpec { cleaner, lower: self.lower.unwrap_or(f != FormatName::Trec), kim_quirk: self.kim_quirk, subword: None }
    }
}

/// A `tokenize` stage: raw data-set files -> `tokens` (parquet) + `summary`.
///
/// Inputs: one per class file (`format: lines`) or `train`/`dev`/`test`;
/// optionally `splits`, a JSON file of exact train/dev/test ids.
pub struct TokenizeKind;

impl Kind for TokenizeKind {
    const NAME: &'static str = "tokenize";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["tokens", "summary"];
    type Params = Params;

    fn check(&self, p: &mut Params) -> Result<(), String> {
        if p.format.is_none() {
            return Err("param `format` is required: lines, trec, sst, nsmc, tsv or csv".into());
        }
        if p.folds.is_some_and(|k| k < 2) {
            return Err("param `folds` must be at least 2".into());
        }
        if !(0.0..1.0).contains(&p.dev_fraction) {
            return Err(format!("param `dev_fraction` must be in [0, 1), found {}", p.dev_fraction));
        }
        let spec = p.tokenizer();
        (p.cleaner, p.lower, p.encoding) = (Some(spec.cleaner), Some(spec.lower), Some(p.encoding()));
        Ok(())
    }

    fn check_inputs(&self, _: &Params, inputs: &[&str]) -> Result<(), String> {
        if inputs.iter().all(|i| *i == "splits") {
            return Err("a `tokenize` stage needs its data files as inputs".into());
        }
        Ok(())
    }

    fn run(&self, p: &Params, job: &Job) -> Result<RunInfo, StageError> {
        let inputs: Vec<Input> =
            job.inputs.iter().filter(|(n, _)| *n != "splits").map(|(n, path)| Input { name: n.clone(), path: path.clone() }).collect();
        let splits = job.inputs.get("splits").map(|p| p.as_path());
        let summary = crate::tokenize(p, &inputs, splits, &job.outputs["tokens"]).map_err(|e| match e {
            TokenizeError::Line { .. } | TokenizeError::Invalid(_) | TokenizeError::Splits(_) => StageError::BadInput(e.to_string()),
            other => other.into(),
        })?;
        kimcnn_schema::write_json(&job.outputs["summary"], &summary)?;
        Ok(RunInfo::default())
    }
}
