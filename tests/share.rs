//! Sharing artifacts between teammates through the binary: two clones with
//! separate stores and one S3 remote (a real S3 server, s3s-fs, on
//! loopback), `run --pull`, a tampered remote object, a directory remote,
//! gc on a remote, and every bad remote the issue lists.
mod common;

use std::path::Path;

use common::{Project, S3Server, S3_KEY, S3_SECRET};

/// MR from the mirror through tokenize, vocab, embed, a small training run and its evaluation.
const PIPE: &str = r#"
params:
  kim: https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data
stages:
  mr:
    uses: source
    matrix: { file: [rt-polarity.pos, rt-polarity.neg] }
    with: { url: '${kim}/${file}' }
  vectors: { uses: source, with: { path: vectors.txt } }
  tokenize: { uses: tokenize, inputs: { pos: mr.rt-polarity.pos.data, neg: mr.rt-polarity.neg.data }, with: { format: lines, order: [pos, neg], folds: 10, seed: 1 } }
  vocab: { uses: vocab, inputs: { tokens: tokenize.tokens } }
  embed: { uses: embed, inputs: { vocab: vocab.vocab, vectors: vectors.data }, with: { seed: 1 } }
  train:
    uses: train
    inputs: { tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary }
    with: { dataset: mr, variant: static, epochs: 1, maps: 4, pad: bucket, seed: 1, fold: 0 }
  evaluate: { uses: evaluate, inputs: { model: train.model, tokens: tokenize.tokens, vocab: vocab.vocab } }
"#;

const VECTORS: &str = "4 3\nthe 0.1 0.2 0.3\nfilm -0.5 0.5 0.0\nmovie 0.3 -0.1 0.2\ngood 1 1 1\n";

fn clone_of(pipeline: &str, remote_yaml: &str) -> Project {
    let p = Project::new(pipeline);
    p.write("vectors.txt", VECTORS);
    std::fs::create_dir(p.path().join(".kimcnn")).unwrap();
    p.write(".kimcnn/config", remote_yaml);
    p
}

fn s3_config(s3: &S3Server, bucket: &str) -> String {
    format!("remotes:\n  team: {{url: 's3://{bucket}/kimcnn', endpoint: '{}', region: us-east-1}}\n", s3.endpoint)
}

/// A command with the test server's credentials (and nothing else of AWS's from the outside).
fn with_creds(p: &Project, args: &[&str], secret: &str) -> common::Ran {
    let mut c = p.cmd(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ACCESS_KEY_ID", S3_KEY).env("AWS_SECRET_ACCESS_KEY", secret);
    p.run_cmd(c)
}

fn s3(p: &Project, args: &[&str]) -> common::Ran {
    with_creds(p, args, S3_SECRET)
}

/// Every file under artifacts/out, resolved, with its bytes.
fn outputs(p: &Project) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let root = p.path().join("artifacts/out");
    for stage in std::fs::read_dir(&root).unwrap().flatten() {
        for f in std::fs::read_dir(stage.path()).unwrap().flatten() {
            let rel = f.path().strip_prefix(&root).unwrap().display().to_string();
            out.push((rel, std::fs::read(f.path()).unwrap()));
        }
    }
    out.sort();
    out
}

fn remote_object(root: &Path, id: &str) -> std::path::PathBuf {
    root.join("team/kimcnn/objects").join(&id[..2]).join(&id[2..])
}

