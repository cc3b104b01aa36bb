//! The client against a real Ray head (Ray 2.60 with the dashboard, from
//! PyPI: `make test` installs it into the per-user cache, or set
//! KIMCNN_RAY to a `ray` executable), started here on loopback with token
//! auth: versions, the token refused or missing, submitting (and a second
//! submission under the same id attaching), listing, logs, a job no node
//! has the CPUs for staying PENDING (even when asked to stop), a job that fails, a
//! working_dir package uploaded and used, a dashboard that is not there.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../../../tests/common/tool.rs"]
mod tool;

use kimcnn_ray::{JobStatus, RayClient, RayError, SubmitRequest, Submitted};

fn ray() -> PathBuf {
    tool::cached_tool("KIMCNN_RAY", "ray-2.60.0/bin/ray")
}

/// A one-node Ray head with token auth, in its own temp dir; its processes are killed when dropped.
struct Head {
    /// The process group of `ray start` and everything it started.
    group: u32,
    dashboard: String,
    token: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Head {
    fn start() -> Head {
        let ray = ray();
        let dir = tempfile::Builder::new().prefix("kr").tempdir_in("/tmp").unwrap();
        let token = format!("kimcnn-test-{}", std::process::id());
        let (port, dash) = (free_port(), free_port());
        let child = Command::new(&ray)
            .args(["start", "--head", "--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats", "--include-dashboard", "true"])
            .args(["--dashboard-host", "127.0.0.1", "--node-ip-address", "127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--dashboard-port={dash}"))
            .arg(format!("--temp-dir={}", dir.path().display()))
            .env("RAY_AUTH_MODE", "token")
            .env("RAY_AUTH_TOKEN", &token)
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ray starts");
        let group = child.id();
        let out = child.wait_with_output().expect("ray start ends");
        // Built before anything can fail: a panic from here on still kills what started.
        let head = Head { group, dashboard: format!("127.0.0.1:{dash}"), token, _dir: dir };
        assert!(out.status.success(), "ray start failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // The dashboard answers a few seconds after `ray start` returns.
        let c = head.client();
        let t0 = Instant::now();
        while let Err(e) = c.versions() {
            assert!(t0.elapsed() < Duration::from_secs(90), "the dashboard did not come up: {e}");
            std::thread::sleep(Duration::from_millis(500));
        }
        head
    }

    fn client(&self) -> RayClient {
        RayClient::new(&self.dashboard, Some(self.token.clone()))
    }
}

impl Drop for Head {
    /// Kills this head's processes only (`ray stop` would stop every Ray of the user's): `ray start`
    /// ran as the leader of a new process group, which every process it started is in.
    fn drop(&mut self) {
        for signal in ["-TERM", "-KILL"] {
            let _ = Command::new("kill").arg(signal).arg("--").arg(format!("-{}", self.group)).output();
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

fn job(id: &str, entrypoint: &str, cpus: f64) -> SubmitRequest {
    SubmitRequest {
        entrypoint: entrypoint.into(),
        submission_id: id.into(),
        entrypoint_num_cpus: cpus,
        entrypoint_num_gpus: 0.0,
        runtime_env: None,
        metadata: Default::default(),
    }
}

fn wait(c: &RayClient, id: &str) -> JobStatus {
    let t0 = Instant::now();
    loop {
        let s = c.job(id).unwrap().status;
        if s.is_terminal() {
            return s;
        }
        assert!(t0.elapsed() < Duration::from_secs(180), "job {id} still {s:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn jobs_on_a_real_ray_head() {
    let head = Head::start();
    let c = head.client();
    assert_eq!(c.versions().unwrap().ray_version, "2.60.0");

    // Auth: no token, a wrong token.
    let e = RayClient::new(&head.dashboard, None).jobs().unwrap_err();
    assert!(matches!(e, RayError::Unauthorized { status: 401, has_token: false, .. }), "{e}");
    let e = RayClient::new(&head.dashboard, Some("wrong".into())).jobs().unwrap_err();
    assert!(matches!(e, RayError::Unauthorized { status: 403, has_token: true, .. }), "{e}");
    assert!(e.to_string().contains("RAY_AUTH_TOKEN") && !e.to_string().contains("wrong"), "{e}");

    // Submit; the same id again attaches.
    assert_eq!(c.submit(&job("t-echo", "echo kimcnn-ray-test", 1.0)).unwrap(), Submitted::New);
    assert_eq!(c.submit(&job("t-echo", "echo another", 1.0)).unwrap(), Submitted::Existing);
    // No node has 64 CPUs: PENDING, saying why, until stopped.
    assert_eq!(c.submit(&job("t-big", "echo never", 64.0)).unwrap(), Submitted::New);
    let ids: Vec<Option<String>> = c.jobs().unwrap().into_iter().map(|j| j.submission_id).collect();
    assert!(ids.contains(&Some("t-echo".into())) && ids.contains(&Some("t-big".into())), "{ids:?}");
    assert_eq!(wait(&c, "t-echo"), JobStatus::Succeeded);
    assert!(c.logs("t-echo").unwrap().contains("kimcnn-ray-test"));
    let big = c.job("t-big").unwrap();
    assert_eq!(big.status, JobStatus::Pending);
    assert!(big.message.unwrap_or_default().contains("waiting for resources"));
    // Ray cannot stop a job that waits for resources (it fails it after 15 minutes): asked to, it
    // is still PENDING. The executor built on this client gives up on such a job itself.
    c.stop("t-big").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(c.job("t-big").unwrap().status, JobStatus::Pending);

    // A failing entrypoint: FAILED with its exit code, its output in the logs.
    c.submit(&job("t-fail", "echo about to fail >&2; exit 3", 1.0)).unwrap();
    assert_eq!(wait(&c, "t-fail"), JobStatus::Failed);
    assert!(c.logs("t-fail").unwrap().contains("about to fail"));
    assert_eq!(c.job("t-fail").unwrap().driver_exit_code, Some(3));

    // A working_dir package: uploaded once, then the job runs in it.
    let name = "_ray_pkg_kimcnn_test.zip";
    assert!(!c.has_package(name).unwrap());
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("payload/hello.txt", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"shipped by kimcnn\n").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    c.upload_package(name, &bytes).unwrap();
    assert!(c.has_package(name).unwrap());
    let mut j = job("t-pkg", "cat payload/hello.txt", 1.0);
    j.runtime_env = Some(serde_json::json!({ "working_dir": format!("gcs://{name}") }));
    c.submit(&j).unwrap();
    assert_eq!(wait(&c, "t-pkg"), JobStatus::Succeeded, "{}", c.logs("t-pkg").unwrap());
    assert!(c.logs("t-pkg").unwrap().contains("shipped by kimcnn"));

    // Unknown job; a dashboard that is not there.
    assert!(matches!(c.job("t-none"), Err(RayError::NoSuchJob(_))));
    let e = RayClient::new(&format!("127.0.0.1:{}", free_port()), None).versions().unwrap_err();
    assert!(matches!(e, RayError::Unreachable { .. }) && e.to_string().contains("ray status"), "{e}");
}
