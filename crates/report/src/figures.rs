//! The report's figures, each chosen for its data: accuracy per variant
//! (Kim's Table 2 as marks), learning curves, confusion heat maps, a
//! study's accuracy per epoch budget (the origin project's main figure),
//! the tuning benchmark's running times, and t-SNE maps of word vectors.

use plotters::coord::Shift;
use plotters::prelude::*;

use kimcnn_schema::{
    config_text, value_text, EpochRow, Metrics, RunResult, Selected, Selection, TrialCell, TrialStatus, TsnePoint, TsneSummary, Variant,
};

use crate::figure::{category, group_marks, integers, text, text_for, tick, y_range, Col, Data, DrawResult, Plot, PALETTE};
use crate::{datasets_of, kim_2014, mixed_settings, settings, VARIANTS};

const TITLE: f64 = 17.0;
const LABEL: f64 = 13.0;

fn variant_colour(v: Variant) -> RGBColor {
    PALETTE[VARIANTS.iter().position(|&x| x == v).unwrap_or(0)]
}

/// A grid of `n` panels, `cols` wide, under a title.
fn grid<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    n: usize,
    cols: usize,
) -> Result<Vec<DrawingArea<DB, Shift>>, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let body = root.titled(title, text(title, TITLE))?;
    let cols = cols.max(1);
    let rows = n.div_ceil(cols).max(1);
    Ok(body.split_evenly((rows, cols)).into_iter().take(n).collect())
}

// ---- accuracy per variant (Kim's Table 2) -----------------------------------

/// Test accuracy per variant, a panel per data set, with Kim's figure.
pub struct Accuracy<'a> {
    pub rows: &'a [RunResult],
}

/// One group of runs: label, colour, accuracies (%), Kim's figure.
type Group = (String, RGBColor, Vec<f64>, Option<f64>);

impl Accuracy<'_> {
    fn panels(&self) -> Vec<(String, Vec<Group>)> {
        let many = mixed_settings(self.rows);
        datasets_of(self.rows)
            .into_iter()
            .map(|d| {
                let mut groups = Vec::new();
                for v in VARIANTS {
                    for (pad, init) in settings(self.rows, v) {
                        let accs: Vec<f64> = self
                            .rows
                            .iter()
                            .filter(|r| r.dataset == d && r.variant == v && r.pad == pad && r.init == init)
                            .map(|r| 100.0 * r.accuracy)
                            .collect();
                        if !accs.is_empty() {
                            let label = if many { format!("{v} {pad}/{init}") } else { v.to_string() };
                            groups.push((label, variant_colour(v), accs, kim_2014(d, v)));
                        }
                    }
                }
                (d.to_string(), groups)
            })
            .collect()
    }
}

impl Plot for Accuracy<'_> {
    fn empty(&self) -> Option<&'static str> {
        self.rows.is_empty().then_some("No evaluated runs yet: `kimcnn run` trains and evaluates them.")
    }

    fn size(&self) -> (u32, u32) {
        let n = datasets_of(self.rows).len().max(1) as u32;
        let cols = n.min(3);
        ((440 * cols).max(760), 40 + 340 * n.div_ceil(cols))
    }

    fn texts(&self) -> Vec<String> {
        self.rows.iter().map(|r| r.dataset.clone()).collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let panels = self.panels();
        let title = "Test accuracy %: a dot per run, bar = mean, box from 8 runs; red x = Kim (2014)";
        let areas = grid(root, title, panels.len(), 3)?;
        for (area, (dataset, groups)) in areas.iter().zip(&panels) {
            let values = groups.iter().flat_map(|g| g.2.iter().copied().chain(g.3));
            let labels: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
            let mut chart = ChartBuilder::on(area)
                .caption(dataset.to_uppercase(), text(dataset, 16.0))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(45)
                .build_cartesian_2d(-0.5f64..groups.len() as f64 - 0.5, y_range(values))?;
            let fmt = category(&labels);
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(groups.len() + 1)
                .x_label_formatter(&fmt)
                .y_label_formatter(&tick)
                .label_style(text_for(&labels, LABEL))
                .y_desc("test accuracy %")
                .light_line_style(WHITE)
                .draw()?;
            for (i, (_, colour, accs, kim)) in groups.iter().enumerate() {
                group_marks(&mut chart, i as f64, 0.3, accs, *colour)?;
                if let Some(k) = kim {
                    chart.draw_series([Cross::new((i as f64, *k), 6, ShapeStyle::from(&RED).stroke_width(2))])?;
                }
            }
        }
        Ok(())
    }

    fn data(&self) -> Data {
        let r = self.rows;
        Data(vec![
            ("dataset", Col::Str(r.iter().map(|r| r.dataset.clone()).collect())),
            ("variant", Col::Str(r.iter().map(|r| r.variant.to_string()).collect())),
            ("pad", Col::Str(r.iter().map(|r| r.pad.to_string()).collect())),
            ("init", Col::Str(r.iter().map(|r| r.init.clone()).collect())),
            ("fold", Col::Str(r.iter().map(|r| r.fold.map_or("-".into(), |f| f.to_string())).collect())),
            ("seed", Col::Str(r.iter().map(|r| r.seed.to_string()).collect())),
            ("test_accuracy", Col::F64(r.iter().map(|r| r.accuracy).collect())),
            ("kim_2014", Col::F64(r.iter().map(|r| kim_2014(&r.dataset, r.variant).map_or(f64::NAN, |k| k / 100.0)).collect())),
        ])
    }
}

