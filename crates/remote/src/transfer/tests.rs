//! Push, pull and gc against a directory remote (the S3 remote is driven by
//! the end-to-end tests against a real S3 server).

use std::collections::BTreeSet;

use kimcnn_store::{ObjectId, RunRecord, Store};

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    a: Store,
    b: Store,
    remote_dir: PathBuf,
    remote: Remote,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let b = Store::open(dir.path().join("b")).unwrap();
    let remote_dir = dir.path().join("remote");
    std::fs::create_dir(&remote_dir).unwrap();
    let cfg = RemoteConfig { url: "remote".into(), endpoint: None, region: None, jobs: Some(4) };
    let remote = Remote::open("team", &cfg, dir.path()).unwrap();
    Fixture { _dir: dir, a, b, remote_dir, remote }
}

/// A record with `n` outputs, one of them bigger than a multipart part.
fn record(store: &Store, name: &str, n: usize, big: bool) -> RunRecord {
    let mut outputs = std::collections::BTreeMap::new();
    for i in 0..n {
        let bytes = if big && i == 0 { vec![i as u8 + 7; PART * 2 + 123] } else { format!("{name} output {i}").into_bytes() };
        outputs.insert(format!("out{i}"), store.commit_bytes(&bytes).unwrap());
    }
    let rec = RunRecord {
        key: kimcnn_store::hash_bytes(name.as_bytes()),
        kind: "exec".into(),
        kind_version: 1,
        stage: name.into(),
        params: serde_json::json!({}),
        inputs: Default::default(),
        outputs,
        finished: 0,
        seconds: 0.0,
        device: None,
        ran_with: Default::default(),
        peak_rss_bytes: None,
    };
    store.write_run(&rec).unwrap();
    rec
}

#[test]
fn push_then_pull_round_trip_and_second_push_sends_nothing() {
    let f = fixture();
    let recs = vec![record(&f.a, "s1", 3, true), record(&f.a, "s2", 2, false)];
    let r = f.remote.push(&f.a, &recs, &Quiet).unwrap();
    assert_eq!((r.objects, r.objects_sent, r.records_sent), (5, 5, 2));
    assert!(r.bytes_sent > 2 * PART as u64);
    let r = f.remote.push(&f.a, &recs, &Quiet).unwrap();
    assert_eq!((r.objects_sent, r.records_sent), (0, 0), "only what the other side lacks");

    let keys: Vec<ObjectId> = recs.iter().map(|r| r.key.clone()).collect();
    let p = f.remote.pull(&f.b, &keys, &Quiet).unwrap();
    assert_eq!((p.records_fetched, p.objects_fetched, p.missing.len()), (2, 5, 0));
    for rec in &recs {
        assert_eq!(f.b.read_run(&rec.key).unwrap().as_ref(), Some(rec));
        for id in rec.outputs.values() {
            assert_eq!(std::fs::read(f.b.object_path(id)).unwrap(), std::fs::read(f.a.object_path(id)).unwrap());
        }
    }
    let p = f.remote.pull(&f.b, &keys, &Quiet).unwrap();
    assert_eq!((p.records_fetched, p.objects_fetched, p.records.len()), (0, 0, 2));
    let p = f.remote.pull(&f.b, &[kimcnn_store::hash_bytes(b"nope")], &Quiet).unwrap();
    assert_eq!(p.missing.len(), 1);
}

#[test]
fn a_tampered_object_is_refused_and_not_kept() {
    let f = fixture();
    let recs = vec![record(&f.a, "s1", 2, false), record(&f.a, "s2", 1, false)];
    f.remote.push(&f.a, &recs, &Quiet).unwrap();
    let bad = recs[0].outputs["out1"].clone();
    let p = f.remote_dir.join(Remote::object_rel_path(&bad));
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    let keys: Vec<ObjectId> = recs.iter().map(|r| r.key.clone()).collect();
    let e = f.remote.pull(&f.b, &keys, &Quiet).unwrap_err().to_string();
    assert!(e.starts_with(&format!("remote `team`: object {bad} hashes to ")) && e.contains("tampered"), "{e}");
    assert!(!f.b.has_object(&bad));
    assert!(f.b.read_run(&recs[0].key).unwrap().is_none(), "no record for the refused object");
    assert!(f.b.read_run(&recs[1].key).unwrap().is_some(), "the unaffected record is in");
    assert_eq!(std::fs::read_dir(f.b.root().join("tmp")).unwrap().count(), 0, "no scratch left");
}

