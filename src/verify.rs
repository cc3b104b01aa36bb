//! `kimcnn verify`: the store's objects re-hashed, or stages recomputed
//! and compared with pipeline.lock.

use std::process::ExitCode;

use kimcnn_pipeline::Check;
use kimcnn_store::Lockfile;

use crate::{ui, Failure, Project};

/// Re-hashes every object in the store.
pub fn store(project: &Project, repair: bool) -> Result<ExitCode, Failure> {
    let store = &project.env.store;
    let ids = store.objects()?.ids;
    let total: u64 = ids.iter().map(|(_, n)| n).sum();
    let bar = ui::bytes_bar("verify");
    bar.set_length(total);
    let rep = store.verify(|n| bar.inc(n))?;
    bar.finish_and_clear();
    let lock = Lockfile::read(&project.lock_path())?;
    for id in &rep.corrupt {
        let users: Vec<String> = lock
            .stages
            .iter()
            .flat_map(|(st, e)| e.outputs.iter().filter(|(_, o)| *o == id).map(move |(n, _)| format!("{st}.{n}")))
            .collect();
        let what = if users.is_empty() { String::new() } else { format!(" (output {})", users.join(", ")) };
        let fate = if repair {
            store.quarantine(id)?;
            "; quarantined, the next run recomputes it"
        } else {
            "; `kimcnn verify --repair` quarantines it"
        };
        println!("corrupt: object {id}{what}{fate}");
    }
    for p in &rep.strays {
        println!("stray file in objects/: {}", p.display());
    }
    println!("{} objects ({:.1} MB) checked: {} corrupt", rep.checked, rep.bytes as f64 / 1e6, rep.corrupt.len());
    Ok(if rep.corrupt.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Recomputes stages in scratch and compares their bytes with pipeline.lock.
pub fn recompute(project: &Project, stages: &[String], jobs: Option<usize>) -> Result<ExitCode, Failure> {
    let lock_path = project.lock_path();
    if !lock_path.is_file() {
        return Err(Failure(format!("{}: no such file; there is nothing to compare with (run the stages first)", lock_path.display()), 2));
    }
    let plan = project.plan(&[], None)?;
    let mut display = ui::RunDisplay::new(false, false);
    display.pulled = "restored";
    let jobs = jobs.unwrap_or_else(crate::cores);
    let result = kimcnn_pipeline::recompute(&plan, &project.registry, &project.env, stages, &lock_path, jobs, &|e| display.event(e));
    display.finish();
    let checks = result?;
    let width = checks.iter().map(|c| c.stage.len()).max().unwrap_or(0);
    let short = |id: &kimcnn_store::ObjectId| id.short().to_string();
    for c in &checks {
        let (label, what) = match &c.check {
            Check::Same { outputs, measured } => {
                let skipped =
                    if measured.is_empty() { String::new() } else { format!(" ({}: wall-clock, not compared)", measured.join(", ")) };
                ("same", format!("{}{skipped}", outputs.join(", ")))
            }
            Check::Differs { differ, same, .. } => {
                let d: Vec<String> = differ.iter().map(|(n, l, r)| format!("{n}: lock {}, recomputed {}", short(l), short(r))).collect();
                let s = if same.is_empty() { String::new() } else { format!("; same: {}", same.join(", ")) };
                ("DIFFERS", format!("{}{s}", d.join("; ")))
            }
            Check::OtherKey { lock, now, inputs } => {
                let why = if inputs.is_empty() { "its params or code".to_string() } else { format!("inputs {}", inputs.join(", ")) };
                (
                    "OTHER KEY",
                    format!(
                        "the lock is of another run ({}; recomputed {}): {why} changed since; run it, then verify",
                        short(lock),
                        short(now)
                    ),
                )
            }
            Check::NotInLock => ("NOT LOCKED", "pipeline.lock has no entry for it; run it first".to_string()),
            Check::Failed(e) => ("FAILED", e.clone()),
        };
        let needed = if c.named { "" } else { " (needed, not in the store)" };
        println!("{label:<10}  {:<width$}  {what}{needed}", c.stage);
    }
    let bad = checks.iter().filter(|c| !c.check.matches()).count();
    println!("{} stages recomputed: {} as pipeline.lock names, {bad} not", checks.len(), checks.len() - bad);
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
