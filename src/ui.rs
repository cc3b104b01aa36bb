//! Terminal output: progress bars (indicatif) when stdout is a terminal,
//! nothing but result lines otherwise.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use std::collections::HashMap;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kimcnn_pipeline::{Event, Outcome};
use kimcnn_stage::Progress;
use kimcnn_store::HashProgress;

fn multi() -> &'static MultiProgress {
    static M: OnceLock<MultiProgress> = OnceLock::new();
    M.get_or_init(|| {
        let target = if std::io::stdout().is_terminal() && std::env::var_os("KIMCNN_NO_PROGRESS").is_none() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        MultiProgress::with_draw_target(target)
    })
}

/// A bar for each long hash the store makes (a local data file or an
/// output of 64 MiB or more), cleared when it ends; none when `quiet`.
pub fn hash_progress(quiet: bool) -> HashProgress {
    let bars: Mutex<HashMap<PathBuf, ProgressBar>> = Mutex::new(HashMap::new());
    HashProgress(Arc::new(move |path: &Path, done, total| {
        if total < 64 << 20 || quiet {
            return;
        }
        let mut bars = bars.lock().expect("ui lock");
        let pb = bars.entry(path.to_path_buf()).or_insert_with(|| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let pb = bytes_bar(&format!("hashing {name}"));
            pb.set_length(total);
            pb
        });
        pb.set_position(done);
        if done >= total {
            if let Some(pb) = bars.remove(path) {
                pb.finish_and_clear();
            }
        }
    }))
}

/// A line of output that does not tear the progress bars.
pub fn line(s: &str) {
    if multi().is_hidden() {
        println!("{s}");
    } else {
        let _ = multi().println(s);
    }
}

/// A byte-counting bar for a download or copy.
pub fn bytes_bar(label: &str) -> ProgressBar {
    let pb = multi().add(ProgressBar::new(0));
    pb.set_style(
        ProgressStyle::with_template("{prefix:>24} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}").expect("valid template"),
    );
    pb.set_prefix(label.to_string());
    pb
}

pub fn bytes_progress(pb: &ProgressBar, done: u64, total: Option<u64>) {
    if let Some(t) = total {
        pb.set_length(t);
    }
    pb.set_position(done);
}

/// A transfer's progress (push, pull) as a bytes bar with an object count.
pub struct TransferBar(Mutex<Option<ProgressBar>>);

impl TransferBar {
    pub fn new() -> TransferBar {
        TransferBar(Mutex::new(None))
    }
}

