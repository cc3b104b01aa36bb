//! A study's results as a person reads them: its best trials, and the best
//! at each epoch budget (`kimcnn tune`, `kimcnn show STUDY`).

use std::collections::BTreeMap;

use kimcnn_schema::{read_json, read_trials, StudyBest, TrialRow, TrialStatus};
use kimcnn_store::{LockEntry, Store};
use serde_json::Value;

/// One (trial, budget): its rows, the epoch selected on dev within them.
struct Cell<'a> {
    trial: u32,
    config: &'a BTreeMap<String, Value>,
    status: TrialStatus,
    /// (epoch, dev, test) of the selected epoch.
    selected: Option<(u32, f64, f64)>,
    epochs: u32,
}

pub fn summary(store: &Store, stage: &str, entry: &LockEntry, top: usize) -> Result<String, String> {
    let path = |n: &str| entry.outputs.get(n).map(|id| store.object_path(id)).ok_or_else(|| format!("{stage}: no `{n}` output"));
    let best: StudyBest = read_json(&path("best")?).map_err(|e| e.to_string())?;
    let rows = read_trials(&path("trials")?).map_err(|e| e.to_string())?;
    let maximize = best.mode == "max";
    // Rows come grouped by (trial, budget), epochs ascending.
    let mut cells: Vec<Cell> = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let r0 = &rows[i];
        let mut j = i;
        while j < rows.len() && rows[j].trial_id == r0.trial_id && rows[j].config == r0.config {
            j += 1;
        }
        cells.push(cell(&rows[i..j], maximize));
        i = j;
    }
    let key = |c: &Cell| c.selected.map_or(f64::NEG_INFINITY, |(_, v, _)| if maximize { v } else { -v });
    let mut ranked: Vec<&Cell> = cells.iter().filter(|c| c.status == TrialStatus::Completed && c.selected.is_some()).collect();
    ranked.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.trial.cmp(&b.trial)));
    let params: Vec<&String> = best.config.keys().collect();
    let mut out = format!(
        "{stage}: {} trials ({} completed, {} stopped, {} failed); selected on dev {} ({})\n",
        best.completed + best.stopped + best.failed,
        best.completed,
        best.stopped,
        best.failed,
        best.metric,
        best.mode
    );
    let mut table = vec![{
        let mut h: Vec<String> = vec!["trial".into()];
        h.extend(params.iter().map(|p| p.to_string()));
        h.extend(["selected epoch", "dev", "test"].map(String::from));
        h
    }];
    for c in ranked.iter().take(top) {
        let (e, dev, test) = c.selected.expect("ranked cells have one");
        let mut r = vec![c.trial.to_string()];
        r.extend(params.iter().map(|p| c.config.get(*p).map_or("-".into(), plain)));
        r.extend([format!("{e}/{}", c.epochs), pct(dev), pct(test)]);
        table.push(r);
    }
    out.push_str(&render(&table));
    // The best at each budget, where the study searched epochs.
    if best.config.contains_key("epochs") {
        let mut by_budget: BTreeMap<u64, &Cell> = BTreeMap::new();
        for c in &ranked {
            let b = c.config.get("epochs").and_then(Value::as_u64).unwrap_or(0);
            by_budget.entry(b).or_insert(c);
        }
        out.push_str("best at each epoch budget (one run per point: a budget is the first epochs of the longest):\n");
        for (b, c) in by_budget {
            let (e, dev, test) = c.selected.expect("ranked");
            let cfg: Vec<String> = c.config.iter().filter(|(k, _)| *k != "epochs").map(|(k, v)| format!("{k}={}", plain(v))).collect();
            out.push_str(&format!(
                "  {b:>4} epochs: dev {} test {} (trial {}, epoch {e}: {})\n",
                pct(dev),
                pct(test),
                c.trial,
                cfg.join(" ")
            ));
        }
    }
    // Peak memory: one figure per trial (its worker's), repeated on its rows.
    let by_trial: BTreeMap<u32, f64> = rows.iter().filter(|r| r.peak_rss_mb.is_finite()).map(|r| (r.trial_id, r.peak_rss_mb)).collect();
    let mut peaks: Vec<f64> = by_trial.into_values().collect();
    if !peaks.is_empty() {
        peaks.sort_by(f64::total_cmp);
        out.push_str(&format!(
            "peak memory of a trial's worker: median {:.0} MiB, largest {:.0} MiB (trials read the stored embedding matrix; none copies it)\n",
            peaks[peaks.len() / 2],
            peaks[peaks.len() - 1]
        ));
    }
    let cfg: Vec<String> = best.config.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect();
    out.push_str(&format!(
        "best: trial {} ({}), epoch {}: dev {} (test {}); its train params are in best.json",
        best.trial_id,
        cfg.join(" "),
        best.epoch,
        pct(best.value),
        pct(best.test_accuracy)
    ));
    Ok(out)
}

fn cell(rows: &[TrialRow], maximize: bool) -> Cell<'_> {
    let mut selected: Option<(u32, f64, f64)> = None;
    for r in rows.iter().filter(|r| r.training_iteration > 0 && r.accuracy.is_finite()) {
        let better = selected.is_none_or(|(_, b, _)| r.accuracy == b || (r.accuracy > b) == maximize);
        if better {
            selected = Some((r.training_iteration, r.accuracy, r.test_accuracy));
        }
    }
    let epochs = rows.iter().map(|r| r.training_iteration).max().unwrap_or(0);
    Cell { trial: rows[0].trial_id, config: &rows[0].config, status: rows[0].status, selected, epochs }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => format!("{f}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", 100.0 * x)
    } else {
        "-".into()
    }
}

fn render(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(&format!("  {}\n", cells.join("  ").trim_end()));
    }
    out
}
