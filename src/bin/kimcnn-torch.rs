//! `kimcnn-torch`: the worker that links libtorch. The `kimcnn` CLI stays
//! free of libtorch (fast to start for `run`/`status`) and runs torch work
//! here.
//!
//! `kimcnn-torch smoke [--device cpu|cuda|auto]` trains a tiny conv net on a
//! toy problem for a few Adam steps and prints a JSON report; it exits 1 if
//! the loss does not fall.

use std::process::ExitCode;

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("smoke") => {
            let device = match args.iter().position(|a| a == "--device").and_then(|i| args.get(i + 1)).map(String::as_str) {
                Some("cpu") => Device::Cpu,
                Some("cuda") => Device::Cuda(0),
                _ => Device::cuda_if_available(),
            };
            smoke(device)
        }
        _ => {
            eprintln!("usage: kimcnn-torch smoke [--device cpu|cuda|auto]");
            ExitCode::from(2)
        }
    }
}

fn smoke(device: Device) -> ExitCode {
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
    let mut opt = match nn::Adam::default().build(&vs, 1e-2) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: cannot build the optimizer: {e}");
            return ExitCode::from(1);
        }
    };
    let forward = |x: &Tensor| fc.forward(&conv.forward(x).relu().amax([-1].as_slice(), false));
    let mut losses = Vec::new();
    for _ in 0..60 {
        let loss = forward(&xs).cross_entropy_for_logits(&ys);
        opt.backward_step(&loss);
        losses.push(loss.double_value(&[]));
    }
    let first = losses[0];
    let last = *losses.last().expect("60 steps");
    let ok = last < first * 0.8;
    println!(
        "{{\"device\": \"{device:?}\", \"cuda_available\": {}, \"cuda_devices\": {}, \"threads\": {}, \"loss_first\": {first:.4}, \"loss_last\": {last:.4}, \"ok\": {ok}}}",
        tch::Cuda::is_available(),
        tch::Cuda::device_count(),
        tch::get_num_threads(),
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: the tiny conv net's loss did not fall ({first:.4} -> {last:.4}); libtorch is not training correctly");
        ExitCode::from(1)
    }
}