// ---- learning curves --------------------------------------------------------

/// One training run's history, with the epoch it kept (selected on dev).
#[derive(Debug, Clone)]
pub struct Run {
    pub stage: String,
    pub dataset: String,
    pub variant: Variant,
    pub fold: Option<i32>,
    pub seed: u64,
    pub history: Vec<EpochRow>,
    pub best_epoch: usize,
}

/// Train loss and dev accuracy per epoch, a row of two panels per data set,
/// a line per run coloured by variant, the selected epoch ringed.
pub struct Curves<'a> {
    pub runs: &'a [Run],
}

impl Curves<'_> {
    fn datasets(&self) -> Vec<&str> {
        let mut d: Vec<&str> = Vec::new();
        for r in self.runs {
            if !d.contains(&r.dataset.as_str()) {
                d.push(&r.dataset);
            }
        }
        d
    }
}

impl Plot for Curves<'_> {
    fn empty(&self) -> Option<&'static str> {
        self.runs.is_empty().then_some("No trained runs yet.")
    }

    fn size(&self) -> (u32, u32) {
        (1000, 40 + 300 * self.datasets().len().max(1) as u32)
    }

    fn texts(&self) -> Vec<String> {
        self.runs.iter().map(|r| r.dataset.clone()).collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let datasets = self.datasets();
        let title = "Learning curves: train loss and dev accuracy per epoch; ringed: the epoch kept (selected on dev)";
        let areas = grid(root, title, 2 * datasets.len(), 2)?;
        for (i, d) in datasets.iter().enumerate() {
            let runs: Vec<&Run> = self.runs.iter().filter(|r| r.dataset == *d).collect();
            let epochs = runs.iter().map(|r| r.history.len()).max().unwrap_or(1).max(2) as f64;
            for (j, (name, get)) in
                [("train loss", (|e: &EpochRow| e.train_loss) as fn(&EpochRow) -> f64), ("dev accuracy %", |e| 100.0 * e.dev_accuracy)]
                    .into_iter()
                    .enumerate()
            {
                let values = runs.iter().flat_map(|r| r.history.iter().map(get));
                let range = if j == 0 {
                    let hi = values.filter(|v| v.is_finite()).fold(0.0f64, f64::max);
                    0.0..(hi * 1.05).max(1e-3)
                } else {
                    y_range(values)
                };
                let mut chart = ChartBuilder::on(&areas[2 * i + j])
                    .caption(format!("{} - {name}", d.to_uppercase()), text(d, 15.0))
                    .margin(10)
                    .x_label_area_size(28)
                    .y_label_area_size(50)
                    .build_cartesian_2d(1.0..epochs, range)?;
                chart
                    .configure_mesh()
                    .x_desc("epoch")
                    .x_label_formatter(&integers)
                    .y_label_formatter(&|v| if j == 0 { format!("{v:.2}") } else { tick(v) })
                    .light_line_style(RGBColor(235, 235, 235))
                    .label_style(text("a", LABEL))
                    .draw()?;
                for v in VARIANTS {
                    let colour = variant_colour(v);
                    let mut first = true;
                    for r in runs.iter().filter(|r| r.variant == v) {
                        let pts: Vec<(f64, f64)> = r.history.iter().map(|e| (e.epoch as f64, get(e))).filter(|p| p.1.is_finite()).collect();
                        let series = chart.draw_series(LineSeries::new(pts, colour.mix(0.8).stroke_width(2)))?;
                        if first {
                            series
                                .label(v.to_string())
                                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3)));
                            first = false;
                        }
                        if let Some(e) = r.history.iter().find(|e| e.epoch == r.best_epoch) {
                            chart.draw_series([Circle::new((e.epoch as f64, get(e)), 5, colour.stroke_width(2))])?;
                        }
                    }
                }
                if j == 1 {
                    chart
                        .configure_series_labels()
                        .position(SeriesLabelPosition::LowerRight)
                        .background_style(WHITE.mix(0.85))
                        .border_style(RGBColor(200, 200, 200))
                        .label_font(text("a", LABEL))
                        .draw()?;
                }
            }
        }
        Ok(())
    }

    fn data(&self) -> Data {
        let rows: Vec<(&Run, &EpochRow)> = self.runs.iter().flat_map(|r| r.history.iter().map(move |e| (r, e))).collect();
        Data(vec![
            ("stage", Col::Str(rows.iter().map(|(r, _)| r.stage.clone()).collect())),
            ("dataset", Col::Str(rows.iter().map(|(r, _)| r.dataset.clone()).collect())),
            ("variant", Col::Str(rows.iter().map(|(r, _)| r.variant.to_string()).collect())),
            ("fold", Col::Str(rows.iter().map(|(r, _)| r.fold.map_or("-".into(), |f| f.to_string())).collect())),
            ("seed", Col::Str(rows.iter().map(|(r, _)| r.seed.to_string()).collect())),
            ("epoch", Col::U32(rows.iter().map(|(_, e)| e.epoch as u32).collect())),
            ("train_loss", Col::F64(rows.iter().map(|(_, e)| e.train_loss).collect())),
            ("dev_accuracy", Col::F64(rows.iter().map(|(_, e)| e.dev_accuracy).collect())),
            ("selected", Col::U32(rows.iter().map(|(r, e)| u32::from(e.epoch == r.best_epoch)).collect())),
        ])
    }
}

