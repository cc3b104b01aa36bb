//! The store under stress: `kill -9` mid-stage, two concurrent runs, flipped
//! bytes, `verify` and `gc`.
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Project, CHAIN};

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn scratch_files(p: &Project) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(p.path().join("artifacts/tmp")).into_iter().flatten().flatten() {
        let o = d.path().join("out/out");
        if o.exists() {
            out.push(o);
        }
    }
    out
}

#[test]
fn kill_9_mid_stage_leaves_no_partial_object_and_the_next_run_completes() {
    let p = Project::new(
        r#"
stages:
  first:
    uses: exec
    outputs: [out]
    with: { cmd: 'echo first > "$OUT_out"' }
  slow:
    uses: exec
    inputs: { in: first.out }
    outputs: [out]
    with: { cmd: 'printf partial > "$OUT_out"; if [ -n "$KIMCNN_TEST_SLOW" ]; then sleep 29.4817; fi; printf " done" >> "$OUT_out"' }
"#,
    );
    let mut c = p.cmd(&["run", "--jobs", "1"]);
    c.env("KIMCNN_TEST_SLOW", "1").stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    wait_for("the partial output", || scratch_files(&p).iter().any(|f| std::fs::read_to_string(f).unwrap_or_default() == "partial"));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let _ = std::process::Command::new("pkill").args(["-f", "sleep 29.4817"]).status();

    // Only `first`'s complete output is an object; `slow` has no record, link or lock entry.
    let objects = p.objects();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(std::fs::read_to_string(&objects[0]).unwrap(), "first\n");
    assert!(!p.path().join("artifacts/out/slow").exists());
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/first/out")).unwrap(), "first\n", "finished stages are linked at once");
    let lock = std::fs::read_to_string(p.path().join("pipeline.lock")).expect("the lock of the finished stage is written");
    assert!(lock.contains("  first:") && !lock.contains("slow"), "{lock}");
    p.run(&["verify"]).ok();

    let r = p.run(&["run"]).ok();
    assert_eq!(r.ran(), ["slow"], "first restored from its run record: {}", r.stdout);
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/slow/out")).unwrap(), "partial done");
    assert!(scratch_files(&p).is_empty(), "the dead run's scratch was cleared");
    p.run(&["verify"]).ok();
}

