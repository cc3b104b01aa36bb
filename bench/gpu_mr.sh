#!/usr/bin/env bash
# Kim's 10-fold protocol on the GPU machine, through the device tool, with
# target/release/kimcnn{,-torch} and the project dir carried: bench/out/gpu-mr
# (MR: 4 variants, and the unknown-word init comparison; the default) or
# bench/out/gpu-subj (Subj: 4 variants), given as $1, made by bench/gpu_prepare.py. They hold the data
# files, GloVe cut to the data set's words, and a pipeline.yaml. Metrics are
# copied to $OUT as they finish, so a run cut short still reports.
set -uo pipefail
ROOT=$(pwd)
export LD_LIBRARY_PATH="$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib"
BIN=$ROOT/target/release/kimcnn
cd "${1:-bench/out/gpu-mr}"
rm -rf artifacts pipeline.lock
start=$(date +%s)
"$BIN" run --device cuda -j "${GPU_JOBS:-8}" > "$OUT/run.txt" 2>&1 &
pid=$!
# One tar file (the device tool brings back only a few files).
copy() {
  rm -rf /tmp/m && mkdir -p /tmp/m
  for d in artifacts/out/evaluate.*; do
    [ -f "$d/metrics" ] && cp "$d/metrics" "/tmp/m/$(basename "$d").json"
  done
  for d in artifacts/out/train.*; do
    [ -f "$d/summary" ] && cp "$d/summary" "/tmp/m/$(basename "$d").summary.json"
  done
  tar -C /tmp -cf "$OUT/metrics.tar.tmp" m && mv "$OUT/metrics.tar.tmp" "$OUT/metrics.tar"
}
while kill -0 $pid 2>/dev/null; do sleep 15; copy; done
wait $pid; echo "rc=$? seconds=$(( $(date +%s) - start ))" >> "$OUT/run.txt"
copy
[ -f artifacts/out/results/table ] && cp artifacts/out/results/table "$OUT/table.md"
tail -3 "$OUT/run.txt"
