#!/usr/bin/env bash
# CUDA proof on the GPU machine (prepare with bench/gpu_prepare.py; run through the device tool, with
# target/release/kimcnn{,-torch} and bench/out/gpu carried): libtorch from
# the machine's own torch, `kimcnn doctor`, then TREC with all four variants,
# 25 epochs, on cuda; results and timings into $OUT.
set -euo pipefail
ROOT=$(pwd)
export LD_LIBRARY_PATH="$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib"
BIN=$ROOT/target/release/kimcnn
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
"$BIN" doctor | tee "$OUT/doctor.json"
cd bench/out/gpu
rm -rf artifacts pipeline.lock
/usr/bin/time -v "$BIN" run --device cuda -j 4 2> "$OUT/time.txt" | tee "$OUT/run.txt"
for v in rand static non-static multichannel; do
  cp artifacts/out/train.$v/summary "$OUT/train.$v.summary.json"
  cp artifacts/out/evaluate.$v/metrics "$OUT/evaluate.$v.metrics.json"
done
cp artifacts/out/results/table "$OUT/table.md"