#[test]
fn two_clones_share_one_s3_remote() {
    let server = S3Server::start(&["team"]);
    let cfg = s3_config(&server, "team");

    // Clone A computes everything and pushes.
    let a = clone_of(PIPE, &cfg);
    let r = a.run(&["run"]).ok();
    assert_eq!(r.ran().len(), 8, "{}", r.stdout);
    let r = s3(&a, &["push"]).ok();
    assert!(r.stdout.starts_with("pushed ") && r.stdout.contains("and 8 run records to `team`"), "{}", r.stdout);
    let r = s3(&a, &["push"]).ok();
    assert!(r.stdout.starts_with("pushed 0 objects (0.0 MB) and 0 run records"), "a second push sends nothing: {}", r.stdout);

    // Clone B: same pipeline and lock, its own store; pulls, then nothing is stale and nothing runs.
    let b = clone_of(PIPE, &cfg);
    b.write("pipeline.lock", &a.read("pipeline.lock"));
    let r = b.run(&["status"]).ok();
    assert!(r.stdout.contains("8 stale"), "{}", r.stdout);
    let r = s3(&b, &["pull"]).ok();
    assert!(r.stdout.contains("8 run records from `team`; 8 of 8 stages are here"), "{}", r.stdout);
    let r = b.run(&["status"]).ok();
    assert!(r.stdout.contains("8 stages: 8 up to date, 0 restorable from the store, 0 stale"), "{}", r.stdout);
    let r = b.run(&["run"]).ok();
    assert!(r.ran().is_empty() && r.stdout.contains("0 ran, 8 cached"), "{}", r.stdout);
    assert_eq!(outputs(&a), outputs(&b), "B's outputs are byte-identical to A's");
    assert_eq!(a.read("pipeline.lock"), b.read("pipeline.lock"));
    let r = b.run(&["predict", "--model", "train", "a good film"]).ok();
    assert!(r.stdout.starts_with("pos\t") || r.stdout.starts_with("neg\t"), "the pulled model works: {}", r.stdout);

    // Clone C has no lock: `run --pull` restores each stage instead of computing it.
    let c = clone_of(PIPE, &cfg);
    let r = s3(&c, &["run", "--pull"]).ok();
    assert!(r.ran().is_empty() && r.stdout.contains("0 ran, 0 cached, 8 pulled"), "{}", r.stdout);
    assert_eq!(outputs(&a), outputs(&c));

    // A flipped byte in one remote object: D's pull refuses it and says which; nothing of it is kept.
    let lock = a.read("pipeline.lock");
    let model = lock[lock.find("  train:").unwrap()..].split("model: ").nth(1).unwrap()[..64].to_string();
    let path = remote_object(server.root.path(), &model);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let d = clone_of(PIPE, &cfg);
    d.write("pipeline.lock", &lock);
    let r = s3(&d, &["pull"]);
    assert_eq!(r.code, 1, "{} {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("remote `team`: object {model} hashes to ")) && r.stderr.contains("tampered"), "{}", r.stderr);
    assert!(!d.path().join("artifacts/objects").join(&model[..2]).join(&model[2..]).exists(), "the bad object is not kept");
    let r = d.run(&["status"]).ok();
    assert!(r.stdout.contains("stale       train") && r.stdout.contains("up to date"), "the rest came in: {}", r.stdout);
}

#[test]
fn directory_remote_push_pull_and_gc() {
    let shared = tempfile::tempdir().unwrap();
    let cfg = format!("remotes:\n  nfs: {{url: '{}'}}\n", shared.path().display());
    let a = Project::new(common::CHAIN);
    std::fs::create_dir(a.path().join(".kimcnn")).unwrap();
    a.write(".kimcnn/config", &cfg);
    a.run(&["run"]).ok();
    let r = a.run(&["push", "one", "two"]).ok();
    assert!(r.stdout.starts_with("pushed 2 objects") && r.stdout.contains("2 run records to `nfs`"), "{}", r.stdout);
    a.run(&["push"]).ok();
    let old_lock = a.read("pipeline.lock");

    // Change a param: `one`, `two`, `three` get new keys; push those too.
    a.write("pipeline.yaml", &common::CHAIN.replace("greeting: hello", "greeting: bye"));
    a.run(&["run"]).ok();
    a.run(&["push"]).ok();
    std::fs::write(shared.path().join("objects/NOTES.txt"), "a teammate's note").unwrap();

    // gc keeping only the new lock: the old runs of one/two/three and their 3 objects (two.out = three.out)
    // go; `side` (in both locks) and foreign files stay.
    let r = a.run(&["gc", "--remote", "nfs", "--dry-run"]).ok();
    assert!(r.stdout.contains("would remove 3 run records and 3 objects") && r.stdout.contains("left 1 files outside"), "{}", r.stdout);
    a.write("old.lock", &old_lock);
    let r = a.run(&["gc", "--remote", "nfs", "--dry-run", "--lock", "old.lock", "--lock", "pipeline.lock"]).ok();
    assert!(r.stdout.contains("would remove 0 run records and 0 objects"), "both locks keep everything: {}", r.stdout);
    git(a.path(), &["init", "-q"]);
    git(a.path(), &["add", "pipeline.yaml", "pipeline.lock"]);
    git(a.path(), &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "new"]);
    let r = a.run(&["gc", "--remote", "nfs", "--ref", "HEAD"]).ok();
    assert!(r.stdout.contains("removed 3 run records and 3 objects"), "{}", r.stdout);
    assert!(shared.path().join("objects/NOTES.txt").exists());
    let r = a.run(&["gc", "--remote", "nfs", "--ref", "no-such-ref"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("git ref `no-such-ref`"), "{}", r.stderr);

    // A second clone pulls what the current lock needs.
    let b = Project::new(&common::CHAIN.replace("greeting: hello", "greeting: bye"));
    std::fs::create_dir(b.path().join(".kimcnn")).unwrap();
    b.write(".kimcnn/config", &cfg);
    b.write("pipeline.lock", &a.read("pipeline.lock"));
    b.run(&["pull"]).ok();
    assert_eq!(b.read("artifacts/out/three/out"), "BYE");
    assert!(b.run(&["run"]).ok().ran().is_empty());
}

fn git(dir: &Path, args: &[&str]) {
    let ok = std::process::Command::new("git").args(args).current_dir(dir).status().unwrap().success();
    assert!(ok, "git {args:?}");
}

#[test]
fn bad_remotes_fail_with_one_clear_line_and_leave_the_store_alone() {
    let server = S3Server::start(&["team"]);
    let a = clone_of(common::CHAIN, &s3_config(&server, "team"));
    a.run(&["run"]).ok();
    let before = a.snapshot();
    let check = |r: common::Ran, code: i32, needle: &str| {
        assert_eq!(r.code, code, "{needle}: {} {}", r.stdout, r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.starts_with("error: ") && r.stderr.contains(needle), "{needle}: {}", r.stderr);
        assert!(
            !r.stderr.contains(S3_SECRET) && !r.stdout.contains(S3_SECRET) && !r.stderr.contains("wrong-secret"),
            "no secret in output"
        );
    };

    check(with_creds(&a, &["push"], "wrong-secret"), 1, "access denied: check the credentials");
    let missing = clone_of(common::CHAIN, &s3_config(&server, "nobucket"));
    missing.run(&["run"]).ok();
    check(s3(&missing, &["push"]), 1, "the bucket does not exist");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = clone_of(common::CHAIN, &format!("remotes:\n  team: {{url: 's3://team/x', endpoint: 'http://127.0.0.1:{closed}'}}\n"));
    down.run(&["run"]).ok();
    check(s3(&down, &["push"]), 1, "cannot reach the remote");
    let down_fresh = clone_of(common::CHAIN, &format!("remotes:\n  team: {{url: 's3://team/x', endpoint: 'http://127.0.0.1:{closed}'}}\n"));
    check(s3(&down_fresh, &["run", "--pull", "one"]), 1, "cannot reach the remote");
    assert_eq!(a.snapshot(), before, "failed pushes change nothing locally");

    // Pulling what nobody pushed; a stage name that is not in the lock; nothing in the lock yet.
    let b = clone_of(common::CHAIN, &s3_config(&server, "team"));
    b.write("pipeline.lock", &a.read("pipeline.lock"));
    check(s3(&b, &["pull"]), 1, "4 stages are not on `team`: one, side, three, two");
    check(s3(&b, &["pull", "nosuch"]), 2, "no stage in pipeline.lock matches `nosuch`");
    let fresh = clone_of(common::CHAIN, &s3_config(&server, "team"));
    check(s3(&fresh, &["pull"]), 2, "pipeline.lock names no stages yet");

    // Config: credentials in a file, an unknown remote, a missing directory, no remote at all.
    a.write(".kimcnn/config", "remotes:\n  team: {url: 's3://team/x', aws_secret_access_key: hunter2}\n");
    check(a.run(&["push"]), 2, "looks like a credential; credentials come from the environment only");
    a.write(".kimcnn/config", "remotes:\n  team: {url: /no/such/dir}\n");
    check(a.run(&["push"]), 1, "directory /no/such/dir does not exist");
    check(a.run(&["push", "--remote", "other"]), 2, "no remote named `other` (declared: team)");
    a.write(".kimcnn/config", "remote:\n  team: {url: /tmp}\n");
    check(a.run(&["push"]), 2, "unknown key `remote`");
    std::fs::remove_file(a.path().join(".kimcnn/config")).unwrap();
    check(a.run(&["push"]), 2, "no remote declared");
    assert_eq!(a.snapshot(), before);

    // A remote holding another project's files (and a foreign run record) is used safely.
    std::fs::create_dir_all(server.root.path().join("team/kimcnn/runs")).unwrap();
    std::fs::write(server.root.path().join("team/kimcnn/runs/other-project.json"), "{}").unwrap();
    std::fs::create_dir_all(server.root.path().join("team/kimcnn/objects/zz")).unwrap();
    std::fs::write(server.root.path().join("team/kimcnn/objects/zz/not-a-hash"), "x").unwrap();
    a.write(".kimcnn/config", &s3_config(&server, "team"));
    s3(&a, &["push"]).ok();
    let r = s3(&a, &["gc", "--remote", "team", "--dry-run"]).ok();
    assert!(r.stdout.contains("would remove 0 run records and 0 objects") && r.stdout.contains("left 2 files outside"), "{}", r.stdout);
    s3(&b, &["pull"]).ok();
    assert_eq!(b.read("artifacts/out/three/out"), "HELLO");
}

/// A TCP proxy to `upstream` that passes `budget` bytes from its clients
/// and then stops reading: a push through it hangs mid-upload, whatever the
/// machine's speed. Returns its port and the bytes of budget left.
fn stalling_proxy(upstream: &str, budget: usize) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let left = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(budget));
    let l2 = left.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (left, upstream) = (l2.clone(), upstream.clone());
            std::thread::spawn(move || {
                let Ok(mut up) = std::net::TcpStream::connect(&upstream) else { return };
                let (mut c_out, mut up_in) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut up_in, &mut c_out));
                let mut client = client;
                let mut buf = [0u8; 16 << 10];
                loop {
                    if left.load(Ordering::SeqCst) == 0 {
                        std::thread::park(); // stall: read nothing more, forever
                        continue;
                    }
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    // Take at most what is left, atomically across connections.
                    let before = left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| Some(l.saturating_sub(n))).unwrap();
                    let pass = n.min(before);
                    if up.write_all(&buf[..pass]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, left)
}

