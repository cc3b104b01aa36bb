//! `results.svg`: one panel per data set, a box per variant (quartiles,
//! whiskers to min and max, every run as a dot) and Kim's published figure
//! as a red cross, so the spread over folds/seeds and the distance to the
//! paper are seen at a glance.

use std::path::Path;

use plotters::prelude::*;

use kimcnn_schema::RunResult;

use crate::{datasets_of, kim_2014, mixed_settings, settings, ReportError, VARIANTS};

/// The boxes of one panel: label, the runs' accuracies in %, Kim's figure.
type Boxes = Vec<(String, Vec<f64>, Option<f64>)>;

fn quartiles(sorted: &[f64]) -> [f64; 5] {
    let q = |p: f64| {
        let pos = p * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    };
    [sorted[0], q(0.25), q(0.5), q(0.75), sorted[sorted.len() - 1]]
}

/// The boxes per data set, in Kim's variant order; runs with several pads or
/// inits get one box each, labelled with them.
fn panels(rows: &[RunResult], datasets: &[&str]) -> Vec<(String, Boxes)> {
    let many = mixed_settings(rows);
    datasets
        .iter()
        .map(|d| {
            let mut boxes = Vec::new();
            for v in VARIANTS {
                for (pad, init) in &settings(rows, v) {
                    let mut accs: Vec<f64> = rows
                        .iter()
                        .filter(|r| r.dataset == *d && r.variant == v && r.pad == *pad && r.init == *init)
                        .map(|r| 100.0 * r.accuracy)
                        .collect();
                    if accs.is_empty() {
                        continue;
                    }
                    accs.sort_by(f64::total_cmp);
                    let label = if many { format!("{v} {pad}/{init}") } else { v.to_string() };
                    boxes.push((label, accs, kim_2014(d, v)));
                }
            }
            (d.to_string(), boxes)
        })
        .collect()
}

/// Writes the SVG to `path`.
pub fn plot(path: &Path, rows: &[RunResult]) -> Result<(), ReportError> {
    let err = |e: String| ReportError::Bad(path.display().to_string(), e);
    let panels = panels(rows, &datasets_of(rows));
    let widest = panels.iter().map(|(_, b)| b.len()).max().unwrap_or(1) as u32;
    let root = SVGBackend::new(path, ((100 + 110 * widest) * panels.len().max(1) as u32, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let body = root
        .titled("Test accuracy %: one dot per run (fold/seed), box = quartiles, whiskers = min/max, red x = Kim (2014)", ("sans-serif", 15))
        .map_err(|e| err(e.to_string()))?;
    let areas = body.split_evenly((1, panels.len().max(1)));
    for (area, (dataset, boxes)) in areas.iter().zip(&panels) {
        draw_panel(area, dataset, boxes).map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    dataset: &str,
    boxes: &Boxes,
) -> Result<(), Box<dyn std::error::Error>> {
    let all = boxes.iter().flat_map(|(_, a, k)| a.iter().copied().chain(*k));
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (lo, hi) = ((lo - 1.0).floor(), (hi + 1.0).ceil());
    let n = boxes.len();
    let mut chart = ChartBuilder::on(area)
        .caption(dataset.to_uppercase(), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, lo..hi)?;
    let labels: Vec<String> = boxes.iter().map(|(l, _, _)| l.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("test accuracy %")
        .draw()?;
    let style = ShapeStyle::from(&BLUE).stroke_width(2);
    for (i, (_, accs, kim)) in boxes.iter().enumerate() {
        let x = i as f64;
        let [min, q1, med, q3, max] = quartiles(accs);
        chart.draw_series([Rectangle::new([(x - 0.3, q1), (x + 0.3, q3)], style)])?;
        chart.draw_series([
            PathElement::new(vec![(x - 0.3, med), (x + 0.3, med)], style),
            PathElement::new(vec![(x, min), (x, q1)], style),
            PathElement::new(vec![(x, q3), (x, max)], style),
        ])?;
        chart.draw_series(accs.iter().map(|a| Circle::new((x + 0.15, *a), 3, BLACK.filled())))?;
        if let Some(k) = kim {
            chart.draw_series([Cross::new((x, *k), 6, ShapeStyle::from(&RED).stroke_width(2))])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kimcnn_schema::Variant;

    #[test]
    fn one_panel_per_dataset_with_kims_figures() {
        let r = |d: &str, variant: Variant, acc: f64| crate::tests::r(d, variant, 0, acc);
        let rows = vec![
            r("trec", Variant::Static, 0.9),
            r("mr", Variant::Rand, 0.75),
            r("mr", Variant::Rand, 0.77),
            r("mr", Variant::Multichannel, 0.8),
        ];
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("r.svg");
        plot(&path, &rows).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["\nMR\n", "\nTREC\n", "\nrand\n", "\nmultichannel\n", "\nstatic\n"] {
            assert!(svg.contains(text), "{text} missing");
        }
        let p = panels(&rows, &datasets_of(&rows));
        assert_eq!(
            p[0].1.iter().map(|b| (b.0.as_str(), b.1.len(), b.2)).collect::<Vec<_>>(),
            vec![("rand", 2, Some(76.1)), ("multichannel", 1, Some(81.1))]
        );
        assert!(plot(&d.path().join("no/such/dir/r.svg"), &rows).is_err());
    }

    #[test]
    fn quartiles_interpolate() {
        assert_eq!(quartiles(&[1.0, 2.0, 3.0, 4.0, 5.0]), [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(quartiles(&[7.0]), [7.0; 5]);
        assert_eq!(quartiles(&[0.0, 10.0]), [0.0, 2.5, 5.0, 7.5, 10.0]);
    }
}
