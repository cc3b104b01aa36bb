//! Helpers shared by the end-to-end tests: a throwaway project directory and
//! a way to run the real `kimcnn` binary in it.
#![allow(dead_code)]

mod tool;
pub use tool::cached_tool;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Project {
    pub dir: tempfile::TempDir,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(self) -> Ran {
        assert_eq!(self.code, 0, "kimcnn failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
    /// Stage names from `ran <stage>` lines.
    pub fn ran(&self) -> Vec<String> {
        self.stdout.lines().filter_map(|l| l.strip_prefix("ran ")).map(|l| l.split_whitespace().next().unwrap_or("").to_string()).collect()
    }
}

pub fn bin() -> PathBuf {
    build_worker();
    PathBuf::from(env!("CARGO_BIN_EXE_kimcnn"))
}

/// `kimcnn` runs torch work in `kimcnn-torch`, found beside it. The worker
/// is its own package (crates/worker), whose binary `cargo test` does not
/// build: build it once per test binary, with the same profile and target
/// dir (a no-op when it is fresh, as after `make test`'s build).
fn build_worker() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_kimcnn"));
        let profile_dir = exe.parent().expect("the binary has a directory");
        let target_dir = profile_dir.parent().expect("the profile dir has a parent");
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c.args(["build", "--quiet", "-p", "kimcnn-worker", "--bin", "kimcnn-torch"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            c.arg("--release");
        }
        let status = c.status().expect("cargo starts");
        assert!(status.success(), "cannot build the torch worker (cargo build -p kimcnn-worker)");
    });
}

/// The shared data mirror beside the checkout (../shared).
/// The offline mirror the tests' projects read: `$KIMCNN_MIRROR` where the
/// caller set it (a clone with no `../shared` beside it), else `../shared`.
pub fn mirror() -> PathBuf {
    match std::env::var_os("KIMCNN_MIRROR") {
        Some(m) if !m.is_empty() => PathBuf::from(m),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared"),
    }
}

impl Project {
    pub fn new(pipeline: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pipeline.yaml"), pipeline).expect("write pipeline");
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).expect("write");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).current_dir(self.path()).env_remove("KIMCNN_STORE").env_remove("KIMCNN_PIPELINE").env("KIMCNN_MIRROR", mirror());
        c
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        self.run_cmd(self.cmd(args))
    }

    pub fn run_cmd(&self, mut c: Command) -> Ran {
        let Output { status, stdout, stderr } = c.output().expect("kimcnn starts");
        Ran {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Every file under artifacts/ and the lock, with contents' hashes: to
    /// prove a failed command left the store untouched.
    pub fn snapshot(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let root = self.path();
        fn walk(root: &Path, p: &Path, out: &mut Vec<(String, String)>) {
            let Ok(rd) = std::fs::read_dir(p) else { return };
            for e in rd.flatten() {
                let p = e.path();
                let meta = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if meta.is_dir() {
                    walk(root, &p, out);
                } else if meta.file_type().is_symlink() {
                    out.push((rel, std::fs::read_link(&p).unwrap().display().to_string()));
                } else {
                    out.push((rel, blake3::hash(&std::fs::read(&p).unwrap()).to_hex().to_string()));
                }
            }
        }
        walk(root, &root.join("artifacts"), &mut out);
        out.push(("pipeline.lock".into(), self.read("pipeline.lock")));
        out.sort();
        out
    }

    /// Object files in the store.
    pub fn objects(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.path().join("artifacts/objects")) else { return out };
        for d in rd.flatten() {
            for f in std::fs::read_dir(d.path()).unwrap().flatten() {
                out.push(f.path());
            }
        }
        out
    }
}

/// A chain of three exec stages; `one` depends on param `greeting`.
pub const CHAIN: &str = r#"
params:
  greeting: hello