#[test]
fn a_push_killed_midway_publishes_no_half_result_and_the_next_push_finishes_it() {
    use std::os::unix::process::ExitStatusExt;
    let server = S3Server::start(&["team"]);
    let pipe = r#"
stages:
  big:
    uses: exec
    matrix: { n: [1, 2, 3] }
    outputs: [data, tag]
    with: { cmd: 'head -c 30000000 /dev/urandom > "$OUT_data"; echo ${n} > "$OUT_tag"' }
"#;
    let a = clone_of(pipe, &s3_config(&server, "team"));
    a.run(&["run"]).ok();
    // Through a proxy that stalls after 40 MB of the 90 MB: the push is still running when it is killed.
    let (port, left) = stalling_proxy(&server.endpoint, 40_000_000);
    a.write(
        ".kimcnn/config",
        &format!("remotes:\n  team: {{url: 's3://team/kimcnn', endpoint: 'http://127.0.0.1:{port}', region: us-east-1}}\n"),
    );
    let mut c = a.cmd(&["push"]);
    c.env("AWS_ACCESS_KEY_ID", S3_KEY).env("AWS_SECRET_ACCESS_KEY", S3_SECRET);
    let mut child = c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let t0 = std::time::Instant::now();
    while left.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        assert!(child.try_wait().unwrap().is_none(), "the push ended before it sent 40 MB");
        assert!(t0.elapsed().as_secs() < 60, "the push sent under 40 MB in 60 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "the push is stalled mid-upload, not finished");
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9), "killed");
    // Interrupted: no run record published, and not every object there.
    let runs = server.root.path().join("team/kimcnn/runs");
    let published = std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(published, 0, "no record before all of its objects are up");
    let lock = a.read("pipeline.lock");
    let ids: Vec<String> = lock.lines().filter_map(|l| l.trim().strip_prefix("data: ")).map(String::from).collect();
    assert_eq!(ids.len(), 3, "{lock}");
    let complete = |id: &str| std::fs::read(remote_object(server.root.path(), id)).is_ok_and(|b| blake3::hash(&b).to_hex().as_str() == id);
    assert!(ids.iter().any(|id| !complete(id)), "some 30 MB object never made it");
    // The next push (straight to the server) finishes it; a fresh clone pulls everything.
    a.write(".kimcnn/config", &s3_config(&server, "team"));
    let r = s3(&a, &["push"]).ok();
    assert!(r.stdout.contains("and 3 run records to `team`") && !r.stdout.starts_with("pushed 0 objects"), "{}", r.stdout);
    assert!(ids.iter().all(|id| complete(id)));
    let b = clone_of(pipe, &s3_config(&server, "team"));
    b.write("pipeline.lock", &a.read("pipeline.lock"));
    s3(&b, &["pull"]).ok();
    assert_eq!(outputs(&a), outputs(&b));
}

