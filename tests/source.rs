//! The `source` stage through the binary: real MR data from the mirror, local
//! files, a download from a loopback HTTP server, and its failures.
mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::{mirror, Project};

const MR: &str = r#"
params:
  kim: https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data
stages:
  mr:
    uses: source
    matrix: { file: [rt-polarity.pos, rt-polarity.neg] }
    with: { url: '${kim}/${file}' }
  slice:
    uses: exec
    inputs: { pos: mr.rt-polarity.pos.data, neg: mr.rt-polarity.neg.data }
    outputs: [lines]
    with: { cmd: 'head -n 100 "$IN_pos" > "$OUT_lines"; head -n 100 "$IN_neg" >> "$OUT_lines"' }
"#;

#[test]
fn mr_from_the_mirror_is_cached_by_content() {
    let p = Project::new(MR);
    let r = p.run(&["run"]).ok();
    assert_eq!(r.ran().len(), 3, "{}", r.stdout);
    let pos = std::fs::read(p.path().join("artifacts/out/mr.rt-polarity.pos/data")).unwrap();
    assert_eq!(pos, std::fs::read(mirror().join("datasets/kim/rt-polarity.pos")).unwrap());
    let lines = std::fs::read(p.path().join("artifacts/out/slice/lines")).unwrap();
    assert_eq!(lines.iter().filter(|&&b| b == b'\n').count(), 200);
    assert!(p.run(&["run"]).ok().ran().is_empty());
    let r = p.run(&["hash", "artifacts/out/mr.rt-polarity.pos/data"]).ok();
    let lock = p.read("pipeline.lock");
    let id = r.stdout.split_whitespace().next().unwrap();
    assert!(lock.contains(&format!("data: {id}")), "the lock names the object by its BLAKE3: {lock}");
}

#[test]
fn a_local_file_edit_makes_its_source_stale() {
    let p = Project::new("stages:\n  raw: {uses: source, with: {path: data/my.tsv}}\n  n: {uses: exec, inputs: {i: raw.data}, outputs: [out], with: {cmd: 'wc -l < \"$IN_i\" > \"$OUT_out\"'}}\n");
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    p.write("data/my.tsv", "text\tlabel\ngood\t1\n");
    assert_eq!(p.run(&["run"]).ok().ran(), ["raw", "n"]);
    assert!(p.run(&["run"]).ok().ran().is_empty());
    p.write("data/my.tsv", "text\tlabel\ngood\t1\nbad\t0\n");
    let r = p.run(&["status"]).ok();
    assert!(r.stdout.contains("raw") && r.stdout.contains("external file changed: blake3:"), "{}", r.stdout);
    assert_eq!(p.run(&["run"]).ok().ran(), ["raw", "n"]);
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/n/out")).unwrap().trim(), "3");
    // Touching without changing bytes: re-hashed, same content, nothing reruns.
    p.write("data/my.tsv", "text\tlabel\ngood\t1\nbad\t0\n");
    assert!(p.run(&["run"]).ok().ran().is_empty());
}

#[test]
fn missing_file_empty_file_and_bad_checksum_fail_clearly() {
    let p = Project::new("stages:\n  raw: {uses: source, with: {path: nope.txt}}\n");
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.trim().starts_with("error: stage `raw` failed: ") && r.stderr.trim().ends_with("nope.txt: file not found"),
        "{}",
        r.stderr
    );
    assert!(p.objects().is_empty());

    let p = Project::new("stages:\n  raw: {uses: source, with: {path: empty.txt}}\n");
    p.write("empty.txt", "");
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.trim().ends_with("empty.txt: the file is empty"), "{}", r.stderr);
    assert!(p.objects().is_empty());

    let p = Project::new(&format!("stages:\n  raw: {{uses: source, with: {{path: a.txt, sha256: '{}'}}}}\n", "ab".repeat(32)));
    p.write("a.txt", "abc\n");
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("a.txt: sha256 checksum mismatch: expected abab"), "{}", r.stderr);
    assert!(p.objects().is_empty(), "nothing of a refused file is kept");
}

/// Serves `body` for any request, `n` times, on loopback.
fn serve(body: &'static [u8], n: usize) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            let _ = s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes());
            let _ = s.write_all(body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn download_from_a_loopback_server_and_an_unreachable_one() {
    let base = serve(b"id\tdocument\tlabel\n1\tgood\t1\n", 1);
    let p = Project::new(&format!("stages:\n  nsmc: {{uses: source, with: {{url: '{base}/own_corpus.tsv'}}}}\n"));
    let r = p.run(&["run"]).ok();
    assert_eq!(r.ran(), ["nsmc"]);
    assert_eq!(std::fs::read_to_string(p.path().join("artifacts/out/nsmc/data")).unwrap(), "id\tdocument\tlabel\n1\tgood\t1\n");
    assert!(p.run(&["run"]).ok().ran().is_empty(), "a URL's content is cached under its URL");

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = Project::new(&format!("stages:\n  gone: {{uses: source, with: {{url: 'http://127.0.0.1:{port}/gone.txt'}}}}\n"));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1);
    let e = r.stderr.trim();
    assert!(e.starts_with(&format!("error: stage `gone` failed: cannot download http://127.0.0.1:{port}/gone.txt: ")), "{e}");
    assert!(e.contains("no copy named `gone.txt` in the mirrors"), "{e}");
    assert_eq!(e.lines().count(), 1);
}