// ---- confusion heat maps -----------------------------------------------------

/// Per data set, a heat map per variant of the test confusion matrix summed
/// over its runs: cells coloured by the share of the gold row, with counts.
pub struct Confusion<'a> {
    pub metrics: &'a [Metrics],
}

/// (dataset, variant, classes, summed confusion, runs).
type Matrix = (String, Variant, Vec<String>, Vec<Vec<u64>>, usize);

impl Confusion<'_> {
    pub fn matrices(&self) -> Vec<Matrix> {
        let mut out: Vec<Matrix> = Vec::new();
        let rows: Vec<RunResult> = self.metrics.iter().map(RunResult::from).collect();
        for d in datasets_of(&rows) {
            for v in VARIANTS {
                for m in self.metrics.iter().filter(|m| m.dataset == d && m.variant == v) {
                    match out.iter_mut().find(|x| x.0 == d && x.1 == v && x.2 == m.classes) {
                        Some(x) => {
                            for (row, add) in x.3.iter_mut().zip(&m.confusion) {
                                for (c, a) in row.iter_mut().zip(add) {
                                    *c += a;
                                }
                            }
                            x.4 += 1;
                        }
                        None => out.push((d.to_string(), v, m.classes.clone(), m.confusion.clone(), 1)),
                    }
                }
            }
        }
        out
    }
}

impl Plot for Confusion<'_> {
    fn empty(&self) -> Option<&'static str> {
        self.metrics.is_empty().then_some("No evaluated runs yet.")
    }

    fn size(&self) -> (u32, u32) {
        let m = self.matrices();
        let rows = m.iter().map(|x| &x.0).collect::<std::collections::BTreeSet<_>>().len().max(1) as u32;
        (1000, 40 + 290 * rows)
    }

    fn texts(&self) -> Vec<String> {
        self.metrics.iter().flat_map(|m| m.classes.iter().cloned().chain([m.dataset.clone()])).collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let ms = self.matrices();
        let body = root
            .titled("Test confusion (rows: gold, columns: predicted), summed over runs; shade = share of the gold row", text("a", TITLE))?;
        let mut datasets: Vec<&str> = Vec::new();
        for m in &ms {
            if !datasets.contains(&m.0.as_str()) {
                datasets.push(&m.0);
            }
        }
        let rows = body.split_evenly((datasets.len(), 1));
        for (area, d) in rows.iter().zip(&datasets) {
            let mine: Vec<&Matrix> = ms.iter().filter(|m| m.0 == *d).collect();
            let cells = area.split_evenly((1, mine.len().max(4)));
            for (cell, (_, v, classes, conf, n)) in cells.iter().zip(mine) {
                let k = classes.len();
                let caption = format!("{} {v} ({n} run{})", d.to_uppercase(), if *n == 1 { "" } else { "s" });
                let mut chart = ChartBuilder::on(cell)
                    .caption(caption, text(d, 13.0))
                    .margin(8)
                    .x_label_area_size(22)
                    .y_label_area_size(55)
                    .build_cartesian_2d(-0.5f64..k as f64 - 0.5, -0.5f64..k as f64 - 0.5)?;
                let fmt = category(classes);
                // Gold rows from the top.
                let rev: Vec<String> = classes.iter().rev().cloned().collect();
                let yfmt = category(&rev);
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .x_labels(k + 1)
                    .y_labels(k + 1)
                    .x_label_formatter(&fmt)
                    .y_label_formatter(&yfmt)
                    .label_style(text_for(classes, 11.0))
                    .draw()?;
                for (g, row) in conf.iter().enumerate() {
                    let total: u64 = row.iter().sum::<u64>().max(1);
                    for (p, &c) in row.iter().enumerate() {
                        let share = c as f64 / total as f64;
                        let y = (k - 1 - g) as f64;
                        let shade = RGBColor(
                            (255.0 - share * (255.0 - 31.0)) as u8,
                            (255.0 - share * (255.0 - 119.0)) as u8,
                            (255.0 - share * (255.0 - 180.0)) as u8,
                        );
                        chart.draw_series([Rectangle::new([(p as f64 - 0.5, y - 0.5), (p as f64 + 0.5, y + 0.5)], shade.filled())])?;
                        let colour = if share > 0.55 { WHITE } else { BLACK };
                        let label = c.to_string();
                        let size = if k > 4 { 10.0 } else { 13.0 };
                        chart.draw_series([Text::new(
                            label,
                            (p as f64 - 0.12 * (c.to_string().len() as f64).min(4.0) / 2.0, y + 0.1),
                            text("0", size).color(&colour),
                        )])?;
                    }
                }
            }
        }
        Ok(())
    }

    fn data(&self) -> Data {
        let mut cols: [Vec<String>; 4] = Default::default();
        let mut counts = Vec::new();
        let mut runs = Vec::new();
        for (d, v, classes, conf, n) in self.matrices() {
            for (g, row) in conf.iter().enumerate() {
                for (p, &c) in row.iter().enumerate() {
                    cols[0].push(d.clone());
                    cols[1].push(v.to_string());
                    cols[2].push(classes[g].clone());
                    cols[3].push(classes[p].clone());
                    counts.push(c as f64);
                    runs.push(n as u32);
                }
            }
        }
        let [d, v, g, p] = cols;
        Data(vec![
            ("dataset", Col::Str(d)),
            ("variant", Col::Str(v)),
            ("gold", Col::Str(g)),
            ("predicted", Col::Str(p)),
            ("count", Col::F64(counts)),
            ("runs", Col::U32(runs)),
        ])
    }
}

