//! A study's results as a person reads them: its best trials, and the best
//! at each epoch budget (`kimcnn tune`, `kimcnn show STUDY`).

use std::collections::BTreeMap;

use kimcnn_schema::{best_per_budget, read_json, read_trials, trial_cells, value_text, Selection, StudyBest, TrialCell, TrialStatus};
use kimcnn_store::{LockEntry, Store};

pub fn summary(store: &Store, stage: &str, entry: &LockEntry, top: usize) -> Result<String, String> {
    let path = |n: &str| entry.outputs.get(n).map(|id| store.object_path(id)).ok_or_else(|| format!("{stage}: no `{n}` output"));
    let best: StudyBest = read_json(&path("best")?).map_err(|e| e.to_string())?;
    let rows = read_trials(&path("trials")?).map_err(|e| e.to_string())?;
    let how = Selection::of(&best);
    let cells = trial_cells(&rows, how).map_err(|e| format!("{stage}: {e}"))?;
    let key = |c: &TrialCell| c.selected.map_or(f64::NEG_INFINITY, |s| if how.maximize { s.value } else { -s.value });
    let mut ranked: Vec<&TrialCell> = cells.iter().filter(|c| c.status == TrialStatus::Completed && c.selected.is_some()).collect();
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
        let s = c.selected.expect("ranked cells have one");
        let mut r = vec![c.trial.to_string()];
        r.extend(params.iter().map(|p| c.config.get(*p).map_or("-".into(), value_text)));
        r.extend([format!("{}/{}", s.epoch, c.epochs), pct(s.dev_accuracy), pct(s.test_accuracy)]);
        table.push(r);
    }
    out.push_str(&render(&table));
    // The best at each budget, where the study searched epochs.
    if best.config.contains_key("epochs") {
        out.push_str("best at each epoch budget (one run per point: a budget is the first epochs of the longest):\n");
        for (b, c) in best_per_budget(&cells, how) {
            let s = c.selected.expect("a best cell has a selected epoch");
            let cfg: Vec<String> = c.config.iter().filter(|(k, _)| *k != "epochs").map(|(k, v)| format!("{k}={}", value_text(v))).collect();
            out.push_str(&format!(
                "  {b:>4} epochs: dev {} test {} (trial {}, epoch {}: {})\n",
                pct(s.dev_accuracy),
                pct(s.test_accuracy),
                c.trial,
                s.epoch,
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
    let cfg: Vec<String> = best.config.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect();
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
