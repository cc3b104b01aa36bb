//! `--executor ray` against a real Ray cluster: a head and a second worker
//! node on loopback (Ray 2.60 from PyPI, installed by `make test`), with
//! token auth, and the S3 server (s3s-fs) as the remote that carries inputs
//! and outputs. A small real pipeline (an MR slice, tokenize to evaluate)
//! runs on the cluster and gives the bytes a local run gives; a coordinator
//! killed mid-run is started again and attaches to its job; a stage asking
//! for a GPU no node has fails with the resources named; a wrong token, a
//! dashboard that is not there, no remote or a missing bucket are one line
//! each, and mark nothing done. A study waits here while its trials run as
//! jobs, stops a hopeless one through Ray, and selects what it selects
//! locally; a node's epochs show as a local run's; a job whose processes
//! are SIGKILLed (its node lost) is run again;
//! nodes with kimcnn installed run theirs.
mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{mirror, Project, S3Server, S3_KEY, S3_SECRET};
use kimcnn_schema::{read_trials, TrialStatus};

fn ray() -> PathBuf {
    common::cached_tool("KIMCNN_RAY", "ray-2.60.0/bin/ray")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A Ray head and one more node, with token auth; each node keeps its own
/// kimcnn store (as separate machines would). Their processes are killed on drop.
struct Cluster {
    groups: Vec<u32>,
    dashboard: String,
    token: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::Builder::new().prefix("kr").tempdir_in("/tmp").unwrap();
        let token = format!("kimcnn-ray-test-{}", std::process::id());
        let (port, dash) = (free_port(), free_port());
        let mut c = Cluster { groups: Vec::new(), dashboard: format!("127.0.0.1:{dash}"), token, dir };
        c.node(
            &[
                "--head",
                &format!("--port={port}"),
                &format!("--dashboard-port={dash}"),
                "--dashboard-host=127.0.0.1",
                "--include-dashboard=true",
            ],
            "head",
        );
        c.node(&[&format!("--address=127.0.0.1:{port}")], "worker");
        // The dashboard answers a few seconds after `ray start` returns.
        let t0 = Instant::now();
        loop {
            let up = Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "-H", &format!("Authorization: Bearer {}", c.token)])
                .arg(format!("http://{}/api/version", c.dashboard))
                .status()
                .is_ok_and(|s| s.success());
            if up {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(90), "the dashboard did not come up");
            std::thread::sleep(Duration::from_millis(500));
        }
        c
    }

    fn node(&mut self, args: &[&str], name: &str) {
        let store = self.dir.path().join(format!("store-{name}"));
        let child = Command::new(ray())
            .args(["start", "--num-cpus=2", "--num-gpus=0", "--disable-usage-stats", "--node-ip-address=127.0.0.1"])
            .args(args)
            // Two nodes on one host: each agent on ports of its own (on the default ones the
            // second node's agent cannot listen, and the head cannot read its jobs' logs).
            .args(
                ["--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]
                    .map(|flag| format!("{flag}={}", free_port())),
            )
            .arg(format!("--temp-dir={}", self.dir.path().join("ray").display()))
            .env("RAY_AUTH_MODE", "token")
            .env("RAY_AUTH_TOKEN", &self.token)
            // What the node's jobs see: the remote's credentials and their own store.
            .env("AWS_ACCESS_KEY_ID", S3_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .env("KIMCNN_NODE_STORE", &store)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ray starts");
        self.groups.push(child.id());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "ray start {name}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }

    /// The submission ids and statuses of the cluster's jobs.
    fn jobs(&self) -> Vec<(String, String)> {
        self.listing()
            .iter()
            .map(|j| (j["submission_id"].as_str().unwrap().to_string(), j["status"].as_str().unwrap().to_string()))
            .collect()
    }

    /// The cluster's jobs as Ray lists them.
    fn listing(&self) -> Vec<serde_json::Value> {
        let out = Command::new("curl")
            .args(["-sf", "-H", &format!("Authorization: Bearer {}", self.token)])
            .arg(format!("http://{}/api/jobs/", self.dashboard))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array().unwrap().clone()
    }

    /// SIGKILLs every kimcnn process of this cluster's jobs (their working
    /// directories are inside its temp dir), as a lost node would end them.
    /// Returns how many it killed.
    fn kill_jobs(&self) -> usize {
        let mut killed = 0;
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            let (Ok(cwd), Ok(cmdline)) = (std::fs::read_link(e.path().join("cwd")), std::fs::read(e.path().join("cmdline"))) else {
                continue;
            };
            if cwd.starts_with(self.dir.path()) && String::from_utf8_lossy(&cmdline).contains("kimcnn") {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).output();
                killed += 1;
            }
        }
        killed
    }
}

