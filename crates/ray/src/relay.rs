//! Progress from a node to the coordinator, through the job's logs (the
//! Jobs API has no other channel a plain HTTP client can read): the node
//! prints each step as one marked JSON line, and the coordinator, each time
//! it reads the logs, relays the lines it has not seen. A study on the
//! coordinator thus sees its trials' epochs (and stops them early) as it
//! would locally, and a run shows their epoch bars.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kimcnn_stage::Progress;
use serde::{Deserialize, Serialize};

use crate::executor::RESULT;

/// The marker of a progress line in a job's logs.
pub const PROGRESS: &str = "KIMCNN-PROGRESS ";

/// A step on the wire ([`Progress::Steps`] with its unit as a string).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    unit: String,
    done: u64,
    total: u64,
    message: String,
    metrics: BTreeMap<String, f64>,
}

/// The units kinds report in ([`Progress::Steps`] takes a `&'static str`).
const UNITS: [&str; 4] = ["epoch", "trial", "token", "iteration"];

/// Steps without figures (a display's only) are printed at most this often per unit.
const EVERY: Duration = Duration::from_secs(1);

/// What a node prints for its progress.
#[derive(Debug, Default)]
pub struct NodePrinter {
    last: Mutex<BTreeMap<&'static str, Instant>>,
}

impl NodePrinter {
    /// The line to print for `p`, if any: every step with figures (an
    /// epoch: a study decides on it) and the last of a unit; other steps
    /// once a second; notes as they are; bytes and batches not at all.
    pub fn line(&self, p: &Progress) -> Option<String> {
        match p {
            Progress::Steps { unit, done, total, message, metrics } => {
                let mut last = self.last.lock().expect("printer lock");
                let due = last.get(unit).is_none_or(|t| t.elapsed() >= EVERY);
                if metrics.is_empty() && done < total && !due {
                    return None;
                }
                last.insert(unit, Instant::now());
                let step = Step { unit: unit.to_string(), done: *done, total: *total, message: message.clone(), metrics: metrics.clone() };
                Some(format!("{PROGRESS}{}", serde_json::to_string(&step).expect("steps serialise")))
            }
            Progress::Note(n) => Some(n.clone()),
            Progress::Bytes { .. } | Progress::Batches { .. } => None,
        }
    }
}

/// The coordinator's reading of one job's logs.
#[derive(Debug)]
pub struct Relay {
    /// Complete lines relayed so far.
    seen: usize,
    /// Relay the other lines too, as notes (`-v`).
    tail: bool,
}

impl Relay {
    pub fn new(tail: bool) -> Relay {
        Relay { seen: 0, tail }
    }

    /// Relays the complete lines of `logs` (the whole log so far) not yet seen.
    pub fn feed(&mut self, logs: &str, progress: &(dyn Fn(Progress) + Sync)) {
        let complete = match logs.rfind('\n') {
            Some(end) => &logs[..end],
            None => return,
        };
        let mut n = 0;
        for line in complete.lines() {
            n += 1;
            if n <= self.seen {
                continue;
            }
            if let Some(json) = line.strip_prefix(PROGRESS) {
                // A line another kimcnn version wrote differently is only a display's loss.
                if let Ok(s) = serde_json::from_str::<Step>(json) {
                    let unit = UNITS.into_iter().find(|u| *u == s.unit).unwrap_or("step");
                    progress(Progress::Steps { unit, done: s.done, total: s.total, message: s.message, metrics: s.metrics });
                }
            } else if self.tail && !line.starts_with(RESULT) && !line.trim().is_empty() {
                progress(Progress::Note(format!("node: {line}")));
            }
        }
        self.seen = self.seen.max(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(done: u64, acc: f64) -> Progress {
        Progress::Steps {
            unit: "epoch",
            done,
            total: 3,
            message: format!("epoch {done}"),
            metrics: BTreeMap::from([("accuracy".to_string(), acc)]),
        }
    }

    #[test]
    fn every_epoch_crosses_once_and_partial_lines_wait() {
        let printer = NodePrinter::default();
        let lines: Vec<String> = (1..=3).map(|e| printer.line(&epoch(e, 0.5 + e as f64 / 10.0)).expect("an epoch is printed")).collect();
        let got = Mutex::new(Vec::new());
        let sink = |p: Progress| got.lock().unwrap().push(p);
        let mut relay = Relay::new(false);
        // The first read ends inside the second line: only the first is relayed.
        let log = format!("kimcnn ray-job: stage x\n{}\n{}", lines[0], &lines[1][..10]);
        relay.feed(&log, &sink);
        assert_eq!(*got.lock().unwrap(), vec![epoch(1, 0.6)]);
        let log = format!("kimcnn ray-job: stage x\n{}\n{}\n{}\n{RESULT}{{}}\n", lines[0], lines[1], lines[2]);
        relay.feed(&log, &sink);
        relay.feed(&log, &sink);
        assert_eq!(*got.lock().unwrap(), vec![epoch(1, 0.6), epoch(2, 0.7), epoch(3, 0.8)]);
    }

    #[test]
    fn steps_without_figures_are_thinned_but_the_last_is_kept() {
        let printer = NodePrinter::default();
        let step = |done| Progress::Steps { unit: "token", done, total: 100, message: String::new(), metrics: BTreeMap::new() };
        assert!(printer.line(&step(1)).is_some());
        assert!(printer.line(&step(2)).is_none(), "a second step within a second is not printed");
        assert!(printer.line(&step(100)).is_some(), "the last step is");
        assert!(printer.line(&Progress::Batches { epoch: 1, epochs: 2, done: 1, total: 9 }).is_none());
        assert_eq!(printer.line(&Progress::Note("resumed".into())).as_deref(), Some("resumed"));
    }

    #[test]
    fn with_tail_the_other_lines_are_notes() {
        let got = Mutex::new(Vec::new());
        let sink = |p: Progress| got.lock().unwrap().push(p);
        Relay::new(true).feed(&format!("pulled 3 objects\n\n{RESULT}{{}}\n"), &sink);
        assert_eq!(*got.lock().unwrap(), vec![Progress::Note("node: pulled 3 objects".into())]);
    }
}
