//! `kimcnn verify --recompute`: stages recomputed in scratch and compared
//! with pipeline.lock, byte for byte, without touching the store or the lock.
mod common;

use common::{Project, CHAIN};

/// CHAIN plus a stage whose output differs on every run.
fn pipeline() -> String {
    format!("{CHAIN}  stamp:\n    uses: exec\n    outputs: [out]\n    with: {{ cmd: 'date +%s%N > \"$OUT_out\"' }}\n")
}

#[test]
fn recompute_says_per_stage_whether_the_bytes_match_the_lock() {
    let p = Project::new(&pipeline());
    let r = p.run(&["verify", "--recompute", "two"]);
    assert_eq!(r.code, 2, "no lock yet: {}", r.stdout);
    assert!(r.stderr.contains("pipeline.lock: no such file; there is nothing to compare with"), "{}", r.stderr);

    p.run(&["run"]).ok();
    let before = p.snapshot();
    let r = p.run(&["verify", "--recompute", "two", "three"]).ok();
    assert!(r.stdout.starts_with("restored   one\nran        two"), "`one` comes from the store: {}", r.stdout);
    let lines: Vec<&str> = r.stdout.lines().skip_while(|l| !l.starts_with("same")).collect();
    assert_eq!(lines.len(), 3, "two, three and the total, not `one`: {}", r.stdout);
    assert!(lines[0].starts_with("same ") && lines[0].contains("two") && lines[0].ends_with("out"), "{}", lines[0]);
    assert!(lines[1].starts_with("same ") && lines[1].contains("three") && lines[1].ends_with("len, out"), "{}", lines[1]);
    assert_eq!(lines[2], "2 stages recomputed: 2 as pipeline.lock names, 0 not");
    assert_eq!(p.snapshot(), before, "the store and the lock are untouched");

    // A stage whose bytes change from run to run is named, with both hashes; exit 1.
    let r = p.run(&["verify", "--recompute", "stamp"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("\nDIFFERS     stamp  out: lock ") && r.stdout.contains("out: lock ") && r.stdout.contains(", recomputed "),
        "{}",
        r.stdout
    );
    assert_eq!(p.snapshot(), before);

    // A clean clone: nothing in the store; what the named stage needs is computed in scratch and compared too.
    std::fs::remove_dir_all(p.path().join("artifacts")).unwrap();
    let r = p.run(&["verify", "--recompute", "two"]).ok();
    assert!(r.stdout.contains("one") && r.stdout.contains("(needed, not in the store)"), "{}", r.stdout);
    assert!(r.stdout.ends_with("2 stages recomputed: 2 as pipeline.lock names, 0 not\n"), "{}", r.stdout);
    assert!(p.objects().is_empty(), "nothing lands in the store");

    // A lock written for other params: said so, exit 1.
    p.write("pipeline.yaml", &pipeline().replace("greeting: hello", "greeting: howdy"));
    let r = p.run(&["verify", "--recompute", "one"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("\nOTHER KEY   one  the lock is of another run") && r.stdout.contains("its params or code changed since"),
        "{}",
        r.stdout
    );
    let r = p.run(&["verify", "--recompute", "nosuch"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no stage or stage group named `nosuch`"), "{}", r.stderr);
}

#[test]
fn verify_refuses_stages_without_recompute() {
    let p = Project::new(CHAIN);
    let r = p.run(&["verify", "two"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.trim(), "error: verify takes stages only with --recompute or --remote");
}