#[test]
fn push_refuses_a_corrupt_local_object_and_verify_remote_finds_a_missing_one() {
    let server = S3Server::start(&["team"]);
    let a = clone_of(common::CHAIN, &s3_config(&server, "team"));
    a.run(&["run"]).ok();
    // A flipped byte in a local object (two's output, also three's): not uploaded under its name, its stages not published, the rest pushed.
    let obj = std::fs::canonicalize(a.path().join("artifacts/out/two/out")).unwrap();
    let id = format!("{}{}", obj.parent().unwrap().file_name().unwrap().to_string_lossy(), obj.file_name().unwrap().to_string_lossy());
    std::fs::set_permissions(&obj, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&obj, "hELLO").unwrap();
    let r = s3(&a, &["push"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr.contains(&format!("local object {id} hashes to ")) && r.stderr.contains("not uploaded (`kimcnn verify --repair`"),
        "{}",
        r.stderr
    );
    assert!(!remote_object(server.root.path(), &id).exists(), "nothing published under its name");
    let r = s3(&a, &["verify", "--remote", "team"]).ok();
    assert!(r.stdout.contains("`team`: 2 of 4 stages published, 0 objects missing; 2 stages not pushed yet"), "{}", r.stdout);
    // Repaired locally (quarantine, recompute), then pushed.
    a.run(&["verify", "--repair"]);
    a.run(&["run"]).ok();
    s3(&a, &["push"]).ok();

    // An object of a published record lost on the remote: verify --remote names it (exit 1), push puts it back.
    let three = std::fs::canonicalize(a.path().join("artifacts/out/three/len")).unwrap();
    let lost =
        format!("{}{}", three.parent().unwrap().file_name().unwrap().to_string_lossy(), three.file_name().unwrap().to_string_lossy());
    std::fs::remove_file(remote_object(server.root.path(), &lost)).unwrap();
    let r = s3(&a, &["verify", "--remote", "team"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains(&format!("missing: stage `three` output `len`: object {} is not on `team`", &lost[..12])), "{}", r.stdout);
    let r = s3(&a, &["push"]).ok();
    assert!(r.stdout.starts_with("pushed 1 objects"), "{}", r.stdout);
    let r = s3(&a, &["verify", "--remote", "team"]).ok();
    assert!(r.stdout.contains("4 of 4 stages published, 0 objects missing"), "{}", r.stdout);

    // A record on the remote that names other bytes than the lock: pull refuses it, push says so (exit 1).
    let lock = a.read("pipeline.lock");
    let key = lock[lock.find("\n  one:\n").unwrap()..].lines().find_map(|l| l.trim().strip_prefix("key: ")).unwrap().to_string();
    let rec_path = server.root.path().join(format!("team/kimcnn/runs/{key}.json"));
    let rec = std::fs::read_to_string(&rec_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&rec).unwrap();
    // As if a teammate had computed `one` with other bytes: the remote has their record and not our object.
    let ours = v["outputs"]["out"].as_str().unwrap().to_string();
    v["outputs"]["out"] = serde_json::Value::String(lost.clone());
    std::fs::write(&rec_path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    std::fs::remove_file(remote_object(server.root.path(), &ours)).unwrap();
    let b = clone_of(common::CHAIN, &s3_config(&server, "team"));
    b.write("pipeline.lock", &lock);
    let r = s3(&b, &["pull", "one"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("stage `one`: the run record on `team` names other outputs than pipeline.lock; refused"), "{}", r.stderr);
    let r = s3(&a, &["push"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("conflict: stage `one`") && r.stderr.contains("1 stages conflict with `team`"), "{} {}", r.stdout, r.stderr);
}

#[test]
fn a_pull_killed_mid_object_leaves_a_sound_store_and_the_next_pull_finishes() {
    let server = S3Server::start(&["team"]);
    let a = clone_of(common::CHAIN, &s3_config(&server, "team"));
    a.run(&["run"]).ok();
    s3(&a, &["push"]).ok();
    let b = clone_of(common::CHAIN, &s3_config(&server, "team"));
    b.write("pipeline.lock", &a.read("pipeline.lock"));
    let mut c = b.cmd(&["pull"]);
    c.env("AWS_ACCESS_KEY_ID", S3_KEY).env("AWS_SECRET_ACCESS_KEY", S3_SECRET).env("KIMCNN_KILL_AT", "pull:downloaded");
    let out = c.output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "killed after downloading an object: {}", String::from_utf8_lossy(&out.stderr));
    assert!(b.run(&["verify"]).ok().stdout.contains(" checked: 0 corrupt"));
    let r = s3(&b, &["pull"]).ok();
    assert!(r.stdout.contains("4 of 4 stages are here"), "{}", r.stdout);
    assert_eq!(outputs(&a), outputs(&b));
}