// ---- a study's accuracy per epoch budget -----------------------------------

/// A study's trials, one cell per (trial, budget), and how it selects.
pub struct StudyView<'a> {
    pub stage: String,
    pub cells: Vec<TrialCell<'a>>,
    pub how: Selection<'a>,
    /// The searched params the figure splits on: the x axis (`variant`
    /// where searched, else the first text param) and the colour (`pad`
    /// where searched, else the next text param).
    pub x: Option<String>,
    pub colour: Option<String>,
}

/// The distinct values, in order of first appearance.
pub fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

impl<'a> StudyView<'a> {
    pub fn new(stage: String, cells: Vec<TrialCell<'a>>, how: Selection<'a>) -> StudyView<'a> {
        let text_params = distinct(cells.iter().flat_map(|c| c.config.iter().filter(|(_, v)| v.is_string()).map(|(k, _)| k.clone())));
        let pick = |want: &str, not: Option<&String>| {
            text_params.iter().find(|k| k.as_str() == want).or_else(|| text_params.iter().find(|k| Some(*k) != not)).cloned()
        };
        let x = pick("variant", None);
        let colour = pick("pad", x.as_ref()).filter(|c| Some(c) != x.as_ref());
        StudyView { stage, cells, how, x, colour }
    }

    fn value(c: &TrialCell, param: &Option<String>) -> String {
        param.as_ref().map_or(String::new(), |p| c.config.get(p).map_or("-".to_string(), value_text))
    }

    /// A cell's place on the x axis and its colour.
    pub fn x_of(&self, c: &TrialCell) -> String {
        Self::value(c, &self.x)
    }

    pub fn colour_of(&self, c: &TrialCell) -> String {
        Self::value(c, &self.colour)
    }

    pub fn budgets(&self) -> Vec<u64> {
        let mut b: Vec<u64> = self.cells.iter().map(TrialCell::budget).collect();
        b.sort_unstable();
        b.dedup();
        b
    }
}

/// Test accuracy at the epoch selected within each budget (on the study's
/// metric), a row of panels per study, a panel per budget; x: variant,
/// colour: pad. Stopped trials are hollow, failed ones a red x under the axis.
pub struct Budgets<'a> {
    pub studies: &'a [StudyView<'a>],
}

impl Budgets<'_> {
    fn cols(&self) -> usize {
        self.studies.iter().map(|s| s.budgets().len()).max().unwrap_or(1).clamp(1, 4)
    }

    /// Rows of panels per study.
    fn rows(&self) -> Vec<u32> {
        self.studies.iter().map(|s| s.budgets().len().max(1).div_ceil(self.cols()) as u32).collect()
    }
}

