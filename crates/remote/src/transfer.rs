//! Talking to one remote: existence checks, uploads, verified downloads,
//! run records, listing for gc.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kimcnn_store::{ObjectId, RunRecord, Store};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Loc;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use tokio::io::AsyncWriteExt;

use crate::{RemoteConfig, RemoteError, Result};

/// Objects up to this size go up in one request; larger ones in parts of it.
const PART: usize = 8 << 20;

/// An open remote.
#[derive(Debug)]
pub struct Remote {
    name: String,
    /// Where it is, for messages (never holds credentials).
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    jobs: usize,
    rt: tokio::runtime::Runtime,
}

/// What a push did.
#[derive(Debug, Default)]
pub struct PushReport {
    pub objects: usize,
    pub objects_sent: usize,
    pub bytes_sent: u64,
    pub records: usize,
    pub records_sent: usize,
    /// Keys whose record on the remote names other outputs than ours (the
    /// same stage computed with other bytes elsewhere): left as they are.
    pub conflicts: Vec<ObjectId>,
}

/// What a pull did: the records now in the local store, by key.
#[derive(Debug, Default)]
pub struct PullReport {
    pub records: BTreeMap<ObjectId, RunRecord>,
    pub records_fetched: usize,
    pub objects_fetched: usize,
    pub bytes_fetched: u64,
    /// Wanted keys with no record on the remote.
    pub missing: Vec<ObjectId>,
}

/// What [`Remote::check_published`] found.
#[derive(Debug, Default)]
pub struct Published {
    /// The keys with a run record on the remote.
    pub keys: Vec<ObjectId>,
    /// (key, object) for each object a published record names that the remote lacks.
    pub missing: Vec<(ObjectId, ObjectId)>,
}

/// What a gc of the remote found (and removed unless a dry run).
#[derive(Debug, Default)]
pub struct GcReport {
    pub kept_objects: usize,
    pub kept_records: usize,
    pub objects: Vec<(ObjectId, u64)>,
    pub records: Vec<ObjectId>,
    /// Files under the prefix that are not in kimcnn's layout: left alone.
    pub foreign: usize,
}

/// Progress of a transfer, for a display: total first, then increments.
pub trait Progress: Sync {
    fn start(&self, what: &str, objects: usize, bytes: u64);
    fn advance(&self, bytes: u64);
    fn finish(&self);
}

/// A [`Progress`] that shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: usize, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

fn plain_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.starts_with('.') && !s.contains(['/', '\\', '\0'])
}