#[test]
fn two_concurrent_runs_on_one_store_both_finish_and_compute_each_key_once() {
    // Each stage logs which kimcnn process ran it ($PPID of its shell).
    let mut y = String::from("stages:\n");
    for i in 0..10 {
        y.push_str(&format!(
            "  s{i}:\n    uses: exec\n    outputs: [out]\n    with: {{ cmd: 'sleep 0.5; echo {i} $PPID >> computed.log; echo {i} > \"$OUT_out\"' }}\n"
        ));
    }
    // Two stages with identical work share one key: computed once between both processes.
    for name in ["twin_a", "twin_b"] {
        y.push_str(&format!(
            "  {name}:\n    uses: exec\n    outputs: [out]\n    with: {{ cmd: 'sleep 0.5; echo twin $PPID >> computed.log; echo twin > \"$OUT_out\"' }}\n"
        ));
    }
    y.push_str("  join:\n    uses: exec\n    inputs: { a: s0.out, b: twin_b.out }\n    outputs: [out]\n    with: { cmd: 'echo join $PPID >> computed.log; cat \"$IN_a\" \"$IN_b\" > \"$OUT_out\"' }\n");
    let p = Project::new(&y);
    let spawn = || {
        let mut c = p.cmd(&["run", "--jobs", "2"]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let pids = [a.id().to_string(), b.id().to_string()];
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let log = p.read("computed.log");
    let mut computed: Vec<&str> = log.lines().map(|l| l.split(' ').next().unwrap()).collect();
    computed.sort();
    assert_eq!(computed, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "join", "twin"], "each key computed exactly once");
    // Both processes computed stages, so the second started before the first had finished: the runs overlapped.
    for pid in &pids {
        assert!(log.lines().any(|l| l.ends_with(&format!(" {pid}"))), "process {pid} computed nothing: {log}");
    }
    p.run(&["verify"]).ok();
    let lock = std::fs::read_to_string(p.path().join("pipeline.lock")).expect("pipeline.lock");
    let names: Vec<String> = (0..10).map(|i| format!("s{i}")).chain(["twin_a", "twin_b", "join"].map(String::from)).collect();
    for s in &names {
        assert!(lock.contains(&format!("\n  {s}:\n")), "{s} missing from the lock: {lock}");
        assert!(p.path().join("artifacts/out").join(s).join("out").is_file(), "{s} is linked");
    }
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/join/out")).unwrap(), "0\ntwin\n");
    assert!(p.run(&["run"]).ok().ran().is_empty());
}

/// Runs `args` with the debug binary killed by SIGKILL at `point`; it must have died there.
fn killed_at(p: &Project, point: &str, args: &[&str]) {
    let mut c = p.cmd(args);
    c.env("KIMCNN_KILL_AT", point);
    let out = c.output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "{point}: not killed there: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn kill_9_in_a_commit_a_run_record_or_the_lock_write_loses_nothing() {
    for point in ["commit:before-rename", "commit:after-rename", "run-record:before-rename", "lock:before-rename"] {
        let p = Project::new(CHAIN);
        p.run(&["run", "side"]).ok();
        let side = std::fs::read(p.path().join("artifacts/out/side/out")).unwrap();
        let lock = std::fs::read_to_string(p.path().join("pipeline.lock")).expect("pipeline.lock");
        killed_at(&p, point, &["run", "--jobs", "1"]);
        // Nothing corrupt, the lock still parses and still names what it named, the finished stage is intact.
        let r = p.run(&["verify"]).ok();
        assert!(r.stdout.contains(" checked: 0 corrupt"), "{point}: {}", r.stdout);
        let now = std::fs::read_to_string(p.path().join("pipeline.lock")).expect("pipeline.lock survives");
        assert!(now.contains("\n  side:\n") && lock.contains("\n  side:\n"), "{point}: {now}");
        p.run(&["status"]).ok();
        assert_eq!(std::fs::read(p.path().join("artifacts/out/side/out")).unwrap(), side, "{point}");
        // The next run finishes the work.
        p.run(&["run"]).ok();
        assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/three/out")).unwrap(), "HELLO", "{point}");
        assert!(p.run(&["run"]).ok().ran().is_empty(), "{point}");
        p.run(&["verify"]).ok();
    }
}

fn flip_a_byte(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut bytes = std::fs::read(path).unwrap();
    bytes[0] ^= 0x20;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn object_of(p: &Project, link: &str) -> std::path::PathBuf {
    std::fs::canonicalize(p.path().join("artifacts/out").join(link)).unwrap()
}

#[test]
fn flipped_byte_is_named_by_verify_and_never_used_silently() {
    let p = Project::new(CHAIN);
    p.run(&["run"]).ok();
    let obj = object_of(&p, "one/out");
    let id = format!("{}{}", obj.parent().unwrap().file_name().unwrap().to_str().unwrap(), obj.file_name().unwrap().to_str().unwrap());
    flip_a_byte(&obj);

    let r = p.run(&["verify"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains(&format!("corrupt: object {id} (output one.out)")), "{}", r.stdout);
    assert!(r.stdout.contains("1 corrupt"), "{}", r.stdout);

    // A run that needs it as input quarantines it, recomputes its producer, then runs.
    let r = p.run(&["run", "two", "--force"]).ok();
    assert!(r.stdout.contains(&format!("corrupt input object {id}")) && r.stdout.contains("quarantined and recomputed"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/two/out")).unwrap(), "HELLO");
    assert_eq!(std::fs::read_to_string(&obj).unwrap(), "hello");
    p.run(&["verify"]).ok();
}

#[test]
fn verify_repair_quarantines_and_the_next_run_recomputes_only_the_producer() {
    let p = Project::new(CHAIN);
    p.run(&["run"]).ok();
    let obj = object_of(&p, "two/out");
    flip_a_byte(&obj);
    let r = p.run(&["verify", "--repair"]);
    assert_eq!(r.code, 1);
    // two and three wrote the same bytes (HELLO): one object, named for both.
    assert!(r.stdout.contains("(output three.out, two.out); quarantined"), "{}", r.stdout);
    let r = p.run(&["status"]).ok();
    assert!(r.stdout.contains("stale") && r.stdout.contains("two") && r.stdout.contains("outputs missing"), "{}", r.stdout);
    let r = p.run(&["run"]).ok();
    assert_eq!(r.ran(), ["two"], "two writes the same bytes again, which restores three too: {}", r.stdout);
    p.run(&["verify"]).ok();
}

#[test]
fn gc_keeps_what_the_lock_and_records_need() {
    let p = Project::new(CHAIN);
    p.run(&["run"]).ok();
    p.run(&["run", "--set", "greeting=bye"]).ok();
    p.run(&["run"]).ok();
    let before = p.objects().len();
    let r = p.run(&["gc"]).ok();
    assert!(r.stdout.starts_with("removed 0 objects"), "run records protect their objects: {}", r.stdout);
    let r = p.run(&["gc", "--workspace", "--dry-run"]).ok();
    assert!(r.stdout.contains("would remove 3 objects") && r.stdout.contains("3 run records"), "{}", r.stdout);
    assert_eq!(p.objects().len(), before);
    let r = p.run(&["gc", "--workspace"]).ok();
    assert!(r.stdout.starts_with("removed 3 objects"), "{}", r.stdout);
    assert_eq!(p.objects().len(), before - 3);
    p.run(&["verify"]).ok();
    assert!(p.run(&["run"]).ok().ran().is_empty(), "what the lock names is intact");
    assert_eq!(p.run(&["run", "--set", "greeting=bye"]).ok().ran(), ["one", "two", "three"]);
}