impl Plot for Budgets<'_> {
    fn empty(&self) -> Option<&'static str> {
        self.studies.is_empty().then_some("No study has run: `kimcnn tune` runs one (make study).")
    }

    fn size(&self) -> (u32, u32) {
        ((320 * self.cols() as u32).max(760), 40 + 320 * self.rows().iter().sum::<u32>().max(1))
    }

    fn texts(&self) -> Vec<String> {
        self.studies.iter().flat_map(|s| s.cells.iter().flat_map(|c| c.config.values().map(value_text))).collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let cols = self.cols();
        let title = "Test accuracy % at the epoch selected per budget; hollow: stopped early; red x: failed";
        let body = root.titled(title, text(title, 15.0))?;
        let rows = self.rows();
        let mut rest = body;
        for (i, s) in self.studies.iter().enumerate() {
            // This study's share of what is left.
            let left: u32 = rows[i..].iter().sum();
            let (area, below) = rest.split_vertically(rest.dim_in_pixel().1 * rows[i] / left.max(1));
            rest = below;
            let xs = distinct(s.cells.iter().map(|c| s.x_of(c)));
            let colours = distinct(s.cells.iter().map(|c| s.colour_of(c)));
            let budgets = s.budgets();
            let panels = area.split_evenly((rows[i] as usize, cols));
            let range = y_range(s.cells.iter().filter_map(|c| c.selected.map(|x| 100.0 * x.test_accuracy)));
            for (panel, b) in panels.iter().zip(&budgets) {
                let caption = format!("{}: {b} epochs", s.stage);
                let mut chart = ChartBuilder::on(panel)
                    .caption(caption, text("a", 14.0))
                    .margin(8)
                    .x_label_area_size(28)
                    .y_label_area_size(42)
                    .build_cartesian_2d(-0.5f64..xs.len() as f64 - 0.5, range.clone())?;
                let fmt = category(&xs);
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(xs.len() + 1)
                    .x_label_formatter(&fmt)
                    .y_label_formatter(&tick)
                    .y_desc("test accuracy %")
                    .label_style(text_for(&xs, 11.0))
                    .light_line_style(WHITE)
                    .draw()?;
                let width = 0.8 / colours.len().max(1) as f64;
                for (xi, xv) in xs.iter().enumerate() {
                    for (ci, cv) in colours.iter().enumerate() {
                        let x = xi as f64 - 0.4 + width * (ci as f64 + 0.5);
                        let colour = PALETTE[ci % PALETTE.len()];
                        let mine: Vec<&TrialCell> =
                            s.cells.iter().filter(|c| c.budget() == *b && s.x_of(c) == *xv && s.colour_of(c) == *cv).collect();
                        let test = |st: TrialStatus| -> Vec<f64> {
                            mine.iter().filter(|c| c.status == st).filter_map(|c| c.selected.map(|s| 100.0 * s.test_accuracy)).collect()
                        };
                        group_marks(&mut chart, x, width * 0.4, &test(TrialStatus::Completed), colour)?;
                        chart
                            .draw_series(test(TrialStatus::Stopped).into_iter().map(|v| Circle::new((x, v), 4, colour.stroke_width(1))))?;
                        if mine.iter().any(|c| c.status == TrialStatus::Failed) {
                            chart.draw_series([Cross::new((x, range.start + 0.3), 6, ShapeStyle::from(&RED).stroke_width(2))])?;
                        }
                    }
                }
                if colours.len() > 1 && Some(b) == budgets.last() {
                    for (ci, cv) in colours.iter().enumerate() {
                        let colour = PALETTE[ci % PALETTE.len()];
                        let label = format!("{}={cv}", s.colour.as_deref().unwrap_or(""));
                        chart
                            .draw_series([Circle::new((-0.5, range.start), 0, colour.filled())])?
                            .label(label)
                            .legend(move |(x, y)| Circle::new((x + 6, y), 4, colour.filled()));
                    }
                    chart
                        .configure_series_labels()
                        .position(SeriesLabelPosition::LowerRight)
                        .background_style(WHITE.mix(0.85))
                        .border_style(RGBColor(200, 200, 200))
                        .label_font(text_for(&colours, 11.0))
                        .draw()?;
                }
            }
        }
        Ok(())
    }

    fn data(&self) -> Data {
        let cells: Vec<(&StudyView, &TrialCell)> = self.studies.iter().flat_map(|s| s.cells.iter().map(move |c| (s, c))).collect();
        let sel = |f: fn(Selected) -> f64| Col::F64(cells.iter().map(|(_, c)| c.selected.map_or(f64::NAN, f)).collect());
        Data(vec![
            ("study", Col::Str(cells.iter().map(|(s, _)| s.stage.clone()).collect())),
            ("trial_id", Col::U32(cells.iter().map(|(_, c)| c.trial).collect())),
            ("config", Col::Str(cells.iter().map(|(_, c)| config_text(c.config)).collect())),
            ("budget", Col::U32(cells.iter().map(|(_, c)| c.budget() as u32).collect())),
            ("status", Col::Str(cells.iter().map(|(_, c)| c.status.as_str().to_string()).collect())),
            ("selected_on", Col::Str(cells.iter().map(|(s, _)| s.how.metric.to_string()).collect())),
            ("selected_epoch", sel(|s| s.epoch as f64)),
            ("selected_value", sel(|s| s.value)),
            ("dev_accuracy", sel(|s| s.dev_accuracy)),
            ("test_accuracy", sel(|s| s.test_accuracy)),
            ("error", Col::Str(cells.iter().map(|(_, c)| c.error.unwrap_or("").to_string()).collect())),
        ])
    }
}

// ---- running time of the tuning benchmark ----------------------------------