/// One cluster at a time: each takes a few hundred MB and two CPUs' worth of Ray processes.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Drop for Cluster {
    fn drop(&mut self) {
        for signal in ["-TERM", "-KILL"] {
            for g in &self.groups {
                let _ = Command::new("kill").arg(signal).arg("--").arg(format!("-{g}")).output();
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

/// The MR slice's pipeline, tokenize to evaluate, with the remote and the cluster.
fn pipeline(s3: &S3Server, dashboard: &str) -> String {
    format!(
        "params: {{seed: 1}}
stages:
  pos: {{uses: source, with: {{path: pos.txt}}}}
  neg: {{uses: source, with: {{path: neg.txt}}}}
  glove: {{uses: source, with: {{path: glove.txt}}}}
  tokenize: {{uses: tokenize, inputs: {{pos: pos.data, neg: neg.data}}, with: {{format: lines, order: [pos, neg], folds: 10, seed: 1}}}}
  vocab: {{uses: vocab, inputs: {{tokens: tokenize.tokens}}}}
  embed: {{uses: embed, inputs: {{vocab: vocab.vocab, vectors: glove.data}}}}
  train:
    uses: train
    inputs: {{tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}}
    with: {{dataset: mr, variant: non-static, fold: 0, epochs: 3, seed: 1}}
  evaluate: {{uses: evaluate, inputs: {{model: train.model, tokens: tokenize.tokens, vocab: vocab.vocab}}}}
remotes:
  team: {{url: 's3://team/kimcnn', endpoint: '{}', region: us-east-1}}
ray: {{address: 'http://{dashboard}', pending_timeout: 10}}
",
        s3.endpoint
    )
}

fn project(s3: &S3Server, dashboard: &str) -> Project {
    project_with(&pipeline(s3, dashboard))
}

fn project_with(pipeline: &str) -> Project {
    let p = Project::new(pipeline);
    let kim = mirror().join("datasets/kim");
    for (name, file) in [("pos.txt", "rt-polarity.pos"), ("neg.txt", "rt-polarity.neg")] {
        let bytes = std::fs::read(kim.join(file)).unwrap();
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').take(300).collect();
        std::fs::write(p.path().join(name), lines.join(&b'\n')).unwrap();
    }
    let glove = flate2::read::GzDecoder::new(std::fs::File::open(mirror().join("vectors/glove.6B.50d.txt.gz")).unwrap());
    let lines: Vec<String> = BufReader::new(glove).lines().take(20_000).map(Result::unwrap).collect();
    p.write("glove.txt", &(lines.join("\n") + "\n"));
    p
}

/// `kimcnn ARGS` in `p` with the cluster's token and the remote's credentials.
fn cmd(p: &Project, token: &str, args: &[&str]) -> Command {
    let mut c = p.cmd(args);
    c.env("RAY_AUTH_TOKEN", token)
        .env("AWS_ACCESS_KEY_ID", S3_KEY)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
        .env_remove("RAY_AUTH_TOKEN_PATH");
    c
}

/// Every stage's outputs in pipeline.lock, but measured ones (timings).
fn outputs(p: &Path) -> Vec<String> {
    let lock = std::fs::read_to_string(p.join("pipeline.lock")).unwrap();
    lock.lines().filter(|l| l.starts_with("      ") && !l.contains("timings:")).map(str::to_string).collect()
}

#[test]
fn a_pipeline_on_a_ray_cluster_gives_the_local_bytes_and_survives_its_coordinator() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let s3 = S3Server::start(&["team"]);
    let cluster = Cluster::start();
    let token = cluster.token.clone();

    // The same pipeline, computed here.
    let local = project(&s3, &cluster.dashboard);
    local.run(&["run"]).ok();

    // On the cluster: the sources here (local files), every other stage a Ray job.
    let p = project(&s3, &cluster.dashboard);
    let r = p.run_cmd(cmd(&p, &token, &["run", "--executor", "ray"])).ok();
    assert_eq!(r.ran().len(), 8, "{}", r.stdout);
    for stage in ["tokenize", "vocab", "embed", "train", "evaluate"] {
        assert!(r.stdout.contains(&format!("{stage}: submitted Ray job kimcnn-")), "{stage}: {}", r.stdout);
    }
    assert!(!r.stdout.contains("pos: submitted"), "sources run here: {}", r.stdout);
    assert_eq!(outputs(p.path()), outputs(local.path()), "the cluster's bytes are the local ones");
    let jobs = cluster.jobs();
    assert_eq!(jobs.len(), 5, "{jobs:?}");
    assert!(jobs.iter().all(|(_, s)| s == "SUCCEEDED"), "{jobs:?}");
    // Nothing is stale afterwards.
    let r = p.run_cmd(cmd(&p, &token, &["run", "--executor", "ray"])).ok();
    assert!(r.ran().is_empty(), "{}", r.stdout);

    // A teammate with no cluster restores what the cluster computed (`run --pull`): only the
    // sources, local files, run; the bytes are the cluster's.
    let mate = project(&s3, &cluster.dashboard);
    let r = mate.run_cmd(cmd(&mate, &token, &["run", "--pull"])).ok();
    let mut ran = r.ran();
    ran.sort();
    assert_eq!(ran, ["glove", "neg", "pos"], "{}", r.stdout);
    assert!(r.stdout.contains("5 pulled"), "{}", r.stdout);
    assert_eq!(outputs(mate.path()), outputs(p.path()));

    // Kill the coordinator once the training job is submitted; started again, it attaches to it.
    let mut c = cmd(&p, &token, &["run", "--executor", "ray", "--force", "train"]);
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let id = loop {
        let line = lines.next().expect("the coordinator said which job it submitted").unwrap();
        if let Some(rest) = line.strip_prefix("train: submitted Ray job ") {
            break rest.trim().to_string();
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let r = p.run_cmd(cmd(&p, &token, &["run", "--executor", "ray", "--force", "train"])).ok();
    assert!(r.stdout.contains(&format!("train: attached to the running Ray job {id}")), "{}", r.stdout);
    assert_eq!(outputs(p.path()), outputs(local.path()));
    // The key's jobs: the first run's and the forced run's, which ran once though two coordinators asked.
    let base = id.strip_suffix("-2").expect("a forced run takes the key's next id");
    let mut runs: Vec<_> = cluster.jobs().into_iter().filter(|(j, _)| j.starts_with(base)).collect();
    runs.sort();
    assert_eq!(runs, [(base.to_string(), "SUCCEEDED".to_string()), (id.clone(), "SUCCEEDED".to_string())]);

    // A GPU no node has: the stage fails after ray.pending_timeout, naming what it asked for.
    let before = p.read("pipeline.lock");
    let r = p.run_cmd(cmd(&p, &token, &["run", "--executor", "ray", "--device", "cuda", "--force", "train"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no node of the cluster took Ray job") && r.stderr.contains("1 GPU(s)"), "{}", r.stderr);
    assert_eq!(p.read("pipeline.lock"), before);

    // A wrong token; a dashboard that is not there: one line, exit 1, nothing run.
    for (token, address, needle) in [
        ("wrong", cluster.dashboard.clone(), "refused the token (HTTP 403)"),
        (token.as_str(), format!("127.0.0.1:{}", free_port()), "is unreachable"),
    ] {
        p.write("pipeline.yaml", &pipeline(&s3, &address));
        let r = p.run_cmd(cmd(&p, token, &["run", "--executor", "ray", "--force", "vocab"]));
        assert_eq!(r.code, 1, "{needle}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.starts_with("error: ") && r.stderr.contains(needle) && r.stderr.lines().count() == 1, "{}", r.stderr);
        assert!(!r.stderr.contains(&cluster.token), "the token is never printed");
        assert!(r.ran().is_empty());
        assert_eq!(p.read("pipeline.lock"), before);
    }

    // No remote to carry the inputs; a remote whose bucket is not there: one line each, nothing marked done.
    let text = pipeline(&s3, &cluster.dashboard);
    let no_remote = text.lines().filter(|l| !l.starts_with("remotes:") && !l.starts_with("  team:")).collect::<Vec<_>>().join("\n");
    for (yaml, code, needle) in [(no_remote, 2, "remote"), (text.replace("s3://team/", "s3://gone/"), 1, "gone")] {
        p.write("pipeline.yaml", &yaml);
        let r = p.run_cmd(cmd(&p, &token, &["run", "--executor", "ray", "--force", "vocab"]));
        assert_eq!(r.code, code, "{needle}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.starts_with("error: ") && r.stderr.contains(needle) && r.stderr.lines().count() == 1, "{}", r.stderr);
        assert_eq!(p.read("pipeline.lock"), before);
    }
}

/// Two studies. `study`: two trials at once over the two nodes (dropout). `asha`: two trials one
/// after the other: Adam at 0.01 learns; at 1e-9 it never does, and ASHA stops it at a rung,
/// through Ray, on the epochs the node reports.
const STUDIES: &str = "  study:
    uses: study
    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}
    with: {base: {dataset: mr, variant: non-static, fold: 0, epochs: 2, seed: 1}, space: {dropout: {choice: [0.3, 0.5]}}, search: grid, parallel: 2}
  asha:
    uses: study
    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}
    with: {base: {dataset: mr, variant: non-static, fold: 0, epochs: 20, seed: 1, optimizer: adam}, space: {lr: {choice: [0.01, 1.0e-9]}}, search: grid, parallel: 1, stopper: {asha: {grace: 1, reduction: 2}}}
";

/// `pipeline`'s text with `extra` stages added.
fn with_stages(pipeline: &str, extra: &str) -> String {
    pipeline.replacen("remotes:", &format!("{extra}remotes:"), 1)
}

#[test]
fn a_study_spreads_its_trials_over_the_cluster_nodes_report_epochs_and_a_lost_job_is_run_again() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let s3 = S3Server::start(&["team"]);
    let cluster = Cluster::start();
    let token = cluster.token.clone();
    let text = with_stages(&pipeline(&s3, &cluster.dashboard), STUDIES);

    let local = project_with(&text);
    local.run(&["run", "study", "asha"]).ok();

    // A study waits here; each trial is a Ray job. It selects what it selects locally.
    let p = project_with(&text);
    let r = p.run_cmd(cmd(&p, &token, &["run", "--executor", "ray", "study", "asha"])).ok();
    for study in ["study", "asha"] {
        for trial in ["trial 0", "trial 1"] {
            assert!(r.stdout.contains(&format!("{study}: {trial}: submitted Ray job kimcnn-")), "{study} {trial}: {}", r.stdout);
        }
        assert!(!r.stdout.contains(&format!("{study}: submitted")), "the study itself runs here: {}", r.stdout);
        let rows = read_trials(&p.path().join(format!("artifacts/out/{study}/trials"))).unwrap();
        let failed: Vec<_> = rows.iter().filter(|r| r.status == TrialStatus::Failed).map(|r| &r.error).collect();
        assert!(failed.is_empty(), "{study}: {failed:?}\n{}", r.stdout);
        assert_eq!(p.read(&format!("artifacts/out/{study}/best")), local.read(&format!("artifacts/out/{study}/best")));
    }
    let rows = read_trials(&p.path().join("artifacts/out/asha/trials")).unwrap();
    let hopeless: Vec<_> = rows.iter().filter(|r| r.config["lr"].as_f64() == Some(1.0e-9)).collect();
    assert!(hopeless.iter().all(|r| r.status == TrialStatus::Stopped), "{}", r.stdout);
    assert!(!hopeless.is_empty() && hopeless.len() < 20, "stopped early: {} epochs", hopeless.len());
    let jobs = cluster.jobs();
    assert_eq!(jobs.len(), 3 + 2 + 2, "tokenize, vocab, embed and four trials: {jobs:?}");

    // -v: the node's epochs show as a local run's do, and its other lines as notes.
    let r = p.run_cmd(cmd(&p, &token, &["run", "--executor", "ray", "-v", "--force", "train"])).ok();
    for e in 1..=3 {
        assert!(r.stdout.contains(&format!("epoch      train  {e}/3  loss ")), "epoch {e}: {}", r.stdout);
    }
    assert!(r.stdout.contains("train: node: kimcnn ray-job: stage train"), "{}", r.stdout);

    // The job's processes SIGKILLed after its first epoch (its node lost): it is submitted again and finishes.
    let mut c = cmd(&p, &token, &["run", "--executor", "ray", "-v", "--force", "train", "--set", "train.epochs=60"]);
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("epoch      train  1/60") && !seen.iter().any(|l: &String| l.contains("submitting it again")) {
            assert!(cluster.kill_jobs() > 0, "the job's processes were found");
        }
        seen.push(line);
    }
    let status = child.wait().unwrap();
    let out = seen.join("\n");
    assert!(status.success(), "{out}");
    assert!(out.contains("without a result; submitting it again"), "{out}");
    assert!(out.contains("epoch      train  60/60"), "{out}");

    // Nodes with kimcnn installed: jobs run it, and nothing is shipped.
    let installed = common::bin();
    let yaml = text.replace("pending_timeout: 10}", &format!("pending_timeout: 10, kimcnn: '{}'}}", installed.display()));
    p.write("pipeline.yaml", &yaml);
    p.run_cmd(cmd(&p, &token, &["run", "--executor", "ray", "--force", "vocab"])).ok();
    let vocab_jobs: Vec<_> = cluster.listing().into_iter().filter(|j| j["metadata"]["kimcnn_stage"] == "vocab").collect();
    let last = vocab_jobs.iter().max_by_key(|j| j["start_time"].as_u64()).unwrap();
    assert!(last["entrypoint"].as_str().unwrap().starts_with(&format!("'{}' ray-job ", installed.display())), "{last}");
    assert!(last["runtime_env"].as_object().is_none_or(|e| !e.contains_key("working_dir")), "{last}");
}
