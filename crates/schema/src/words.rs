//! What the word-vector stages write: a t-SNE map's points (`tsne`'s
//! `points.parquet`), its summary, and nearest neighbours (`neighbours`'
//! `table.parquet`, Kim's Table 3).

use std::path::Path;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, UInt64Type};
use serde::{Deserialize, Serialize};

use crate::table::{write_batch, Batches};
use crate::Result;

/// One word of a t-SNE map: where it lands from the pretrained vectors and
/// from the fine-tuned ones, and the labels of the sentences it occurs in.
#[derive(Debug, Clone, PartialEq)]
pub struct TsnePoint {
    pub word: String,
    /// Occurrences in the data set.
    pub count: u64,
    /// Whether the pretrained vectors had it (else its start was random).
    pub pretrained: bool,
    /// The share of the sentences it occurs in that carry the last class
    /// (`pos` of neg/pos): its polarity, for two classes.
    pub class_share: f64,
    /// The class most of those sentences carry.
    pub majority: String,
    pub x_pretrained: f64,
    pub y_pretrained: f64,
    pub x_tuned: f64,
    pub y_tuned: f64,
}

const POINT_F64: [&str; 5] = ["class_share", "x_pretrained", "y_pretrained", "x_tuned", "y_tuned"];

pub fn write_tsne(path: &Path, points: &[TsnePoint]) -> Result<()> {
    let mut fields = vec![
        Field::new("word", DataType::Utf8, false),
        Field::new("count", DataType::UInt64, false),
        Field::new("pretrained", DataType::Boolean, false),
        Field::new("majority", DataType::Utf8, false),
    ];
    fields.extend(POINT_F64.iter().map(|n| Field::new(*n, DataType::Float64, false)));
    let f = |g: fn(&TsnePoint) -> f64| Arc::new(Float64Array::from_iter_values(points.iter().map(g))) as ArrayRef;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(points.iter().map(|p| &p.word))),
        Arc::new(UInt64Array::from_iter_values(points.iter().map(|p| p.count))),
        Arc::new(BooleanArray::from(points.iter().map(|p| p.pretrained).collect::<Vec<_>>())),
        Arc::new(StringArray::from_iter_values(points.iter().map(|p| &p.majority))),
        f(|p| p.class_share),
        f(|p| p.x_pretrained),
        f(|p| p.y_pretrained),
        f(|p| p.x_tuned),
        f(|p| p.y_tuned),
    ];
    write_batch(path, fields, cols)
}

pub fn read_tsne(path: &Path) -> Result<Vec<TsnePoint>> {
    let t = Batches::read(path)?;
    let mut out = Vec::new();
    for b in &t.batches {
        let word = t.strings(b, "word")?;
        let majority = t.strings(b, "majority")?;
        let count = t.column(b, "count", &DataType::UInt64, false)?;
        let count = count.as_primitive::<UInt64Type>();
        let pretrained = t.column(b, "pretrained", &DataType::Boolean, false)?;
        let pretrained = pretrained.as_boolean();
        let v: Vec<Vec<f64>> = POINT_F64.iter().map(|n| t.f64s(b, n)).collect::<Result<_>>()?;
        for i in 0..b.num_rows() {
            out.push(TsnePoint {
                word: word[i].clone(),
                count: count.value(i),
                pretrained: pretrained.value(i),
                majority: majority[i].clone(),
                class_share: v[0][i],
                x_pretrained: v[1][i],
                y_pretrained: v[2][i],
                x_tuned: v[3][i],
                y_tuned: v[4][i],
            });
        }
    }
    Ok(out)
}

/// The `tsne` stage's `summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsneSummary {
    /// The data set and variant of the fine-tuned model.
    pub dataset: String,
    pub variant: String,
    pub words: usize,
    /// The classes, sorted; `class_share` is the last one's.
    pub classes: Vec<String>,
    /// The fits' final Kullback-Leibler divergence (lower: a truer map).
    pub kl_pretrained: f64,
    pub kl_tuned: f64,
    pub perplexity: f64,
    pub epochs: usize,
}

/// One neighbour of a query word, by cosine, in the pretrained (static)
/// vectors and in the fine-tuned ones: a row of Kim's Table 3.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    /// The data set and variant of the fine-tuned model.
    pub dataset: String,
    pub variant: String,
    pub query: String,
    /// 1-based; 0 with empty words where the query is not in the vocabulary.
    pub rank: u32,
    pub static_word: String,
    pub static_cosine: f64,
    pub tuned_word: String,
    pub tuned_cosine: f64,
}

pub fn write_neighbours(path: &Path, rows: &[Neighbour]) -> Result<()> {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let fields = vec![
        s("dataset"),
        s("variant"),
        s("query"),
        Field::new("rank", DataType::UInt32, false),
        s("static_word"),
        Field::new("static_cosine", DataType::Float64, false),
        s("tuned_word"),
        Field::new("tuned_cosine", DataType::Float64, false),
    ];
    let text = |g: fn(&Neighbour) -> &String| Arc::new(StringArray::from_iter_values(rows.iter().map(g))) as ArrayRef;
    let cols: Vec<ArrayRef> = vec![
        text(|r| &r.dataset),
        text(|r| &r.variant),
        text(|r| &r.query),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.rank))),
        text(|r| &r.static_word),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.static_cosine))),
        text(|r| &r.tuned_word),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.tuned_cosine))),
    ];
    write_batch(path, fields, cols)
}

pub fn read_neighbours(path: &Path) -> Result<Vec<Neighbour>> {
    let t = Batches::read(path)?;
    let mut out = Vec::new();
    for b in &t.batches {
        let (dataset, variant, query) = (t.strings(b, "dataset")?, t.strings(b, "variant")?, t.strings(b, "query")?);
        let rank = t.u32s(b, "rank")?;
        let (sw, sc) = (t.strings(b, "static_word")?, t.f64s(b, "static_cosine")?);
        let (tw, tc) = (t.strings(b, "tuned_word")?, t.f64s(b, "tuned_cosine")?);
        for i in 0..b.num_rows() {
            out.push(Neighbour {
                dataset: dataset[i].clone(),
                variant: variant[i].clone(),
                query: query[i].clone(),
                rank: rank[i],
                static_word: sw[i].clone(),
                static_cosine: sc[i],
                tuned_word: tw[i].clone(),
                tuned_cosine: tc[i],
            });
        }
    }
    Ok(out)
}