/// The tuning benchmark's ways (`bench/study.py`): label, wall seconds, peak
/// memory summed over the process tree (MB).
pub struct Runtime {
    pub ways: Vec<(String, f64, f64)>,
    pub setup: String,
}

impl Plot for Runtime {
    fn empty(&self) -> Option<&'static str> {
        self.ways.is_empty().then_some("The tuning benchmark has not been measured here: `make bench` measures it.")
    }

    fn size(&self) -> (u32, u32) {
        (1000, 340)
    }

    fn texts(&self) -> Vec<String> {
        self.ways.iter().map(|w| w.0.clone()).collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let title = format!("The origin project's search, three ways: {}", self.setup);
        let areas = grid(root, &title, 2, 2)?;
        let labels: Vec<String> = self.ways.iter().map(|w| w.0.clone()).collect();
        for (area, (name, get)) in areas
            .iter()
            .zip([("wall time, s", (|w: &(String, f64, f64)| w.1) as fn(&(String, f64, f64)) -> f64), ("peak memory, MB", |w| w.2)])
        {
            let hi = self.ways.iter().map(get).fold(0.0, f64::max) * 1.15;
            let mut chart = ChartBuilder::on(area)
                .caption(name, text(name, 14.0))
                .margin(10)
                .x_label_area_size(28)
                .y_label_area_size(55)
                .build_cartesian_2d(-0.5f64..labels.len() as f64 - 0.5, 0.0..hi.max(1.0))?;
            let fmt = category(&labels);
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(labels.len() + 1)
                .x_label_formatter(&fmt)
                .y_label_formatter(&tick)
                .label_style(text_for(&labels, 11.0))
                .light_line_style(WHITE)
                .draw()?;
            let base = self.ways.first().map(get).unwrap_or(1.0);
            let time = name.starts_with("wall");
            for (i, w) in self.ways.iter().enumerate() {
                let v = get(w);
                let x = i as f64;
                chart.draw_series([Rectangle::new([(x - 0.3, 0.0), (x + 0.3, v)], PALETTE[i % PALETTE.len()].filled())])?;
                let note = match (i, time) {
                    (0, _) => format!("{v:.0}"),
                    (_, true) => format!("{v:.0} ({:.2}x faster)", base / v),
                    (_, false) => format!("{v:.0} ({:.2}x)", v / base),
                };
                chart.draw_series([Text::new(note, (x - 0.25, v + hi * 0.06), text("0", 12.0))])?;
            }
        }
        Ok(())
    }

    fn data(&self) -> Data {
        Data(vec![
            ("way", Col::Str(self.ways.iter().map(|w| w.0.clone()).collect())),
            ("wall_s", Col::F64(self.ways.iter().map(|w| w.1).collect())),
            ("peak_rss_mb", Col::F64(self.ways.iter().map(|w| w.2).collect())),
        ])
    }
}

// ---- t-SNE maps ------------------------------------------------------------------

/// One `tsne` stage's map.
pub struct Map {
    pub stage: String,
    pub summary: TsneSummary,
    pub points: Vec<TsnePoint>,
}

/// Per map, the pretrained and the fine-tuned vectors side by side; a dot
/// per word coloured by the polarity of the sentences it occurs in (two
/// classes: blue for the first, red for the second), hollow where the
/// pretrained vectors lacked it; the most frequent words labelled.
pub struct Tsne<'a> {
    pub maps: &'a [Map],
    /// Words to label besides the most frequent (Table 3's queries).
    pub also: &'a [String],
}

const LABELLED: usize = 25;

fn polarity_colour(share: f64) -> RGBColor {
    if !share.is_finite() {
        return RGBColor(150, 150, 150);
    }
    // Blue (0) through light grey (0.5) to red (1).
    let (lo, mid, hi) = ((44.0, 123.0, 182.0), (200.0, 200.0, 200.0), (215.0, 48.0, 39.0));
    let mix = |a: f64, b: f64, t: f64| (a + (b - a) * t) as u8;
    if share < 0.5 {
        let t = share / 0.5;
        RGBColor(mix(lo.0, mid.0, t), mix(lo.1, mid.1, t), mix(lo.2, mid.2, t))
    } else {
        let t = (share - 0.5) / 0.5;
        RGBColor(mix(mid.0, hi.0, t), mix(mid.1, hi.1, t), mix(mid.2, hi.2, t))
    }
}

impl Tsne<'_> {
    fn labelled<'p>(&self, m: &'p Map) -> Vec<&'p TsnePoint> {
        m.points.iter().enumerate().filter(|(i, p)| *i < LABELLED || self.also.contains(&p.word)).map(|(_, p)| p).collect()
    }
}

