//! The page's section for each data set: its runs per variant (accuracy,
//! spread, macro-F1, the epochs selected on dev) and each class's F1.

use kimcnn_schema::{Metrics, Variant};

use crate::page::{pct, Section};
use crate::{kim_2014, mean_std, VARIANTS};

/// One section per data set the metrics cover, Kim's order first.
pub(crate) fn sections(metrics: &[(String, Metrics)]) -> Vec<Section> {
    let results: Vec<kimcnn_schema::RunResult> = metrics.iter().map(|(_, m)| m.into()).collect();
    crate::datasets_of(&results).into_iter().map(|d| section(d, metrics.iter().map(|(_, m)| m).filter(|m| m.dataset == d))).collect()
}

fn section<'a>(dataset: &str, runs: impl Iterator<Item = &'a Metrics>) -> Section {
    let runs: Vec<&Metrics> = runs.collect();
    let mut s = Section::new(format!("data-{dataset}"), &dataset.to_uppercase());
    s.level = 3;
    let classes = &runs[0].classes;
    let folds = runs.iter().filter_map(|m| m.fold).collect::<std::collections::BTreeSet<_>>().len();
    let seeds = runs.iter().map(|m| m.seed).collect::<std::collections::BTreeSet<_>>().len();
    let test: Vec<f64> = runs.iter().map(|m| m.n as f64).collect();
    s.lead = format!(
        "{} runs ({}{seeds} seed{}); {} classes ({}); {:.0} test sentences a run on average. Epochs are selected on dev.",
        runs.len(),
        if folds > 0 { format!("{folds} folds, ") } else { String::new() },
        if seeds == 1 { "" } else { "s" },
        classes.len(),
        classes.join(", "),
        mean_std(&test).0
    );
    let mut t = vec![[
        "model",
        "runs",
        "test accuracy % (mean ± sd)",
        "min – max",
        "macro-F1",
        "selected epoch (median, range)",
        "dev accuracy at it",
        "Kim (2014)",
    ]
    .map(String::from)
    .to_vec()];
    let mut f1 = vec![std::iter::once("model".to_string()).chain(classes.iter().map(|c| format!("F1 {c}"))).collect::<Vec<_>>()];
    for v in VARIANTS {
        let mine: Vec<&Metrics> = runs.iter().copied().filter(|m| m.variant == v).collect();
        if mine.is_empty() {
            continue;
        }
        t.push(variant_row(dataset, v, &mine));
        let mut row = vec![format!("CNN-{v}")];
        for c in classes {
            let xs: Vec<f64> = mine.iter().filter_map(|m| m.per_class.iter().find(|k| &k.class == c)).map(|k| k.f1).collect();
            row.push(if xs.is_empty() { "–".into() } else { pct(mean_std(&xs).0) });
        }
        f1.push(row);
    }
    s.tables.push(t);
    s.tables.push(f1);
    s
}

fn variant_row(dataset: &str, v: Variant, runs: &[&Metrics]) -> Vec<String> {
    let acc: Vec<f64> = runs.iter().map(|m| 100.0 * m.accuracy).collect();
    let (mean, sd) = mean_std(&acc);
    let (lo, hi) = acc.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
    let f1: Vec<f64> = runs.iter().map(|m| m.macro_f1).collect();
    let mut epochs: Vec<usize> = runs.iter().map(|m| m.best_epoch).collect();
    epochs.sort();
    let dev: Vec<f64> = runs.iter().map(|m| m.best_dev_accuracy).collect();
    vec![
        format!("CNN-{v}"),
        runs.len().to_string(),
        format!("{mean:.1} ± {sd:.1}"),
        format!("{lo:.1} – {hi:.1}"),
        pct(mean_std(&f1).0),
        format!(
            "{} ({}–{} of {})",
            epochs[epochs.len() / 2],
            epochs[0],
            epochs[epochs.len() - 1],
            runs.iter().map(|m| m.epochs).max().unwrap_or(0)
        ),
        pct(mean_std(&dev).0),
        kim_2014(dataset, v).map_or("–".into(), |k| format!("{k:.1}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kimcnn_schema::{ClassMetrics, Pad};

    fn run(dataset: &str, variant: Variant, fold: i32, accuracy: f64, best_epoch: usize) -> (String, Metrics) {
        let class = |c: &str, f1| ClassMetrics { class: c.into(), precision: f1, recall: f1, f1, support: 50 };
        let m = Metrics {
            dataset: dataset.into(),
            variant,
            fold: Some(fold),
            seed: 3,
            pad: Pad::Kim,
            init: "uniform a=0.25".into(),
            epochs: 25,
            best_epoch,
            best_dev_accuracy: accuracy + 0.01,
            n: 100,
            accuracy,
            macro_f1: accuracy,
            per_class: vec![class("neg", accuracy - 0.02), class("pos", accuracy + 0.02)],
            confusion: vec![vec![40, 10], vec![10, 40]],
            classes: vec!["neg".into(), "pos".into()],
        };
        (format!("evaluate.{dataset}.{variant}.fold{fold}"), m)
    }

    #[test]
    fn a_section_per_data_set_with_its_variants_and_classes() {
        let metrics = vec![
            run("trec", Variant::Static, 0, 0.9, 4),
            run("mr", Variant::Rand, 0, 0.70, 3),
            run("mr", Variant::Rand, 1, 0.80, 9),
            run("mr", Variant::Rand, 2, 0.75, 5),
            run("mr", Variant::NonStatic, 0, 0.81, 7),
        ];
        let s = sections(&metrics);
        let ids: Vec<&str> = s.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["data-mr", "data-trec"], "Kim's order");
        let mr = &s[0];
        assert!(mr.lead.starts_with("4 runs (3 folds, 1 seed); 2 classes (neg, pos)"), "{}", mr.lead);
        let t = &mr.tables[0];
        assert_eq!(t.len(), 3, "header, rand, non-static: {t:?}");
        assert_eq!(t[1][..7], ["CNN-rand", "3", "75.0 ± 5.0", "70.0 – 80.0", "75.0%", "5 (3–9 of 25)", "76.0%"]);
        assert_eq!(t[1][7], "76.1");
        assert_eq!(mr.tables[1][0], ["model", "F1 neg", "F1 pos"]);
        assert_eq!(mr.tables[1][1], ["CNN-rand", "73.0%", "77.0%"]);
    }
}
