use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};

use crate::hash::{hash_file, parse_id, ObjectId};
use crate::{io_err, Result, StoreError};

/// What one stage run produced: the cache key it ran under and the objects it
/// wrote. Stored as `runs/<key>.json`; written only after all of its objects
/// are committed, so a record never names an object that was not complete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub key: ObjectId,
    pub kind: String,
    pub kind_version: u32,
    /// The stage name it was first computed for (informational: the key does
    /// not depend on the name, so another stage with the same work reuses it).
    pub stage: String,
    pub params: serde_json::Value,
    pub inputs: BTreeMap<String, ObjectId>,
    pub outputs: BTreeMap<String, ObjectId>,
    /// Seconds since the Unix epoch when the run finished.
    pub finished: u64,
    pub seconds: f64,
    /// Where it computed (`cpu`, `cuda:0`), for kinds with a device. Not
    /// part of the key: a CPU and a GPU run of a stage are the same stage
    /// (the same model up to rounding, not the same bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// What else the stage says about how it computed (a torch stage: its
    /// numerics mode, ISA level, torch and MKL versions).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ran_with: BTreeMap<String, String>,
    /// The peak resident memory of the process that computed it, where the
    /// kind measures one (a torch worker): a measurement, not a result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

/// What [`Store::objects`] finds.
#[derive(Debug, Default)]
pub struct ObjectList {
    /// Object ids and sizes, sorted.
    pub ids: Vec<(ObjectId, u64)>,
    pub strays: Vec<PathBuf>,
}

/// The local store: `objects/`, `runs/`, `out/` (friendly links), `tmp/`
/// (scratch for running stages), `locks/` and `quarantine/`.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    on_hash: Option<HashProgress>,
}

/// Told how far a long hash (a local data file, a large output) has got:
/// the file, bytes hashed, its size. For a display's bar.
#[derive(Clone)]
pub struct HashProgress(pub std::sync::Arc<HashProgressFn>);

/// What [`HashProgress`] calls.
pub type HashProgressFn = dyn Fn(&Path, u64, u64) + Send + Sync;

impl std::fmt::Debug for HashProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashProgress")
    }
}

/// An exclusive lock on one cache key, held across processes (flock); dropped
/// on release or when the process dies, so a `kill -9` never leaves it held.
#[derive(Debug)]
pub struct KeyLock {
    _file: File,
}

/// A scratch directory inside the store's file system for one stage run.
/// Removed on drop; a crash leaves it behind for `gc` (or the next run of the
/// same key) to remove, never inside `objects/`.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub checked: usize,
    pub bytes: u64,
    /// Objects whose bytes no longer hash to their name.
    pub corrupt: Vec<ObjectId>,
    /// Files in `objects/` that are not named like objects.
    pub strays: Vec<PathBuf>,
}

#[derive(Debug, Default)]
pub struct GcReport {
    pub kept: usize,
    pub removed: Vec<(ObjectId, u64)>,
    pub removed_runs: Vec<ObjectId>,
    pub removed_scratch: usize,
    /// State directories (journals, checkpoints) of keys that have finished.
    pub removed_state: usize,
}

impl GcReport {
    pub fn removed_bytes(&self) -> u64 {
        self.removed.iter().map(|(_, n)| n).sum()
    }
}

