//! What every figure shares: drawn once per backend (an SVG string for the
//! page, a PNG file beside it), its data as a Parquet table, and the marks
//! that suit few or many runs.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::fonts::{self, Script};
use crate::ReportError;

pub type DrawResult = Result<(), Box<dyn Error>>;

/// A figure: its size, every text it draws (to pick the fonts), how it
/// draws on any backend, and the data behind it.
pub trait Plot {
    /// Why there is nothing to draw, if so: the figure is then that line.
    fn empty(&self) -> Option<&'static str>;
    fn size(&self) -> (u32, u32);
    fn texts(&self) -> Vec<String>;
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
    fn data(&self) -> Data;
}

fn register<P: Plot>(p: &P) -> Result<(), ReportError> {
    let texts = p.texts();
    fonts::register_for(texts.iter().map(String::as_str))
}

fn size<P: Plot>(p: &P) -> (u32, u32) {
    if p.empty().is_some() {
        (900, 60)
    } else {
        p.size()
    }
}

/// Draws the figure, or the line that says why there is none.
fn paint<P: Plot, DB: DrawingBackend>(p: &P, name: &str, root: DrawingArea<DB, Shift>) -> Result<(), ReportError>
where
    DB::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| ReportError::Draw(name.into(), e.to_string());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    match p.empty() {
        Some(why) => root.draw(&Text::new(why.to_string(), (16, 22), text(why, 16.0).color(&RGBColor(90, 90, 90)))).map_err(|e| err(&e))?,
        None => p.draw(&root).map_err(|e| err(&e))?,
    }
    root.present().map_err(|e| err(&e))
}

/// The figure as SVG text (for the page).
pub fn svg<P: Plot>(p: &P, name: &str) -> Result<String, ReportError> {
    register(p)?;
    let mut s = String::new();
    paint(p, name, SVGBackend::with_string(&mut s, size(p)).into_drawing_area())?;
    Ok(s)
}

/// The figure as a PNG file.
pub fn png<P: Plot>(p: &P, name: &str, path: &Path) -> Result<(), ReportError> {
    register(p)?;
    let (w, h) = size(p);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    paint(p, name, BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area())?;
    let err = |e: &dyn std::fmt::Display| ReportError::Io(path.display().to_string(), e.to_string());
    let f = std::fs::File::create(path).map_err(|e| err(&e))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| err(&e))?;
    w.write_image_data(&buf).map_err(|e| err(&e))?;
    w.finish().map_err(|e| err(&e))
}

/// A text style in the font its text needs.
pub fn text(t: &str, size: f64) -> TextStyle<'static> {
    (Script::family(t), size).into_font().into()
}

/// A text style that fits every one of `texts`.
pub fn text_for<'a>(texts: impl IntoIterator<Item = &'a String>, size: f64) -> TextStyle<'static> {
    let hangul = texts.into_iter().any(|t| Script::of(t) == Script::Hangul);
    text(if hangul { "한" } else { "a" }, size)
}

/// Colours for series (variants, pads): Tableau 10's first.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// How many runs a group needs before a box says more than its points.
pub const BOX_FROM: usize = 8;

/// Quartiles by linear interpolation: [min, q1, median, q3, max].
pub fn quartiles(sorted: &[f64]) -> [f64; 5] {
    let q = |p: f64| {
        let pos = p * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    };
    [sorted[0], q(0.25), q(0.5), q(0.75), sorted[sorted.len() - 1]]
}

/// One group's marks at x: every value as a dot (spread sideways, in a
/// fixed pattern, so equal values stay visible), the mean of two or more as
/// a bar, and, from [`BOX_FROM`] values on, a box (quartiles) with whiskers
/// (min, max).
pub fn group_marks<DB: DrawingBackend>(
    chart: &mut ChartContext<DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>,
    x: f64,
    half: f64,
    values: &[f64],
    colour: RGBColor,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    if values.is_empty() {
        return Ok(());
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let line = ShapeStyle::from(&colour).stroke_width(2);
    if values.len() >= BOX_FROM {
        let [min, q1, med, q3, max] = quartiles(&sorted);
        chart.draw_series([Rectangle::new([(x - half, q1), (x + half, q3)], line)])?;
        chart.draw_series([
            PathElement::new(vec![(x - half, med), (x + half, med)], line),
            PathElement::new(vec![(x, min), (x, q1)], line),
            PathElement::new(vec![(x, q3), (x, max)], line),
        ])?;
    }
    let n = values.len();
    if n > 1 {
        let mean = values.iter().sum::<f64>() / n as f64;
        chart.draw_series([PathElement::new(vec![(x - half, mean), (x + half, mean)], ShapeStyle::from(&BLACK).stroke_width(3))])?;
    }
    let dots = values.iter().enumerate().map(|(i, v)| {
        let dx = if n == 1 { 0.0 } else { half * 0.8 * (i as f64 / (n - 1) as f64 - 0.5) };
        Circle::new((x + dx, *v), if n == 1 { 5 } else { 3 }, colour.mix(if n == 1 { 1.0 } else { 0.75 }).filled())
    });
    chart.draw_series(dots)?;
    Ok(())
}

/// A y range around the values with a point of margin, in whole points.
pub fn y_range(values: impl IntoIterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.into_iter().filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 0.0..100.0;
    }
    (lo - 1.0).floor()..(hi + 1.0).ceil()
}

/// An axis label: whole numbers without decimals (`75`), others with one (`74.5`).
pub fn tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// An axis of counts (epochs): whole numbers only.
pub fn integers(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// A label formatter for categories at x = 0, 1, ...
pub fn category<'a>(labels: &'a [String]) -> impl Fn(&f64) -> String + 'a {
    move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

/// A column of a figure's data.
pub enum Col {
    Str(Vec<String>),
    F64(Vec<f64>),
    U32(Vec<u32>),
}

/// The data behind a figure: named columns of equal length.
#[derive(Default)]
pub struct Data(pub Vec<(&'static str, Col)>);

impl Data {
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        let mut fields = Vec::new();
        let mut cols: Vec<ArrayRef> = Vec::new();
        for (name, col) in &self.0 {
            let (ty, arr): (DataType, ArrayRef) = match col {
                Col::Str(v) => (DataType::Utf8, Arc::new(StringArray::from_iter_values(v))),
                Col::F64(v) => (DataType::Float64, Arc::new(Float64Array::from(v.clone()))),
                Col::U32(v) => (DataType::UInt32, Arc::new(UInt32Array::from(v.clone()))),
            };
            fields.push(Field::new(*name, ty, false));
            cols.push(arr);
        }
        kimcnn_schema::write_batch(path, fields, cols).map_err(|e| ReportError::Io(path.display().to_string(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_interpolate() {
        assert_eq!(quartiles(&[1.0, 2.0, 3.0, 4.0, 5.0]), [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(quartiles(&[7.0]), [7.0; 5]);
        assert_eq!(quartiles(&[0.0, 10.0]), [0.0, 2.5, 5.0, 7.5, 10.0]);
    }

    #[test]
    fn y_ranges_pad_by_a_point() {
        assert_eq!(y_range([75.2, 80.9]), 74.0..82.0);
        assert_eq!(y_range([f64::NAN]), 0.0..100.0);
    }
}
