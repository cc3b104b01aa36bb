//! What `kimcnn report` adds to its copy of the page: facts of this run
//! that the cached page cannot hold without changing its key on every run
//! (the pipeline.lock it ran to, including the report's own entry, and
//! each stage's wall time from its run record).

use std::fmt::Write as _;

use crate::page::esc;

/// A stage of pipeline.lock and how long its run took.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTime {
    pub stage: String,
    pub kind: String,
    /// None: no run record here (the outputs were pulled without one).
    pub seconds: Option<f64>,
    pub device: Option<String>,
}

/// The appendix as an HTML fragment (to go before `</body>`) and as Markdown.
pub fn appendix(lock_blake3: &str, stages: &[StageTime]) -> (String, String) {
    let total: f64 = stages.iter().filter_map(|s| s.seconds).sum();
    let lead = format!(
        "pipeline.lock BLAKE3 {lock_blake3}: {} stage{}, {total:.0} s of computing in all (each stage's wall time when it was computed, perhaps on another machine or day).",
        stages.len(),
        if stages.len() == 1 { "" } else { "s" }
    );
    let row = |s: &StageTime| {
        [
            s.stage.clone(),
            s.kind.clone(),
            s.seconds.map_or("no run record".into(), |x| format!("{x:.2}")),
            s.device.clone().unwrap_or_else(|| "-".into()),
        ]
    };
    let head = ["stage", "kind", "seconds", "device"];
    let mut h = String::from("<section id=\"this-run\">\n<h2>This run</h2>\n");
    writeln!(h, "<p>{}</p>\n<details><summary>Wall time per stage</summary>\n<table>\n<thead><tr>", esc(&lead)).ok();
    for c in head {
        write!(h, "<th>{c}</th>").ok();
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for s in stages {
        h.push_str("<tr>");
        for c in row(s) {
            write!(h, "<td>{}</td>", esc(&c)).ok();
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n</details>\n</section>\n");
    let mut m = format!("## This run\n\n{lead}\n\n| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for s in stages {
        writeln!(m, "| {} |", row(s).map(|c| c.replace('|', "\\|")).join(" | ")).ok();
    }
    (h, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_appendix_names_the_lock_and_each_stages_time() {
        let stages = [
            StageTime { stage: "train.<a>".into(), kind: "train".into(), seconds: Some(12.5), device: Some("cpu".into()) },
            StageTime { stage: "vocab".into(), kind: "vocab".into(), seconds: None, device: None },
        ];
        let (h, m) = appendix("abc123", &stages);
        assert!(h.contains("pipeline.lock BLAKE3 abc123: 2 stages, 12 s of computing"), "{h}");
        assert!(h.contains("<td>train.&lt;a&gt;</td><td>train</td><td>12.50</td><td>cpu</td>"), "{h}");
        assert!(m.contains("| vocab | vocab | no run record | - |"), "{m}");
    }
}
