//! `kimcnn-torch`: the worker that links libtorch. The `kimcnn` CLI stays
//! free of libtorch (fast to start for `run`/`status`) and runs torch work
//! here, one process per stage run:
//!
//! - `kimcnn-torch train JOB.json` / `evaluate JOB.json`: a stage run
//!   ([`kimcnn_schema::worker::WorkerJob`]): an epoch row a line on stdout,
//!   a [`kimcnn_schema::worker::WorkerResult`] in the job's result file.
//! - `kimcnn-torch predict --model M --vocab V [--json]`: sentences on stdin.
//! - `kimcnn-torch smoke [--device D]`: a tiny conv net's loss must fall.
//!
//! Its own package, so that only it links libtorch (its build script gives
//! it an rpath to torch's lib dir, and libtorch_cuda where there is one).

mod numerics;
mod predict;
mod stages;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some(kind @ ("train" | "evaluate")) => stages::run(kind, args.get(1).map(String::as_str)),
        Some("predict") => predict::run(&args[1..]),
        Some("smoke") => smoke::run(&args[1..]),
        _ => Err("usage: kimcnn-torch train|evaluate JOB.json | predict --model M --vocab V [--json] | smoke [--device D]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

mod smoke {
    use tch::nn::{self, Module, OptimizerConfig};
    use tch::{Kind, Tensor};

    /// Trains a tiny conv net on a toy problem for a few Adam steps and prints
    /// a JSON report; fails if the loss does not fall.
    pub fn run(args: &[String]) -> Result<(), String> {
        let device = match args.iter().position(|a| a == "--device").and_then(|i| args.get(i + 1)) {
            Some(d) => kimcnn_train::parse_device(d).map_err(|e| e.to_string())?,
            None => tch::Device::cuda_if_available(),
        };
        tch::manual_seed(0);
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let conv = nn::conv1d(&root / "conv", 1, 8, 3, Default::default());
        let fc = nn::linear(&root / "fc", 8, 2, Default::default());
        // Toy task: does the sequence contain a rising triple? A width-3 filter sees it.
        let xs = Tensor::randn([256, 1, 12], (Kind::Float, device));
        let d = xs.diff(1, -1, None::<Tensor>, None::<Tensor>);
        let rising = d.narrow(-1, 0, 10).gt(0).logical_and(&d.narrow(-1, 1, 10).gt(0)).any_dim(-1, false).squeeze_dim(1);
        let ys = rising.to_kind(Kind::Int64);
        let mut opt = nn::Adam::default().build(&vs, 1e-2).map_err(|e| format!("cannot build the optimizer: {e}"))?;
        let forward = |x: &Tensor| fc.forward(&conv.forward(x).relu().amax([-1].as_slice(), false));
        let mut losses = Vec::new();
        for _ in 0..60 {
            let loss = forward(&xs).cross_entropy_for_logits(&ys);
            opt.backward_step(&loss);
            losses.push(loss.double_value(&[]));
        }
        let (first, last) = (losses[0], losses[losses.len() - 1]);
        let ok = last < first * 0.8;
        println!(
            "{}",
            serde_json::json!({
                "device": kimcnn_train::device_name(device),
                "cuda_available": tch::Cuda::is_available(),
                "cuda_devices": tch::Cuda::device_count(),
                "threads": tch::get_num_threads(),
                "loss_first": first,
                "loss_last": last,
                "ok": ok,
            })
        );
        if ok {
            Ok(())
        } else {
            Err(format!("the tiny conv net's loss did not fall ({first:.4} -> {last:.4}); libtorch is not training correctly"))
        }
    }
}