#[test]
fn run_records_with_paths_are_refused() {
    let f = fixture();
    let rec = record(&f.a, "s1", 1, false);
    f.remote.push(&f.a, std::slice::from_ref(&rec), &Quiet).unwrap();
    let path = f.remote_dir.join(format!("runs/{}.json", rec.key));
    for (from, to) in [
        ("\"stage\": \"s1\"", "\"stage\": \"../../etc\""),
        ("\"stage\": \"s1\"", "\"stage\": \"study/../x\""),
        ("\"stage\": \"s1\"", "\"stage\": \"a/b/c\""),
        ("\"out0\"", "\"../x\""),
    ] {
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(from, to)).unwrap();
        let e = f.remote.pull(&f.b, std::slice::from_ref(&rec.key), &Quiet).unwrap_err().to_string();
        assert!(e.contains("path traversal") && e.contains("refused"), "{e}");
        std::fs::write(&path, text).unwrap();
    }
    // A study's trial, `<study>/<trial>`, is a name.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"stage\": \"s1\"", "\"stage\": \"study/trial-0\"")).unwrap();
    f.remote.pull(&f.b, std::slice::from_ref(&rec.key), &Quiet).unwrap();
    std::fs::remove_file(f.b.root().join(format!("runs/{}.json", rec.key))).unwrap();
    std::fs::write(&path, text.replace(rec.key.as_str(), kimcnn_store::hash_bytes(b"x").as_str())).unwrap();
    let e = f.remote.pull(&f.b, std::slice::from_ref(&rec.key), &Quiet).unwrap_err().to_string();
    assert!(e.contains("it names key"), "{e}");
    assert!(f.b.read_run(&rec.key).unwrap().is_none());
}

#[test]
fn a_failed_upload_publishes_no_record_that_needs_it() {
    let f = fixture();
    let recs = vec![record(&f.a, "s1", 2, false), record(&f.a, "s2", 1, false)];
    // Make one object's upload fail (a directory where its file goes; works as root too).
    let blocked = recs[0].outputs["out1"].clone();
    let shard = f.remote_dir.join(Remote::object_rel_path(&blocked));
    std::fs::create_dir_all(shard.join("in-the-way")).unwrap();
    let e = f.remote.push(&f.a, &recs, &Quiet).unwrap_err().to_string();
    assert!(e.starts_with("remote `team`: "), "{e}");
    assert!(!f.remote_dir.join(format!("runs/{}.json", recs[0].key)).exists(), "record of the half-pushed stage not published");
    assert!(f.remote_dir.join(format!("runs/{}.json", recs[1].key)).exists());
    std::fs::remove_dir_all(&shard).unwrap();
    let r = f.remote.push(&f.a, &recs, &Quiet).unwrap();
    assert_eq!((r.objects_sent, r.records_sent), (1, 1), "a second push completes it");
}

#[test]
fn gc_removes_what_no_lock_needs_and_leaves_foreign_files() {
    let f = fixture();
    let recs = vec![record(&f.a, "s1", 2, false), record(&f.a, "s2", 1, false)];
    f.remote.push(&f.a, &recs, &Quiet).unwrap();
    std::fs::write(f.remote_dir.join("objects/README"), b"not ours").unwrap();
    std::fs::write(f.remote_dir.join("runs/notes.txt"), b"not ours").unwrap();
    let keep_keys: BTreeSet<ObjectId> = [recs[0].key.clone()].into();
    let keep_objects: BTreeSet<ObjectId> = recs[0].outputs.values().cloned().collect();
    let r = f.remote.gc(&keep_keys, &keep_objects, true).unwrap();
    assert_eq!((r.records.len(), r.objects.len(), r.kept_objects, r.foreign), (1, 1, 2, 2));
    assert!(f.remote_dir.join(format!("runs/{}.json", recs[1].key)).exists(), "dry run removes nothing");
    let r = f.remote.gc(&keep_keys, &keep_objects, false).unwrap();
    assert_eq!(r.records, vec![recs[1].key.clone()]);
    assert!(!f.remote_dir.join(format!("runs/{}.json", recs[1].key)).exists());
    assert!(f.remote_dir.join("objects/README").exists() && f.remote_dir.join("runs/notes.txt").exists());
    let p = f.remote.pull(&f.b, std::slice::from_ref(&recs[0].key), &Quiet).unwrap();
    assert_eq!(p.records_fetched, 1, "what a lock needs is still there");
}

#[test]
fn a_missing_directory_remote_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RemoteConfig { url: "nope".into(), endpoint: None, region: None, jobs: None };
    let e = Remote::open("team", &cfg, dir.path()).unwrap_err().to_string();
    assert!(e.starts_with("remote `team`: directory ") && e.contains("does not exist"), "{e}");
    let cfg = RemoteConfig { url: "gs://x".into(), endpoint: None, region: None, jobs: None };
    assert!(Remote::open("team", &cfg, dir.path()).unwrap_err().to_string().contains("remotes are s3://"));
}
