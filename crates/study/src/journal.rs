//! A study's append-only journal: one JSON event a line, each with the
//! BLAKE3 of its event, so a flipped byte is found, not used. A last line
//! cut short (the study was killed while writing it) is dropped with a
//! note; any other bad line stops the study with the line's number.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use kimcnn_schema::TrialStatus;
use kimcnn_stage::StageError;
use kimcnn_tune::Point;
use serde::{Deserialize, Serialize};

/// What happened in a study, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum JournalEvent {
    /// Trial `trial` was proposed `point`.
    Start { trial: usize, point: Point },
    /// It reported an epoch's figures.
    Epoch { trial: usize, epoch: usize, metrics: BTreeMap<String, f64> },
    /// It ended.
    End { trial: usize, status: TrialStatus, error: Option<String>, key: Option<String>, cached: bool, peak_rss_bytes: Option<u64> },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    /// The first 16 hex digits of the BLAKE3 of `event` as JSON.
    blake3: String,
    event: serde_json::Value,
}

fn digest(event: &serde_json::Value) -> String {
    blake3::hash(event.to_string().as_bytes()).to_hex()[..16].to_string()
}

pub struct Journal {
    path: PathBuf,
    file: File,
    appended: usize,
}

impl Journal {
    /// Opens the journal at `path` (created if missing) and returns its
    /// events; `note` hears about a truncated last line, which is dropped.
    pub fn open(path: &Path, note: &dyn Fn(String)) -> Result<(Journal, Vec<JournalEvent>), StageError> {
        let io = |e: std::io::Error| StageError::Failed(format!("{}: {e}", path.display()));
        let text = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let mut events = Vec::new();
        let mut good = 0usize;
        let n_lines = text.split(|&b| b == b'\n').count();
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let last = i + 1 == n_lines;
            if raw.is_empty() && last {
                break;
            }
            match parse_line(raw) {
                Ok(e) => {
                    events.push(e);
                    good += raw.len() + 1;
                }
                // Killed while writing its last line: that line never was.
                Err(_) if last => {
                    note(format!("{} line {}: cut short (the study was killed while writing it); ignored", path.display(), i + 1));
                    break;
                }
                Err(why) => {
                    return Err(StageError::BadInput(format!(
                        "{} line {}: {why}; the study cannot resume from a damaged journal (remove {} to start it again)",
                        path.display(),
                        i + 1,
                        path.parent().unwrap_or(path).display()
                    )))
                }
            }
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io)?;
        file.set_len(good as u64).map_err(io)?;
        let mut j = Journal { path: path.to_path_buf(), file, appended: 0 };
        use std::io::Seek;
        j.file.seek(std::io::SeekFrom::End(0)).map_err(io)?;
        Ok((j, events))
    }

    /// Appends an event (written through to the file before it returns).
    pub fn append(&mut self, e: &JournalEvent) -> Result<(), StageError> {
        let event = serde_json::to_value(e).map_err(|e| StageError::Failed(e.to_string()))?;
        let mut line = serde_json::to_string(&Line { blake3: digest(&event), event }).map_err(|e| StageError::Failed(e.to_string()))?;
        line.push('\n');
        let io = |e: std::io::Error| StageError::Failed(format!("{}: {e}", self.path.display()));
        let half = line.len() / 2;
        self.file.write_all(&line.as_bytes()[..half]).map_err(io)?;
        self.appended += 1;
        // Crash tests: killed with half a line written.
        kimcnn_store::kill_point(&format!("study:half-line-{}", self.appended));
        self.file.write_all(&line.as_bytes()[half..]).map_err(io)?;
        kimcnn_store::kill_point(&format!("study:line-{}", self.appended));
        Ok(())
    }
}

fn parse_line(raw: &[u8]) -> Result<JournalEvent, String> {
    let line: Line = serde_json::from_slice(raw).map_err(|e| format!("not a journal line ({e})"))?;
    if digest(&line.event) != line.blake3 {
        return Err("its hash does not match its event (damaged)".into());
    }
    serde_json::from_value(line.event).map_err(|e| format!("not a journal event ({e})"))
}