const DIRS: [&str; 8] = ["objects", "runs", "out", "tmp", "locks", "quarantine", "state", "journals"];

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for d in DIRS {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(Store { root, on_hash: None })
    }

    /// The same store, telling `progress` how its hashes of files go.
    pub fn with_hash_progress(mut self, progress: HashProgress) -> Store {
        self.on_hash = Some(progress);
        self
    }

    fn hash(&self, path: &Path) -> Result<ObjectId> {
        match &self.on_hash {
            Some(HashProgress(f)) => crate::hash::hash_file_with(path, &|done, total| f(path, done, total)),
            None => hash_file(path),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn object_path(&self, id: &ObjectId) -> PathBuf {
        let s = id.as_str();
        self.root.join("objects").join(&s[..2]).join(&s[2..])
    }

    pub fn has_object(&self, id: &ObjectId) -> bool {
        self.object_path(id).is_file()
    }

    /// Moves a finished file into the store under its hash: hash, fsync,
    /// make read-only, rename (atomic on one file system), fsync the
    /// directory. If the object exists already the file is dropped.
    pub fn commit_file(&self, file: &Path) -> Result<ObjectId> {
        let id = self.hash(file)?;
        let dest = self.object_path(&id);
        if dest.is_file() {
            fs::remove_file(file).map_err(io_err(file))?;
            return Ok(id);
        }
        let f = File::open(file).map_err(io_err(file))?;
        f.sync_all().map_err(io_err(file))?;
        drop(f);
        fs::set_permissions(file, fs::Permissions::from_mode(0o444)).map_err(io_err(file))?;
        let dir = dest.parent().expect("object paths have a parent");
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        crate::kill_point("commit:before-rename");
        fs::rename(file, &dest).map_err(io_err(&dest))?;
        crate::kill_point("commit:after-rename");
        sync_dir(dir)?;
        Ok(id)
    }

    /// Stores a byte string as an object.
    pub fn commit_bytes(&self, bytes: &[u8]) -> Result<ObjectId> {
        let scratch = self.scratch("bytes")?;
        let p = scratch.path().join("object");
        fs::write(&p, bytes).map_err(io_err(&p))?;
        self.commit_file(&p)
    }

    /// The BLAKE3 hash of a file outside the store (a local data file),
    /// remembered under its size, mtime and inode in `state/` so that an
    /// unchanged file is not re-read on every run (as DVC's state does).
    pub fn hash_external(&self, path: &Path) -> Result<ObjectId> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).map_err(io_err(path))?;
        let abs = path.canonicalize().map_err(io_err(path))?;
        let stamp = format!("{}:{}.{}:{}", meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino());
        let entry = self.root.join("state").join(crate::hash_bytes(abs.as_os_str().as_bytes()).as_str());
        if let Ok(text) = fs::read_to_string(&entry) {
            if let Some(id) = text.split_once(' ').filter(|(st, _)| *st == stamp).and_then(|(_, id)| ObjectId::parse(id.trim())) {
                return Ok(id);
            }
        }
        let id = self.hash(path)?;
        write_atomic(&entry, format!("{stamp} {id}").as_bytes(), "state")?;
        Ok(id)
    }

    /// True when the object exists and its bytes still hash to its name.
    pub fn check_object(&self, id: &ObjectId) -> Result<bool> {
        let p = self.object_path(id);
        if !p.is_file() {
            return Err(StoreError::Missing { id: id.clone(), root: self.root.clone() });
        }
        Ok(&hash_file(&p)? == id)
    }

    /// Moves a corrupt object out of `objects/` (into `quarantine/`), so that
    /// nothing uses it and whatever produced it is recomputed.
    pub fn quarantine(&self, id: &ObjectId) -> Result<PathBuf> {
        let from = self.object_path(id);
        let to = self.root.join("quarantine").join(format!("{}-{}", id, now_secs()));
        fs::rename(&from, &to).map_err(io_err(&from))?;
        Ok(to)
    }

    /// A fresh scratch directory under `tmp/`, named after `label` (a cache
    /// key, say) so that leftovers of a killed run can be found and removed.
    pub fn scratch(&self, label: &str) -> Result<ScratchDir> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let p = self.root.join("tmp").join(format!("{label}.{}.{nanos}", std::process::id()));
        fs::create_dir_all(&p).map_err(io_err(&p))?;
        Ok(ScratchDir { path: p })
    }

    /// Where a run of pipeline stage `stage` under `key` keeps what must
    /// survive its being killed (a study's journal, a training checkpoint):
    /// `journals/<stage>/<key>/`, not created here (a study's trials keep
    /// theirs inside its own). Other keys' directories beside it are earlier
    /// runs of the same stage with other params or inputs.
    pub fn state_dir(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join("journals").join(stage.replace('/', "~")).join(key)
    }

    /// Removes scratch directories left by killed runs of `label`. Call it
    /// while holding that label's [`KeyLock`], so no live run owns them.
    pub fn clear_scratch(&self, label: &str) -> Result<usize> {
        let tmp = self.root.join("tmp");
        let prefix = format!("{label}.");
        let mut n = 0;
        for e in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let e = e.map_err(io_err(&tmp))?;
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = make_writable(&e.path());
                fs::remove_dir_all(e.path()).map_err(io_err(e.path()))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Blocks until this process holds the exclusive lock for `key`.
    pub fn lock_key(&self, key: &str) -> Result<KeyLock> {
        let p = self.root.join("locks").join(key);
        let f = File::options().create(true).truncate(false).write(true).open(&p).map_err(io_err(&p))?;
        f.lock_exclusive().map_err(io_err(&p))?;
        Ok(KeyLock { _file: f })
    }

    fn run_path(&self, key: &ObjectId) -> PathBuf {
        self.root.join("runs").join(format!("{key}.json"))
    }

    pub fn read_run(&self, key: &ObjectId) -> Result<Option<RunRecord>> {
        let p = self.run_path(key);
        match fs::read(&p) {
            Ok(bytes) => {
                let rec: RunRecord =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::BadRecord { path: p.clone(), message: e.to_string() })?;
                if &rec.key != key {
                    return Err(StoreError::BadRecord { path: p, message: format!("it names key {}", rec.key) });
                }
                Ok(Some(rec))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { path: p, source: e }),
        }
    }

    /// Publishes a run record (atomically). Every output must already be an
    /// object in the store.
    pub fn write_run(&self, rec: &RunRecord) -> Result<()> {
        for id in rec.outputs.values() {
            if !self.has_object(id) {
                return Err(StoreError::Missing { id: id.clone(), root: self.root.clone() });
            }
        }
        let bytes = serde_json::to_vec_pretty(rec).expect("run records serialise");
        write_atomic(&self.run_path(&rec.key), &bytes, "run-record")
    }

    pub fn remove_run(&self, key: &ObjectId) -> Result<()> {
        let p = self.run_path(key);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io { path: p, source: e }),
            _ => Ok(()),
        }
    }

    /// Every run record in the store.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        let dir = self.root.join("runs");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let p = e.map_err(io_err(&dir))?.path();
            let Some(stem) = p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let key = parse_id(&p, stem)?;
            if let Some(rec) = self.read_run(&key)? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Points `out/<stage>/<output>` at an object (a relative symlink,
    /// replaced atomically). Stage and output names are checked by the caller
    /// to be plain names; this refuses anything with a path separator.
    pub fn link(&self, stage: &str, output: &str, id: &ObjectId) -> Result<()> {
        let dir = self.root.join("out").join(stage);
        for part in [stage, output] {
            if part.is_empty() || part.contains('/') || part.starts_with('.') {
                return Err(StoreError::Io {
                    path: dir.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a plain name"),
                });
            }
        }
        let link = dir.join(output);
        let s = id.as_str();
        let target = Path::new("../../objects").join(&s[..2]).join(&s[2..]);
        if fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let tmp = dir.join(format!(".{output}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &link).map_err(io_err(&link))?;
        Ok(())
    }

    /// Every object id in the store with its size, sorted; and the files in
    /// `objects/` that are not objects (strays).
    pub fn objects(&self) -> Result<ObjectList> {
        let dir = self.root.join("objects");
        let mut ids = Vec::new();
        let mut strays = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let sub = e.map_err(io_err(&dir))?.path();
            let prefix = sub.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            if !sub.is_dir() {
                strays.push(sub);
                continue;
            }
            for f in fs::read_dir(&sub).map_err(io_err(&sub))? {
                let f = f.map_err(io_err(&sub))?;
                let name = format!("{prefix}{}", f.file_name().to_string_lossy());
                match ObjectId::parse(&name) {
                    Some(id) => {
                        let len = f.metadata().map_err(io_err(f.path()))?.len();
                        ids.push((id, len))
                    }
                    None => strays.push(f.path()),
                }
            }
        }
        ids.sort();
        Ok(ObjectList { ids, strays })
    }

    /// Re-hashes every object. `progress` is called with the bytes of each
    /// object as it is checked.
    pub fn verify(&self, mut progress: impl FnMut(u64)) -> Result<VerifyReport> {
        let ObjectList { ids, strays } = self.objects()?;
        let mut rep = VerifyReport { strays, ..Default::default() };
        for (id, len) in ids {
            if hash_file(&self.object_path(&id))? != id {
                rep.corrupt.push(id);
            }
            rep.checked += 1;
            rep.bytes += len;
            progress(len);
        }
        Ok(rep)
    }

    /// Removes objects not in `keep` and not named by any run record that is
    /// itself kept. With `drop_runs_except`, run records whose keys are not in
    /// that set are dropped first (and so stop protecting their objects).
    /// Leftover scratch directories of dead runs go too.
    pub fn gc(&self, keep: &BTreeSet<ObjectId>, drop_runs_except: Option<&BTreeSet<ObjectId>>, dry_run: bool) -> Result<GcReport> {
        let mut rep = GcReport::default();
        let mut needed = keep.clone();
        let mut finished = BTreeSet::new();
        for rec in self.runs()? {
            if drop_runs_except.is_some_and(|k| !k.contains(&rec.key)) {
                rep.removed_runs.push(rec.key.clone());
                if !dry_run {
                    self.remove_run(&rec.key)?;
                }
                continue;
            }
            finished.insert(rec.key.as_str().to_string());
            needed.extend(rec.outputs.values().cloned());
        }
        let ids = self.objects()?.ids;
        for (id, len) in ids {
            if needed.contains(&id) {
                rep.kept += 1;
            } else {
                if !dry_run {
                    let p = self.object_path(&id);
                    fs::remove_file(&p).map_err(io_err(&p))?;
                }
                rep.removed.push((id, len));
            }
        }
        // Scratch dirs whose key lock nobody holds belong to dead runs.
        let tmp = self.root.join("tmp");
        for e in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let e = e.map_err(io_err(&tmp))?;
            let name = e.file_name().to_string_lossy().to_string();
            let label = name.split('.').next().unwrap_or("").to_string();
            if self.lock_free(&label) {
                rep.removed_scratch += 1;
                if !dry_run {
                    let _ = make_writable(&e.path());
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        // State kept for a rerun (`journals/<stage>/<key>/`): of no use once the
        // key has finished (elsewhere, or by a pull). A killed run's state of a key
        // that has not finished stays, whatever the lock says: it may yet resume.
        let journals = self.root.join("journals");
        for stage in fs::read_dir(&journals).into_iter().flatten().flatten() {
            for e in fs::read_dir(stage.path()).into_iter().flatten().flatten() {
                let key = e.file_name().to_string_lossy().to_string();
                if finished.contains(&key) && self.lock_free(&key) {
                    rep.removed_state += 1;
                    if !dry_run {
                        fs::remove_dir_all(e.path()).map_err(io_err(&e.path()))?;
                    }
                }
            }
        }
        Ok(rep)
    }

    /// Whether no live run holds `label`'s key lock.
    fn lock_free(&self, label: &str) -> bool {
        match File::options().write(true).open(self.root.join("locks").join(label)) {
            Ok(f) => f.try_lock_exclusive().unwrap_or(false),
            Err(_) => true,
        }
    }
}

/// Writes a file atomically (temp file beside it, fsync, rename); `what` names it for
/// [`crate::kill_point`] (`<what>:before-rename`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    crate::kill_point(&format!("{what}:before-rename"));
    fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// Opens up the directories under `p` so `remove_dir_all` can empty them.
/// Files keep their mode (removing one needs only its directory writable):
/// a scratch store holds hard links to the store's read-only objects
/// (`verify --recompute`), whose mode must not change.
fn make_writable(p: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(p)?.is_dir() {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755))?;
        for e in fs::read_dir(p)? {
            make_writable(&e?.path())?;
        }
    }
    Ok(())
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash_bytes;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("artifacts")).unwrap();
        (d, s)
    }

    #[test]
    fn commit_is_content_addressed_and_read_only() {
        let (_d, s) = store();
        let scratch = s.scratch("k").unwrap();
        let p = scratch.path().join("x");
        fs::write(&p, b"hello").unwrap();
        let id = s.commit_file(&p).unwrap();
        assert_eq!(id, hash_bytes(b"hello"));
        assert!(!p.exists());
        let obj = s.object_path(&id);
        assert_eq!(fs::read(&obj).unwrap(), b"hello");
        assert_eq!(fs::metadata(&obj).unwrap().permissions().mode() & 0o777, 0o444);
        // Same bytes again: deduplicated, scratch file dropped.
        fs::write(&p, b"hello").unwrap();
        assert_eq!(s.commit_file(&p).unwrap(), id);
        assert!(!p.exists());
        assert!(s.check_object(&id).unwrap());
    }

    #[test]
    fn flipped_byte_is_detected_and_quarantined() {
        let (_d, s) = store();
        let id = s.commit_bytes(b"some bytes").unwrap();
        let p = s.object_path(&id);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"some bytez").unwrap();
        assert!(!s.check_object(&id).unwrap());
        let rep = s.verify(|_| {}).unwrap();
        assert_eq!(rep.corrupt, vec![id.clone()]);
        s.quarantine(&id).unwrap();
        assert!(!s.has_object(&id));
        assert!(s.verify(|_| {}).unwrap().corrupt.is_empty());
    }

    #[test]
    fn run_records_round_trip_and_need_their_objects() {
        let (_d, s) = store();
        let out = s.commit_bytes(b"out").unwrap();
        let key = hash_bytes(b"key");
        let mut rec = RunRecord {
            key: key.clone(),
            kind: "exec".into(),
            kind_version: 1,
            stage: "a".into(),
            params: serde_json::json!({"cmd": "true"}),
            inputs: BTreeMap::new(),
            outputs: BTreeMap::from([("out".to_string(), out.clone())]),
            finished: 0,
            seconds: 0.5,
            device: None,
            ran_with: Default::default(),
            peak_rss_bytes: Some(123 << 20),
        };
        s.write_run(&rec).unwrap();
        assert_eq!(s.read_run(&key).unwrap(), Some(rec.clone()));
        rec.outputs.insert("missing".into(), hash_bytes(b"nope"));
        assert!(matches!(s.write_run(&rec), Err(StoreError::Missing { .. })));
    }

    #[test]
    fn gc_keeps_what_records_and_keep_set_need() {
        let (_d, s) = store();
        let a = s.commit_bytes(b"a").unwrap();
        let b = s.commit_bytes(b"b").unwrap();
        let c = s.commit_bytes(b"c").unwrap();
        let key = hash_bytes(b"k");
        s.write_run(&RunRecord {
            key: key.clone(),
            kind: "exec".into(),
            kind_version: 1,
            stage: "s".into(),
            params: serde_json::Value::Null,
            inputs: BTreeMap::new(),
            outputs: BTreeMap::from([("o".to_string(), b.clone())]),
            finished: 0,
            seconds: 0.0,
            device: None,
            ran_with: Default::default(),
            peak_rss_bytes: None,
        })
        .unwrap();
        let keep = BTreeSet::from([a.clone()]);
        let dry = s.gc(&keep, None, true).unwrap();
        assert_eq!(dry.removed.len(), 1);
        assert!(s.has_object(&c));
        let rep = s.gc(&keep, None, false).unwrap();
        assert_eq!(rep.removed[0].0, c);
        assert!(s.has_object(&a) && s.has_object(&b) && !s.has_object(&c));
        // State dirs: a finished key's goes; an unfinished one's stays.
        let finished = s.state_dir("s", key.as_str());
        let other = s.state_dir("s", hash_bytes(b"other").as_str());
        for d in [&finished, &other] {
            fs::create_dir_all(d).unwrap();
            fs::write(d.join("checkpoint.safetensors"), b"x").unwrap();
        }
        let rep = s.gc(&keep, None, false).unwrap();
        assert_eq!(rep.removed_state, 1);
        assert!(!finished.exists() && other.exists());
        let rep = s.gc(&keep, Some(&BTreeSet::new()), false).unwrap();
        assert_eq!(rep.removed_runs, vec![key]);
        assert!(!s.has_object(&b));
        assert_eq!(rep.removed_state, 0);
        assert!(other.exists(), "a killed run's state stays: it may resume");
    }

    #[test]
    fn gc_of_a_dead_scratch_store_leaves_hard_linked_objects_read_only() {
        let (_d, s) = store();
        let a = s.commit_bytes(b"a").unwrap();
        // A killed `verify --recompute` left a scratch store whose objects are hard links to ours.
        let dead = s.root().join("tmp/verify.1.2");
        let inner = Store::open(dead.join("store")).unwrap();
        fs::create_dir_all(inner.object_path(&a).parent().unwrap()).unwrap();
        fs::hard_link(s.object_path(&a), inner.object_path(&a)).unwrap();
        fs::set_permissions(dead.join("store/objects"), fs::Permissions::from_mode(0o555)).unwrap();
        let rep = s.gc(&BTreeSet::from([a.clone()]), None, false).unwrap();
        assert_eq!(rep.removed_scratch, 1);
        assert!(!dead.exists());
        let mode = fs::metadata(s.object_path(&a)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o444, "the object stays read-only");
        assert!(s.check_object(&a).unwrap());
    }

    #[test]
    fn links_point_at_objects_and_refuse_paths() {
        let (_d, s) = store();
        let id = s.commit_bytes(b"x").unwrap();
        s.link("stage.a", "out", &id).unwrap();
        assert_eq!(fs::read(s.root().join("out/stage.a/out")).unwrap(), b"x");
        assert!(s.link("../evil", "out", &id).is_err());
        assert!(s.link("a", "../../x", &id).is_err());
    }

    #[test]
    fn long_hashes_tell_their_progress() {
        let (d, s) = store();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = s.with_hash_progress(HashProgress({
            let seen = seen.clone();
            std::sync::Arc::new(move |_: &Path, done, total| seen.lock().unwrap().push((done, total)))
        }));
        let p = d.path().join("big.bin");
        let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
        fs::write(&p, &data).unwrap();
        assert_eq!(s.hash_external(&p).unwrap(), hash_bytes(&data));
        let n = data.len() as u64;
        assert_eq!(*seen.lock().unwrap(), vec![(16 << 20, n), (n, n)]);
        // Remembered: not hashed again.
        s.hash_external(&p).unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn external_hashes_follow_file_changes() {
        let (d, s) = store();
        let p = d.path().join("data.txt");
        fs::write(&p, b"one").unwrap();
        assert_eq!(s.hash_external(&p).unwrap(), hash_bytes(b"one"));
        assert_eq!(s.hash_external(&p).unwrap(), hash_bytes(b"one"));
        fs::write(&p, b"two!").unwrap();
        assert_eq!(s.hash_external(&p).unwrap(), hash_bytes(b"two!"));
    }

    #[test]
    fn scratch_of_dead_runs_is_cleared() {
        let (_d, s) = store();
        let sc = s.scratch("abc").unwrap();
        let p = sc.path().to_path_buf();
        std::mem::forget(sc); // as if the process died
        assert!(p.exists());
        let _lock = s.lock_key("abc").unwrap();
        assert_eq!(s.clear_scratch("abc").unwrap(), 1);
        assert!(!p.exists());
    }
}