impl Remote {
    /// Opens remote `name`; relative directory paths are taken from `base`.
    pub fn open(name: &str, cfg: &RemoteConfig, base: &Path) -> Result<Remote> {
        let bad = |m: String| RemoteError::Remote { remote: name.into(), message: m };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start the transfer runtime: {e}")))?;
        let (store, prefix): (Arc<dyn ObjectStore>, String) = if let Some(rest) = cfg.url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(format!("`{}` names no bucket (s3://bucket/prefix)", cfg.url)));
            }
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(RetryConfig {
                    backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0 },
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(30),
                })
                .with_client_options(
                    ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(600)),
                );
            if let Some(r) = &cfg.region {
                b = b.with_region(r);
            }
            if let Some(e) = &cfg.endpoint {
                b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
            }
            let s = b.build().map_err(|e| bad(describe(&e)))?;
            (Arc::new(s), prefix.trim_matches('/').to_string())
        } else if cfg.url.contains("://") && !cfg.url.starts_with("file://") {
            return Err(bad(format!("`{}`: remotes are s3://bucket/prefix or a directory", cfg.url)));
        } else {
            let dir = base.join(cfg.url.strip_prefix("file://").unwrap_or(&cfg.url));
            if !dir.is_dir() {
                return Err(bad(format!("directory {} does not exist (create it, or mount the share, first)", dir.display())));
            }
            let s = LocalFileSystem::new_with_prefix(&dir).map_err(|e| bad(describe(&e)))?;
            (Arc::new(s), String::new())
        };
        Ok(Remote { name: name.into(), url: cfg.url.clone(), store, prefix, jobs: cfg.jobs.unwrap_or(16).max(1), rt })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn loc(&self, rel: &str) -> Loc {
        if self.prefix.is_empty() {
            Loc::from(rel)
        } else {
            Loc::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn object_loc(&self, id: &ObjectId) -> Loc {
        let s = id.as_str();
        self.loc(&format!("objects/{}/{}", &s[..2], &s[2..]))
    }

    fn run_loc(&self, key: &ObjectId) -> Loc {
        self.loc(&format!("runs/{key}.json"))
    }

    fn err(&self, e: object_store::Error) -> RemoteError {
        RemoteError::Remote { remote: self.name.clone(), message: format!("{} ({})", describe(&e), self.url) }
    }

    /// A missing object, told apart from a missing bucket (which S3 also
    /// answers with 404).
    fn absent(&self, e: &object_store::Error) -> bool {
        matches!(e, object_store::Error::NotFound { .. }) && !chain(e).contains("NoSuchBucket")
    }

    /// One listing request under the prefix (with a delimiter: a few lines,
    /// never the whole bucket), so that a missing bucket, bad credentials or
    /// an unreachable server are reported as such before any transfer.
    async fn check(&self) -> Result<()> {
        let prefix = (!self.prefix.is_empty()).then(|| Loc::from(self.prefix.as_str()));
        match self.store.list_with_delimiter(prefix.as_ref()).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e, object_store::Error::NotFound { .. }) && self.prefix.is_empty() => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn exists(&self, loc: &Loc) -> Result<bool> {
        match self.store.head(loc).await {
            Ok(_) => Ok(true),
            Err(e) if self.absent(&e) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Which of `locs` exist, checked `jobs` at a time (one HEAD each: no listing).
    async fn existing(&self, locs: Vec<Loc>) -> Result<BTreeSet<Loc>> {
        let found: Vec<(Loc, bool)> = futures::stream::iter(locs)
            .map(|l| async move { self.exists(&l).await.map(|e| (l, e)) })
            .buffer_unordered(self.jobs)
            .try_collect()
            .await?;
        Ok(found.into_iter().filter(|(_, e)| *e).map(|(l, _)| l).collect())
    }

    /// Uploads a local object, hashing it as it is read: bytes that do not
    /// hash to `id` (a corrupt local object) are not published under its name.
    async fn upload(&self, store: &Store, id: &ObjectId, progress: &dyn Progress) -> Result<u64> {
        let (file, to) = (store.object_path(id), self.object_loc(id));
        let file = file.as_path();
        let to = &to;
        let io = |e: std::io::Error| RemoteError::Remote { remote: self.name.clone(), message: format!("{}: {e}", file.display()) };
        let check = |h: blake3::Hasher| {
            let got = ObjectId::parse(h.finalize().to_hex().as_str()).expect("BLAKE3 hex is an object id");
            if &got == id {
                Ok(())
            } else {
                Err(RemoteError::CorruptLocal { id: id.clone(), got })
            }
        };
        let len = tokio::fs::metadata(file).await.map_err(io)?.len();
        if len as usize <= PART {
            let bytes = tokio::fs::read(file).await.map_err(io)?;
            let mut h = blake3::Hasher::new();
            h.update(&bytes);
            check(h)?;
            self.store.put(to, PutPayload::from(bytes)).await.map_err(|e| self.err(e))?;
            progress.advance(len);
            return Ok(len);
        }
        let mut hasher = blake3::Hasher::new();
        let upload = self.store.put_multipart(to).await.map_err(|e| self.err(e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut f = tokio::fs::File::open(file).await.map_err(io)?;
        let mut buf = vec![0u8; PART];
        let result: Result<()> = async {
            loop {
                let n = tokio::io::AsyncReadExt::read(&mut f, &mut buf).await.map_err(io)?;
                if n == 0 {
                    return Ok(());
                }
                w.wait_for_capacity(4).await.map_err(|e| self.err(e))?;
                hasher.update(&buf[..n]);
                w.write(&buf[..n]);
                progress.advance(n as u64);
            }
        }
        .await;
        match result.and_then(|()| check(hasher)) {
            Ok(()) => {
                w.finish().await.map_err(|e| self.err(e))?;
                Ok(len)
            }
            Err(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        }
    }

    /// Downloads one object into the store, hashing as it arrives; keeps it
    /// only if the bytes hash to `id`.
    /// Uploads `ids`, `jobs` at a time, under one progress bar of `bytes` in all (0: unknown).
    async fn upload_all<'i>(&self, store: &Store, ids: &[&'i ObjectId], bytes: u64, progress: &dyn Progress) -> Tally<'i> {
        progress.start("push", ids.len(), bytes);
        let results = futures::stream::iter(ids.iter().copied())
            .map(|id| async move { (id, self.upload(store, id, progress).await) })
            .buffer_unordered(self.jobs)
            .collect()
            .await;
        progress.finish();
        tally(results)
    }

    /// Downloads `ids` (each verified), as [`Self::upload_all`] uploads.
    async fn download_all<'i>(&self, store: &Store, ids: &[&'i ObjectId], bytes: u64, progress: &dyn Progress) -> Tally<'i> {
        progress.start("pull", ids.len(), bytes);
        let results = futures::stream::iter(ids.iter().copied())
            .map(|id| async move { (id, self.download(store, id, progress).await) })
            .buffer_unordered(self.jobs)
            .collect()
            .await;
        progress.finish();
        tally(results)
    }

    async fn download(&self, store: &Store, id: &ObjectId, progress: &dyn Progress) -> Result<u64> {
        let scratch = store.scratch("pull")?;
        let tmp = scratch.path().join("object");
        let io = |e: std::io::Error| RemoteError::Remote { remote: self.name.clone(), message: format!("{}: {e}", tmp.display()) };
        let mut f = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut hasher = blake3::Hasher::new();
        let mut stream = self.store.get(&self.object_loc(id)).await.map_err(|e| self.err(e))?.into_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.err(e))?;
            hasher.update(&chunk);
            f.write_all(&chunk).await.map_err(io)?;
            n += chunk.len() as u64;
            progress.advance(chunk.len() as u64);
        }
        f.flush().await.map_err(io)?;
        drop(f);
        let got = ObjectId::parse(hasher.finalize().to_hex().as_str()).expect("BLAKE3 hex is an object id");
        if &got != id {
            return Err(RemoteError::Tampered { remote: self.name.clone(), id: id.clone(), got });
        }
        kimcnn_store::kill_point("pull:downloaded");
        store.commit_file(&tmp)?;
        Ok(n)
    }

    /// Uploads the objects of `records` the remote lacks, then publishes each
    /// record whose objects are all there. On a failed upload the records it
    /// does not affect are still published, and the error is returned.
    pub fn push(&self, store: &Store, records: &[RunRecord], progress: &dyn Progress) -> Result<PushReport> {
        self.rt.block_on(async {
            self.check().await?;
            let mut report = PushReport { records: records.len(), ..Default::default() };
            let objects: BTreeSet<&ObjectId> = records.iter().flat_map(|r| r.outputs.values()).collect();
            report.objects = objects.len();
            for id in &objects {
                if !store.has_object(id) {
                    return Err(RemoteError::Store(kimcnn_store::StoreError::Missing {
                        id: (*id).clone(),
                        root: store.root().to_path_buf(),
                    }));
                }
            }
            let there = self.existing(objects.iter().map(|id| self.object_loc(id)).collect()).await?;
            let missing: Vec<&ObjectId> = objects.iter().copied().filter(|id| !there.contains(&self.object_loc(id))).collect();
            let mut sizes = Vec::new();
            for id in &missing {
                let p = store.object_path(id);
                sizes.push(std::fs::metadata(&p).map(|m| m.len()).map_err(|e| RemoteError::Config(format!("{}: {e}", p.display())))?);
            }
            let (sent, bytes, failed, first_err) = self.upload_all(store, &missing, sizes.iter().sum(), progress).await;
            report.objects_sent = sent;
            report.bytes_sent = bytes;
            let published = self.existing(records.iter().map(|r| self.run_loc(&r.key)).collect()).await?;
            let lacking: BTreeSet<&ObjectId> = missing.iter().copied().collect();
            for r in records {
                if published.contains(&self.run_loc(&r.key)) {
                    // A record whose objects the remote lacked may name other bytes: read it
                    // (only then, so a push with nothing to send reads no records).
                    let lacked = r.outputs.values().any(|id| lacking.contains(id));
                    if lacked && self.fetch_record(&r.key).await?.is_some_and(|theirs| theirs.outputs != r.outputs) {
                        report.conflicts.push(r.key.clone());
                    }
                    continue;
                }
                if r.outputs.values().any(|id| failed.contains(id)) {
                    continue;
                }
                let bytes = serde_json::to_vec_pretty(r).expect("run records serialise");
                self.store.put(&self.run_loc(&r.key), PutPayload::from(bytes)).await.map_err(|e| self.err(e))?;
                report.records_sent += 1;
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(report),
            }
        })
    }

    /// Uploads the objects `ids` that the remote lacks (one HEAD each), without
    /// any record: the inputs of a job another machine runs. Returns how many
    /// were sent.
    pub fn push_objects(&self, store: &Store, ids: &[ObjectId], progress: &dyn Progress) -> Result<usize> {
        self.rt.block_on(async {
            self.check().await?;
            let there = self.existing(ids.iter().map(|id| self.object_loc(id)).collect()).await?;
            let missing: Vec<&ObjectId> = ids.iter().filter(|id| !there.contains(&self.object_loc(id))).collect();
            let (sent, _, _, first_err) = self.upload_all(store, &missing, 0, progress).await;
            first_err.map_or(Ok(sent), Err)
        })
    }

    /// Downloads the objects `ids` that the store lacks, each verified before
    /// it is kept: the inputs of a job run here for another machine. Returns
    /// how many were fetched.
    pub fn pull_objects(&self, store: &Store, ids: &[ObjectId], progress: &dyn Progress) -> Result<usize> {
        self.rt.block_on(async {
            let needed: Vec<&ObjectId> = ids.iter().filter(|id| !store.has_object(id)).collect();
            if needed.is_empty() {
                return Ok(0);
            }
            self.check().await?;
            let (fetched, _, _, first_err) = self.download_all(store, &needed, 0, progress).await;
            first_err.map_or(Ok(fetched), Err)
        })
    }

    /// Checks the published records of `keys`: each record that is on the
    /// remote must name only objects that are there too. Returns the keys
    /// with a record, and (key, object) for every object missing (one HEAD
    /// per object, no listing).
    pub fn check_published(&self, keys: &[ObjectId]) -> Result<Published> {
        self.rt.block_on(async {
            self.check().await?;
            let fetched: Vec<(ObjectId, Option<RunRecord>)> = futures::stream::iter(keys.iter().cloned())
                .map(|k| async move { self.fetch_record(&k).await.map(|r| (k, r)) })
                .buffer_unordered(self.jobs)
                .try_collect()
                .await?;
            let records: Vec<RunRecord> = fetched.into_iter().filter_map(|(_, r)| r).collect();
            let objects: BTreeSet<&ObjectId> = records.iter().flat_map(|r| r.outputs.values()).collect();
            let there = self.existing(objects.iter().map(|id| self.object_loc(id)).collect()).await?;
            let mut missing = Vec::new();
            for r in &records {
                for id in r.outputs.values() {
                    if !there.contains(&self.object_loc(id)) {
                        missing.push((r.key.clone(), id.clone()));
                    }
                }
            }
            Ok(Published { keys: records.into_iter().map(|r| r.key).collect(), missing })
        })
    }

    /// The run record for `key` on the remote, validated: it must parse, name
    /// `key`, and use plain names only (no path can leave the store).
    async fn fetch_record(&self, key: &ObjectId) -> Result<Option<RunRecord>> {
        let bytes = match self.store.get(&self.run_loc(key)).await {
            Ok(g) => g.bytes().await.map_err(|e| self.err(e))?,
            Err(e) if self.absent(&e) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let bad = |m: String| RemoteError::BadRecord { remote: self.name.clone(), key: key.clone(), message: m };
        let rec: RunRecord = serde_json::from_slice(&bytes).map_err(|e| bad(format!("unreadable: {e}")))?;
        if &rec.key != key {
            return Err(bad(format!("it names key {}", rec.key)));
        }
        // A study's trial is `<study>/<trial>`.
        if !rec.stage.split('/').all(plain_name) || rec.stage.matches('/').count() > 1 {
            return Err(bad(format!("stage name `{}` is not a plain name or `<stage>/<trial>` (path traversal)", rec.stage)));
        }
        if let Some(o) = rec.outputs.keys().chain(rec.inputs.keys()).find(|o| !plain_name(o)) {
            return Err(bad(format!("name `{o}` is not a plain name (path traversal)")));
        }
        Ok(Some(rec))
    }

    /// Brings the run records `keys` and their objects into the local store
    /// (those it lacks). Every object is verified before it is kept; a record
    /// is written only once all of its objects are in. Keys the remote lacks
    /// are listed in the report; a corrupt object fails the pull after the
    /// records it does not affect are in.
    pub fn pull(&self, store: &Store, keys: &[ObjectId], progress: &dyn Progress) -> Result<PullReport> {
        self.rt.block_on(async {
            let mut report = PullReport::default();
            let mut fetch = Vec::new();
            for key in keys {
                match store.read_run(key)? {
                    Some(rec) if rec.outputs.values().all(|id| store.has_object(id)) => {
                        report.records.insert(key.clone(), rec);
                    }
                    _ => fetch.push(key.clone()),
                }
            }
            if fetch.is_empty() {
                return Ok(report);
            }
            self.check().await?;
            let fetched: Vec<(ObjectId, Option<RunRecord>)> = futures::stream::iter(fetch)
                .map(|k| async move { self.fetch_record(&k).await.map(|r| (k, r)) })
                .buffer_unordered(self.jobs)
                .try_collect()
                .await?;
            let mut records = Vec::new();
            for (k, r) in fetched {
                match r {
                    Some(r) => records.push(r),
                    None => report.missing.push(k),
                }
            }
            report.missing.sort();
            let needed: BTreeSet<&ObjectId> = records.iter().flat_map(|r| r.outputs.values()).filter(|id| !store.has_object(id)).collect();
            let sizes: Vec<u64> = futures::stream::iter(needed.iter())
                .map(|id| async move { self.store.head(&self.object_loc(id)).await.map(|m| m.size).unwrap_or(0) })
                .buffer_unordered(self.jobs)
                .collect()
                .await;
            let needed: Vec<&ObjectId> = needed.into_iter().collect();
            let (fetched, bytes, _, first_err) = self.download_all(store, &needed, sizes.iter().sum(), progress).await;
            report.objects_fetched = fetched;
            report.bytes_fetched = bytes;
            for r in records {
                if r.outputs.values().all(|id| store.has_object(id)) {
                    store.write_run(&r)?;
                    report.records_fetched += 1;
                    report.records.insert(r.key.clone(), r);
                }
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(report),
            }
        })
    }

    /// Lists the remote's records and objects and removes those not in
    /// `keep_keys` / `keep_objects` (records first, so no record ever names a
    /// removed object). Files outside kimcnn's layout are left alone.
    pub fn gc(&self, keep_keys: &BTreeSet<ObjectId>, keep_objects: &BTreeSet<ObjectId>, dry_run: bool) -> Result<GcReport> {
        self.rt.block_on(async {
            let mut report = GcReport::default();
            let runs: Vec<_> = self.list(&self.loc("runs")).await?;
            let mut drop_records = Vec::new();
            for (loc, _) in runs {
                let key = loc.filename().and_then(|n| n.strip_suffix(".json")).and_then(ObjectId::parse);
                match key {
                    Some(k) if keep_keys.contains(&k) => report.kept_records += 1,
                    Some(k) => drop_records.push((loc, k)),
                    None => report.foreign += 1,
                }
            }
            let objects = self.list(&self.loc("objects")).await?;
            let mut drop_objects = Vec::new();
            for (loc, size) in objects {
                let parts: Vec<String> = loc.parts().map(|p| p.as_ref().to_string()).collect();
                let id = match parts.as_slice() {
                    [.., shard, rest] if shard.len() == 2 => ObjectId::parse(&format!("{shard}{rest}")),
                    _ => None,
                };
                match id {
                    Some(id) if keep_objects.contains(&id) => report.kept_objects += 1,
                    Some(id) => drop_objects.push((loc, id, size)),
                    None => report.foreign += 1,
                }
            }
            if !dry_run {
                for (loc, _) in &drop_records {
                    self.delete(loc).await?;
                }
                for (loc, _, _) in &drop_objects {
                    self.delete(loc).await?;
                }
            }
            report.records = drop_records.into_iter().map(|(_, k)| k).collect();
            report.objects = drop_objects.into_iter().map(|(_, id, s)| (id, s)).collect();
            Ok(report)
        })
    }

    async fn list(&self, prefix: &Loc) -> Result<Vec<(Loc, u64)>> {
        let mut out = Vec::new();
        let mut s = self.store.list(Some(prefix));
        while let Some(m) = s.next().await {
            match m {
                Ok(m) => out.push((m.location, m.size)),
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(out)
    }

    async fn delete(&self, loc: &Loc) -> Result<()> {
        match self.store.delete(loc).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The path of an object in a directory remote (for tests and tools).
    pub fn object_rel_path(id: &ObjectId) -> PathBuf {
        let s = id.as_str();
        PathBuf::from("objects").join(&s[..2]).join(&s[2..])
    }
}

/// Sums the finished transfers of a batch: (count, bytes, the objects that
/// failed, the first error).
/// Objects transferred, their bytes, the ids that failed, and the first error.
type Tally<'i> = (usize, u64, BTreeSet<&'i ObjectId>, Option<RemoteError>);

fn tally(results: Vec<(&ObjectId, Result<u64>)>) -> Tally<'_> {
    let (mut n, mut bytes, mut failed, mut first_err) = (0, 0, BTreeSet::new(), None);
    for (id, r) in results {
        match r {
            Ok(b) => {
                n += 1;
                bytes += b;
            }
            Err(e) => {
                failed.insert(id);
                first_err.get_or_insert(e);
            }
        }
    }
    (n, bytes, failed, first_err)
}

/// One readable line for an object_store error, with a hint where the cause
/// is clear. The messages name the bucket and key, never a credential.
fn describe(e: &object_store::Error) -> String {
    let chain = chain(e);
    let has = |w: &str| chain.contains(w);
    let hint = if matches!(e, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. })
        || has("InvalidAccessKeyId")
        || has("SignatureDoesNotMatch")
        || has("AccessDenied")
    {
        "access denied: check the credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the bucket's policy"
    } else if has("NoSuchBucket") {
        "the bucket does not exist: create it, or fix the remote's url"
    } else if has("Connection refused") || has("error sending request") || has("dns error") || has("timed out") {
        "cannot reach the remote: check the endpoint and the network"
    } else if has("Permission denied") || has("Read-only file system") {
        "the remote is not writable"
    } else if has("No space left") || has("QuotaExceeded") || has("EntityTooLarge") {
        "the remote is full"
    } else {
        ""
    };
    let mut short: String = chain.chars().take(300).collect();
    if short.len() < chain.len() {
        short.push('…');
    }
    if hint.is_empty() {
        short
    } else {
        format!("{hint} [{short}]")
    }
}

/// An error and its sources, on one line.
fn chain(e: &object_store::Error) -> String {
    let mut chain = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !chain.contains(&t) {
            chain.push_str(": ");
            chain.push_str(&t);
        }
        src = s.source();
    }
    chain.replace('\n', " ")
}

#[cfg(test)]
mod tests;