impl kimcnn_remote::Progress for TransferBar {
    fn start(&self, what: &str, objects: usize, bytes: u64) {
        let pb = bytes_bar(&format!("{what} {objects} objects"));
        pb.set_length(bytes);
        *self.0.lock().expect("ui lock") = Some(pb);
    }
    fn advance(&self, bytes: u64) {
        if let Some(pb) = self.0.lock().expect("ui lock").as_ref() {
            pb.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Some(pb) = self.0.lock().expect("ui lock").take() {
            pb.finish_and_clear();
        }
    }
}

/// A bar over `total` items (stages, objects).
pub fn count_bar(total: u64, what: &str) -> ProgressBar {
    let pb = multi().add(ProgressBar::new(total));
    pb.set_style(
        ProgressStyle::with_template(&format!("{{bar:30}} {{pos}}/{{len}} {what} {{elapsed}} {{wide_msg}}")).expect("valid template"),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A stage's bar over steps (epochs, trials, iterations).
fn steps_bar(stage: &str, unit: &str, total: u64) -> ProgressBar {
    let pb = multi().add(ProgressBar::new(total));
    pb.set_style(
        ProgressStyle::with_template(&format!("{{prefix:>24}} {{bar:30}} {unit} {{pos}}/{{len}} [{{elapsed}}, eta {{eta}}] {{msg}}"))
            .expect("valid template"),
    );
    pb.set_prefix(stage.to_string());
    pb
}

/// Turns runner events into a bar over the stages, a bar per running stage
/// that reports progress, and one line per computed stage (with `-v` and no
/// terminal, also a line per epoch).
pub struct RunDisplay {
    bar: Mutex<Option<ProgressBar>>,
    running: Mutex<Vec<String>>,
    stage_bars: Mutex<HashMap<String, ProgressBar>>,
    /// Each stage's last step message (an epoch's loss and dev accuracy).
    last_message: Mutex<HashMap<String, String>>,
    pub verbose: bool,
    /// Failures only: no bars, notes or lines per stage.
    pub quiet: bool,
    /// How a stage restored through the runner's fetch is labelled.
    pub pulled: &'static str,
}

impl RunDisplay {
    pub fn new(verbose: bool, quiet: bool) -> RunDisplay {
        RunDisplay {
            bar: Mutex::new(None),
            running: Mutex::new(Vec::new()),
            stage_bars: Mutex::new(HashMap::new()),
            last_message: Mutex::new(HashMap::new()),
            verbose,
            quiet,
            pulled: "pulled",
        }
    }

    fn progress(&self, stage: &str, p: &Progress) {
        if self.quiet {
            return;
        }
        let mut bars = self.stage_bars.lock().expect("ui lock");
        match p {
            Progress::Bytes { done, total } => {
                let pb = bars.entry(stage.to_string()).or_insert_with(|| bytes_bar(stage));
                bytes_progress(pb, *done, *total);
            }
            Progress::Steps { unit, done, total, message, .. } => {
                let pb = bars.entry(stage.to_string()).or_insert_with(|| steps_bar(stage, unit, *total));
                let moved = pb.position() != *done;
                pb.set_position(*done);
                pb.set_message(message.clone());
                self.last_message.lock().expect("ui lock").insert(stage.to_string(), message.clone());
                // Without a terminal: a line per step when asked (-v), per trial ended always.
                if multi().is_hidden() && (self.verbose || (*unit == "trial" && moved)) {
                    line(&format!("{unit:<10} {stage}  {done}/{total}  {message}"));
                }
            }
            // Within an epoch: the epoch bar says how far, with the last epoch's figures.
            Progress::Batches { epoch, epochs, done, total } => {
                let pb = bars.entry(stage.to_string()).or_insert_with(|| steps_bar(stage, "epoch", *epochs));
                pb.set_position(epoch.saturating_sub(1));
                let last = self.last_message.lock().expect("ui lock").get(stage).cloned().unwrap_or_default();
                pb.set_message(format!("epoch {epoch}: batch {done}/{total}  {last}"));
            }
            Progress::Note(note) => line(&format!("{stage}: {note}")),
        }
    }

    pub fn event(&self, e: Event) {
        let mut bar = self.bar.lock().expect("ui lock");
        match e {
            Event::Planned { total } => {
                if bar.is_none() && !self.quiet {
                    *bar = Some(count_bar(total as u64, "stages"));
                }
            }
            Event::Started { stage, .. } => {
                let mut r = self.running.lock().expect("ui lock");
                r.push(stage.to_string());
                if let Some(b) = bar.as_ref() {
                    b.set_message(r.join(", "));
                }
            }
            Event::Progress { stage, progress } => {
                drop(bar);
                self.progress(stage, progress);
            }
            Event::Finished { stage, outcome } => {
                if let Some(pb) = self.stage_bars.lock().expect("ui lock").remove(stage) {
                    pb.finish_and_clear();
                }
                self.last_message.lock().expect("ui lock").remove(stage);
                let mut r = self.running.lock().expect("ui lock");
                r.retain(|s| s != stage);
                if let Some(b) = bar.as_ref() {
                    b.inc(1);
                    b.set_message(r.join(", "));
                }
                let text = match outcome {
                    Outcome::Ran { seconds } => Some(format!("ran        {stage}  ({seconds:.2} s)")),
                    Outcome::CachedByOther => Some(format!("cached     {stage}  (computed by another kimcnn meanwhile)")),
                    Outcome::Pulled => Some(format!("{:<10} {stage}", self.pulled)),
                    Outcome::WouldRun => Some(format!("would run  {stage}")),
                    Outcome::Failed(e) => Some(format!("{:<10} {stage}: {e}", e.label())),
                    Outcome::Cached if self.verbose => Some(format!("cached     {stage}")),
                    _ => None,
                }
                .filter(|_| !self.quiet || matches!(outcome, Outcome::Failed(_)));
                if let Some(t) = text {
                    line(&t);
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("ui lock").take() {
            b.finish_and_clear();
        }
    }
}