impl Plot for Tsne<'_> {
    fn empty(&self) -> Option<&'static str> {
        self.maps.is_empty().then_some("No t-SNE map: a `tsne` stage draws one (the default pipeline's: tsne.mr).")
    }

    fn size(&self) -> (u32, u32) {
        (1000, 40 + 500 * self.maps.len().max(1) as u32)
    }

    fn texts(&self) -> Vec<String> {
        self.maps
            .iter()
            .flat_map(|m| self.labelled(m).into_iter().map(|p| p.word.clone()).chain(m.summary.classes.iter().cloned()))
            .collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let title = "t-SNE of the most frequent words: pretrained vs fine-tuned; colour = share of their sentences per class; hollow = not pretrained";
        let areas = grid(root, title, 2 * self.maps.len(), 2)?;
        for (i, m) in self.maps.iter().enumerate() {
            let s = &m.summary;
            let classes = match s.classes.as_slice() {
                [a, b] => format!("blue {a}, red {b}"),
                other => format!("{} classes", other.len()),
            };
            let labelled = self.labelled(m);
            for (j, (which, kl, get)) in [
                ("pretrained", s.kl_pretrained, (|p: &TsnePoint| (p.x_pretrained, p.y_pretrained)) as fn(&TsnePoint) -> (f64, f64)),
                ("fine-tuned", s.kl_tuned, |p| (p.x_tuned, p.y_tuned)),
            ]
            .into_iter()
            .enumerate()
            {
                let xy: Vec<(f64, f64)> = m.points.iter().map(get).collect();
                let (x0, x1) = xy.iter().fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
                let (y0, y1) = xy.iter().fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.1), a.1.max(p.1)));
                let pad = |lo: f64, hi: f64| ((hi - lo) * 0.05).max(1e-3);
                let caption = format!("{} CNN-{} {which}: {} words, KL {kl:.2}; {classes}", s.dataset.to_uppercase(), s.variant, s.words);
                let style = text(&caption, 13.0);
                let mut chart = ChartBuilder::on(&areas[2 * i + j])
                    .caption(caption, style)
                    .margin(8)
                    .build_cartesian_2d((x0 - pad(x0, x1))..(x1 + pad(x0, x1)), (y0 - pad(y0, y1))..(y1 + pad(y0, y1)))?;
                chart.configure_mesh().disable_mesh().disable_axes().draw()?;
                chart.draw_series(m.points.iter().zip(&xy).map(|(p, &(x, y))| {
                    let c = polarity_colour(p.class_share);
                    let style = if p.pretrained { c.mix(0.8).filled() } else { c.stroke_width(1) };
                    Circle::new((x, y), 3, style)
                }))?;
                chart.draw_series(labelled.iter().map(|p| {
                    let (x, y) = get(p);
                    Text::new(p.word.clone(), (x, y), text(&p.word, 11.0).color(&BLACK))
                }))?;
            }
        }
        Ok(())
    }

    fn data(&self) -> Data {
        let rows: Vec<(&Map, &TsnePoint)> = self.maps.iter().flat_map(|m| m.points.iter().map(move |p| (m, p))).collect();
        let f = |g: fn(&TsnePoint) -> f64| Col::F64(rows.iter().map(|(_, p)| g(p)).collect());
        Data(vec![
            ("stage", Col::Str(rows.iter().map(|(m, _)| m.stage.clone()).collect())),
            ("word", Col::Str(rows.iter().map(|(_, p)| p.word.clone()).collect())),
            ("count", Col::F64(rows.iter().map(|(_, p)| p.count as f64).collect())),
            ("pretrained", Col::U32(rows.iter().map(|(_, p)| u32::from(p.pretrained)).collect())),
            ("class_share", f(|p| p.class_share)),
            ("x_pretrained", f(|p| p.x_pretrained)),
            ("y_pretrained", f(|p| p.y_pretrained)),
            ("x_tuned", f(|p| p.x_tuned)),
            ("y_tuned", f(|p| p.y_tuned)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::{svg, Col};
    use kimcnn_schema::TrialRow;
    use serde_json::Value;
    use std::collections::BTreeMap;

    fn r(d: &str, v: Variant, fold: i32, acc: f64) -> RunResult {
        crate::tests::r(d, v, fold, acc)
    }

    #[test]
    fn accuracy_panels_per_dataset_with_every_run_and_kims_figure() {
        let rows = vec![
            r("trec", Variant::Static, -1, 0.9),
            r("mr", Variant::Rand, 0, 0.75),
            r("mr", Variant::Rand, 1, 0.77),
            r("mr", Variant::Multichannel, 0, 0.8),
        ];
        let a = Accuracy { rows: &rows };
        let p = a.panels();
        assert_eq!(p.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["mr", "trec"]);
        assert_eq!(
            p[0].1.iter().map(|g| (g.0.as_str(), g.2.len(), g.3)).collect::<Vec<_>>(),
            [("rand", 2, Some(76.1)), ("multichannel", 1, Some(81.1))]
        );
        let s = svg(&a, "accuracy").unwrap();
        for t in [">MR<", ">TREC<", ">rand<", ">multichannel<", ">static<"] {
            assert!(s.contains(t) || s.contains(&t.replace('>', ">\n").replace('<', "\n<")), "{t} missing");
        }
        let Data(cols) = a.data();
        assert_eq!(cols.len(), 8);
        let Col::F64(kim) = &cols[7].1 else { panic!() };
        assert!((kim[1] - 0.761).abs() < 1e-12, "{kim:?}");
    }

    #[test]
    fn an_empty_figure_is_a_line_saying_why() {
        let a = Accuracy { rows: &[] };
        assert!(a.empty().is_some());
        let s = svg(&a, "accuracy").unwrap();
        assert!(s.contains("No evaluated runs yet"), "{s}");
        assert!(Budgets { studies: &[] }.empty().unwrap().contains("kimcnn tune"));
    }

    fn row(trial: u32, variant: &str, pad: &str, epochs: u64, it: u32, (dev, test): (f64, f64), status: TrialStatus) -> TrialRow {
        let config: BTreeMap<String, Value> =
            [("variant", Value::from(variant)), ("pad", Value::from(pad)), ("epochs", Value::from(epochs))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        TrialRow {
            trial_id: trial,
            config,
            training_iteration: it,
            loss: 0.5,
            accuracy: dev,
            dev_loss: f64::NAN,
            test_accuracy: test,
            time_this_iter_s: 1.0,
            peak_rss_mb: f64::NAN,
            status,
            error: (status == TrialStatus::Failed).then(|| "diverged: epoch 1".to_string()),
        }
    }

    #[test]
    fn budgets_split_on_variant_and_pad_and_keep_failed_trials() {
        let rows = vec![
            row(0, "rand", "kim", 2, 1, (0.6, 0.58), TrialStatus::Completed),
            row(0, "rand", "kim", 2, 2, (0.7, 0.69), TrialStatus::Completed),
            row(0, "rand", "kim", 3, 1, (0.6, 0.58), TrialStatus::Completed),
            row(0, "rand", "kim", 3, 2, (0.7, 0.69), TrialStatus::Completed),
            row(0, "rand", "kim", 3, 3, (0.65, 0.7), TrialStatus::Completed),
            row(1, "static", "bucket", 2, 0, (f64::NAN, f64::NAN), TrialStatus::Failed),
            row(1, "static", "bucket", 3, 0, (f64::NAN, f64::NAN), TrialStatus::Failed),
        ];
        let how = Selection { metric: "accuracy", maximize: true };
        let v = StudyView::new("study".into(), kimcnn_schema::trial_cells(&rows, how).unwrap(), how);
        assert_eq!((v.x.as_deref(), v.colour.as_deref()), (Some("variant"), Some("pad")));
        assert_eq!(v.budgets(), [2, 3]);
        // Budget 3 selects epoch 2 on dev (0.7), not epoch 3's better test figure.
        let best = kimcnn_schema::best_per_budget(&v.cells, how);
        let s = best[&3].selected.unwrap();
        assert_eq!((s.epoch, s.dev_accuracy, s.test_accuracy), (2, 0.7, 0.69));
        // Selecting on the dev loss picks by it instead (lowest wins).
        let mut by_loss = rows.clone();
        for (r, loss) in by_loss.iter_mut().zip([0.5, 0.6, 0.5, 0.6, 0.4, f64::NAN, f64::NAN]) {
            r.dev_loss = loss;
        }
        let how = Selection { metric: "dev_loss", maximize: false };
        let cells = kimcnn_schema::trial_cells(&by_loss, how).unwrap();
        assert_eq!(cells[1].selected.map(|s| s.epoch), Some(3));
        assert!(kimcnn_schema::trial_cells(&rows, Selection { metric: "f1", maximize: true }).unwrap_err().contains("no such column"));
        let studies = [v];
        let b = Budgets { studies: &studies };
        let Data(cols) = b.data();
        let Col::Str(status) = &cols[4].1 else { panic!() };
        assert_eq!(status, &["completed", "completed", "failed", "failed"]);
        let s = svg(&b, "budgets").unwrap();
        assert!(s.contains("study: 2 epochs") && s.contains("pad=bucket"), "{s}");
    }

    #[test]
    fn confusion_sums_runs_of_a_variant() {
        let meta = |fold: i32, conf: Vec<Vec<u64>>| Metrics {
            dataset: "mr".into(),
            variant: Variant::Rand,
            fold: Some(fold),
            seed: 1,
            pad: kimcnn_schema::Pad::Kim,
            init: "u".into(),
            epochs: 2,
            best_epoch: 1,
            best_dev_accuracy: 0.5,
            n: 4,
            accuracy: 0.5,
            macro_f1: 0.5,
            per_class: Vec::new(),
            confusion: conf,
            classes: vec!["neg".into(), "pos".into()],
        };
        let ms = [meta(0, vec![vec![3, 1], vec![0, 4]]), meta(1, vec![vec![2, 2], vec![1, 3]])];
        let c = Confusion { metrics: &ms };
        let m = c.matrices();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].3.clone(), m[0].4), (vec![vec![5, 3], vec![1, 7]], 2));
    }
}
