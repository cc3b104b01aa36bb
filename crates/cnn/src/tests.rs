//! The worker protocol against stand-in workers (shell scripts): progress,
//! each kind of result, and a crash. No libtorch needed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

use kimcnn_stage::{DynKind, Env};

use super::*;

/// Runs `train` with a stand-in worker whose body is `script`; returns the
/// outcome and the progress seen.
fn with_worker(script: &str) -> (Result<RunInfo, StageError>, Vec<Progress>) {
    with_worker_stopping(script, false)
}

/// [`with_worker`]; `stop`: ask the run to stop at its first progress line.
fn with_worker_stopping(script: &str, stop: bool) -> (Result<RunInfo, StageError>, Vec<Progress>) {
    let d = tempfile::tempdir().unwrap();
    let worker = d.path().join("worker.sh");
    std::fs::write(&worker, format!("#!/bin/sh\nJOB=\"$2\"\nRESULT=$(sed -n 's/.*\"result\": \"\\(.*\\)\".*/\\1/p' \"$JOB\")\n{script}\n"))
        .unwrap();
    std::fs::set_permissions(&worker, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::env::set_var("KIMCNN_TORCH", &worker);
    let env = Env { project_dir: d.path().into(), store: kimcnn_store::Store::open(d.path().join("store")).unwrap() };
    let seen = Mutex::new(Vec::new());
    let stop_flag = std::sync::atomic::AtomicBool::new(false);
    let progress = |p: Progress| {
        seen.lock().unwrap().push(p);
        if stop {
            stop_flag.store(true, Ordering::SeqCst);
        }
    };
    let job = Job {
        stage: "train.x",
        inputs: BTreeMap::new(),
        outputs: BTreeMap::new(),
        scratch: d.path(),
        resources: Resources::default(),
        device: Some("cpu"),
        env: &env,
        progress: &progress,
        stop: &stop_flag,
        state: &d.path().join("state"),
        trials: &kimcnn_stage::NoTrials,
    };
    let planned =
        DynKind::plan(&TrainKind, &serde_json::json!({"dataset": "x", "epochs": 2}), &[], &["tokens", "vocab", "embeddings"], None)
            .unwrap();
    let out = DynKind::run(&TrainKind, &planned.params, &job);
    (out, seen.into_inner().unwrap())
}

#[test]
fn results_progress_and_crashes() {
    let row = r#"{"row":{"epoch":1,"train_loss":0.5,"train_accuracy":0.7,"dev_loss":0.4,"dev_accuracy":0.75,"test_accuracy":0.7},"timing":{"epoch":1,"seconds":1.0,"sentences_per_s":200.0}}"#;
    let (out, seen) = with_worker(&format!(
        "echo 'kimcnn-progress {row}'\necho noise\necho '{{\"outcome\": \"done\", \"device\": \"cpu\"}}' > \"$RESULT\""
    ));
    let info = out.unwrap();
    assert_eq!((info.device.as_deref(), info.ran_with.len()), (Some("cpu"), 0));
    assert!(info.peak_rss_bytes.is_some_and(|b| b > 0), "the worker's peak memory is measured");
    let (out, _) = with_worker(
        "echo '{\"outcome\": \"done\", \"device\": \"cpu\", \"numerics\": {\"mode\": \"reproducible\", \"isa\": \"avx2\", \"torch\": \"2.11.0\", \"mkl\": \"MKL 2024\"}}' > \"$RESULT\"",
    );
    let facts = out.unwrap().ran_with;
    assert_eq!((facts["numerics"].as_str(), facts["isa"].as_str(), facts["torch"].as_str()), ("reproducible", "avx2", "2.11.0"));
    assert_eq!(seen.len(), 1);
    let Progress::Steps { unit, done, total, message, metrics } = &seen[0] else { panic!("{seen:?}") };
    assert_eq!((*unit, *done, *total, message.as_str()), ("epoch", 1, 2, "loss 0.5000  dev 75.0%  200 sent/s"));
    let names: Vec<&str> = metrics.keys().map(String::as_str).collect();
    let mut declared = TrainKind::METRICS.to_vec();
    declared.sort();
    assert_eq!(names, declared, "every declared metric is reported");
    assert_eq!((metrics["accuracy"], metrics["test_accuracy"], metrics["time_this_iter_s"]), (0.75, 0.7, 1.0));

    // Asked to stop at its first epoch, a worker that would train for a
    // minute more is killed at once, and the run says it was stopped.
    let t0 = std::time::Instant::now();
    let (out, seen) = with_worker_stopping(&format!("echo 'kimcnn-progress {row}'\nexec sleep 60"), true);
    assert_eq!(out.unwrap_err(), StageError::Stopped("stopped after epoch 1".into()));
    assert_eq!(seen.len(), 1);
    assert!(t0.elapsed().as_secs() < 30, "the worker was not stopped promptly");

    let (out, _) = with_worker("echo '{\"outcome\": \"diverged\", \"epoch\": 1, \"batch\": 4, \"loss\": \"NaN\"}' > \"$RESULT\"; exit 1");
    assert_eq!(out.unwrap_err(), StageError::Diverged { epoch: 1, batch: 4, loss: "NaN".into() });
    let (out, _) = with_worker("echo '{\"outcome\": \"bad_input\", \"message\": \"class `meh` is not in train\"}' > \"$RESULT\"; exit 1");
    assert_eq!(out.unwrap_err(), StageError::BadInput("class `meh` is not in train".into()));

    let (out, _) = with_worker("printf '{\"outcome\": \"do' > \"$RESULT\"; kill -KILL $$");
    assert_eq!(
        out.unwrap_err(),
        StageError::Crashed("the torch worker was killed by signal 9 (SIGKILL, out of memory?)".into()),
        "half a result is none"
    );
    let (out, _) = with_worker("echo 'libtorch: out of memory' >&2; kill -SEGV $$");
    let e = out.unwrap_err();
    assert_eq!(e.label(), "crashed");
    assert_eq!(e.to_string(), "the torch worker was killed by signal 11 (SIGSEGV); its last output: libtorch: out of memory");
    let (out, _) = with_worker("echo \"thread 'main' panicked at src/x.rs:1\" >&2; exit 101");
    assert_eq!(
        out.unwrap_err(),
        StageError::Crashed(
            "the torch worker exited with status 101 without a result; its last output: thread 'main' panicked at src/x.rs:1".into()
        )
    );
}

#[test]
fn the_device_is_a_param_outside_the_key_and_asks_for_a_gpu() {
    // Which device is not in the params (nor the key); that a GPU computes in fast numerics is.
    let raw = serde_json::json!({"dataset": "mr", "device": "cuda:1"});
    let ins = ["tokens", "vocab", "embeddings"];
    let a = DynKind::plan(&TrainKind, &raw, &[], &ins, None).unwrap();
    let b = DynKind::plan(&TrainKind, &serde_json::json!({"dataset": "mr", "numerics": "fast"}), &[], &ins, Some("cpu")).unwrap();
    let c = DynKind::plan(&TrainKind, &serde_json::json!({"dataset": "mr"}), &[], &ins, Some("cuda")).unwrap();
    let d = DynKind::plan(&TrainKind, &serde_json::json!({"dataset": "mr"}), &[], &ins, Some("cpu")).unwrap();
    assert_eq!(a.params, b.params);
    assert_eq!(a.params, c.params);
    assert_eq!((a.params["numerics"].as_str(), d.params["numerics"].as_str()), (Some("fast"), Some("reproducible")));
    assert_eq!((a.device.as_deref(), a.resources.gpus, b.device.as_deref(), b.resources.gpus), (Some("cuda:1"), 1, Some("cpu"), 0));
    assert_eq!(a.params["rand_a"], 0.25, "Kim's CNN-rand init by default");
    let e = DynKind::plan(&TrainKind, &raw, &[], &["tokens", "vocab"], None).unwrap_err();
    assert!(e.contains("`embeddings` is missing"), "{e}");
    let e = DynKind::plan(&EvaluateKind, &serde_json::json!({"device": "tpu"}), &[], &["model", "tokens", "vocab"], None).unwrap_err();
    assert_eq!(e, "param `device` must be auto, cpu, cuda or cuda:N, found `tpu`");
}