stages:
  one:
    uses: exec
    outputs: [out]
    with: { cmd: 'printf "%s" "${greeting}" > "$OUT_out"' }
  two:
    uses: exec
    inputs: { in: one.out }
    outputs: [out]
    with: { cmd: 'tr a-z A-Z < "$IN_in" > "$OUT_out"' }
  three:
    uses: exec
    inputs: { in: two.out }
    outputs: [out, len]
    with: { cmd: 'cat "$IN_in" > "$OUT_out"; wc -c < "$IN_in" | tr -d " " > "$OUT_len"' }
  side:
    uses: exec
    outputs: [out]
    with: { cmd: 'echo side > "$OUT_out"' }
"#;

/// A real S3-compatible server (s3s-fs, installed by `make test`) on a free
/// loopback port, serving buckets from a temp directory; killed on drop.
pub struct S3Server {
    pub root: tempfile::TempDir,
    pub endpoint: String,
    child: std::process::Child,
}

pub const S3_KEY: &str = "kimcnn-test-key";
pub const S3_SECRET: &str = "kimcnn-test-secret-0123456789";

impl S3Server {
    pub fn start(buckets: &[&str]) -> S3Server {
        let exe = cached_tool("KIMCNN_S3S_FS", "s3s-tools/bin/s3s-fs");
        let root = tempfile::tempdir().expect("tempdir");
        for b in buckets {
            std::fs::create_dir(root.path().join(b)).expect("bucket dir");
        }
        // A free port can be taken by another process between our probe and the
        // server's bind: a server that exits at once is retried on another port.
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().unwrap().port();
            let mut child = Command::new(&exe)
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", S3_KEY, "--secret-key", S3_SECRET])
                .arg(root.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("s3s-fs starts");
            let t0 = std::time::Instant::now();
            loop {
                if child.try_wait().expect("s3s-fs status").is_some() {
                    break; // could not bind: try another port
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return S3Server { root, endpoint: format!("http://127.0.0.1:{port}"), child };
                }
                assert!(t0.elapsed().as_secs() < 60, "s3s-fs did not listen on {port}");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        panic!("s3s-fs exited at start on 5 free ports")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const FILLER: [&str; 10] = ["the", "film", "was", "a", "plot", "of", "and", "it", "story", "acting"];

/// The stages that turn [`write_toy_data`]'s files into tokens, a
/// vocabulary and an embedding matrix (a `stages:` block's first lines).
pub const TOY_STAGES: &str = "  raw.train: {uses: source, with: {path: train.tsv}}
  raw.test: {uses: source, with: {path: test.tsv}}
  vectors: {uses: source, with: {path: vectors.txt}}
  tokenize: {uses: tokenize, inputs: {train: raw.train.data, test: raw.test.data}, with: {format: tsv}}
  vocab: {uses: vocab, inputs: {tokens: tokenize.tokens}}
  embed: {uses: embed, inputs: {vocab: vocab.vocab, vectors: vectors.data}}
";

/// A toy two-class data set a CNN learns in a few epochs: `train.tsv` (400
/// sentences), `test.tsv` (60), and 3-d `vectors.txt` for its words.
pub fn write_toy_data(p: &Project) {
    p.write("train.tsv", &toy_tsv(400, 0));
    p.write("test.tsv", &toy_tsv(60, 1000));
    let mut v = String::new();
    for (i, w) in FILLER.iter().chain(["great", "awful"].iter()).enumerate() {
        v.push_str(&format!("{w} {} {} {}\n", (i as f32 * 0.37).sin(), (i as f32 * 0.11).cos(), i as f32 * 0.01));
    }
    p.write("vectors.txt", &v);
}

/// `n` toy sentences (a TSV with a header), numbered from `offset`: every
/// even one has `great` and is `pos`, every odd one `awful` and `neg`.
pub fn toy_tsv(n: usize, offset: usize) -> String {
    let mut s = String::from("text\tlabel\n");
    for i in offset..offset + n {
        let pos = i % 2 == 0;
        let mut words: Vec<&str> = (0..(4 + i % 6)).map(|j| FILLER[(i * 7 + j) % FILLER.len()]).collect();
        words.insert(i % words.len(), if pos { "great" } else { "awful" });
        s.push_str(&format!("{}\t{}\n", words.join(" "), if pos { "pos" } else { "neg" }));
    }
    s
}
