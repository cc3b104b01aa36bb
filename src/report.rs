//! `kimcnn report`: the report stages' outputs as a directory a person
//! opens or shares: `artifacts/reports/<stage>/index.html` (self-contained),
//! `report.md`, and `figures/<name>.{svg,png,parquet}` beside them.

use std::path::{Path, PathBuf};

use kimcnn_store::{Lockfile, Store};

/// Where a report stage's page is written.
pub fn dir(store: &Store, stage: &str) -> PathBuf {
    store.root().join("reports").join(stage)
}

/// Copies the stage's outputs into [`dir`], replacing what was there, with
/// this run's appendix (the lock's hash, each stage's wall time) at the end
/// of the page and its Markdown twin; returns the page's path.
pub fn materialise(store: &Store, stage: &str, lock: &Lockfile, lock_path: &Path) -> Result<PathBuf, String> {
    let entry = lock.stages.get(stage).ok_or_else(|| format!("{stage}: not in pipeline.lock after its run"))?;
    let dest = dir(store, stage);
    let tmp = dest.with_file_name(format!(".{stage}.tmp"));
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| err(&tmp, e))?;
    }
    std::fs::create_dir_all(tmp.join("figures")).map_err(|e| err(&tmp, e))?;
    for (name, id) in &entry.outputs {
        let file = match name.as_str() {
            "page" => "index.html".to_string(),
            "markdown" => "report.md".to_string(),
            other => match other.rsplit_once('_') {
                Some((fig, "svg")) => format!("figures/{fig}.svg"),
                Some((fig, "png")) => format!("figures/{fig}.png"),
                Some((fig, "data")) => format!("figures/{fig}.parquet"),
                _ => continue,
            },
        };
        let src = store.object_path(id);
        let to = tmp.join(&file);
        std::fs::copy(&src, &to)
            .map_err(|e| format!("{stage}: output `{name}` ({}): {e} (pull or rerun it: `kimcnn report`)", src.display()))?;
        // Objects are read-only; the copies are the user's.
        let mut perm = std::fs::metadata(&to).map_err(|e| err(&to, e))?.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&to, perm).map_err(|e| err(&to, e))?;
    }
    let lock_id = kimcnn_store::hash_file(lock_path).map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for (name, e) in &lock.stages {
        // A record that cannot be read costs its row's figures, not the page.
        let rec = store.read_run(&e.key).ok().flatten();
        times.push(kimcnn_report::StageTime {
            stage: name.clone(),
            kind: e.kind.clone(),
            seconds: rec.as_ref().map(|r| r.seconds),
            device: rec.and_then(|r| r.device),
        });
    }
    let (html, md) = kimcnn_report::appendix(lock_id.as_str(), &times);
    let page = tmp.join("index.html");
    let text = std::fs::read_to_string(&page).map_err(|e| err(&page, e))?;
    let at = text.rfind("</body>").ok_or_else(|| format!("{stage}: its page has no </body>; rerun it: `kimcnn report --force`"))?;
    std::fs::write(&page, format!("{}{html}{}", &text[..at], &text[at..])).map_err(|e| err(&page, e))?;
    let twin = tmp.join("report.md");
    let mut text = std::fs::read_to_string(&twin).map_err(|e| err(&twin, e))?;
    text.push_str(&format!("\n{md}"));
    std::fs::write(&twin, text).map_err(|e| err(&twin, e))?;
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|e| err(&dest, e))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| err(&dest, e))?;
    Ok(dest.join("index.html"))
}

/// Opens the page in the user's browser: `$BROWSER`, else `xdg-open` (`open` on macOS).
pub fn open(page: &Path) -> Result<(), String> {
    let opener = std::env::var("BROWSER").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| {
        if cfg!(target_os = "macos") {
            "open".into()
        } else {
            "xdg-open".into()
        }
    });
    let status = std::process::Command::new(&opener)
        .arg(page)
        .status()
        .map_err(|e| format!("cannot open the page with `{opener}` ({e}); set $BROWSER, or open {} yourself", page.display()))?;
    if !status.success() {
        return Err(format!("`{opener}` failed ({status}); set $BROWSER, or open {} yourself", page.display()));
    }
    Ok(())
}
