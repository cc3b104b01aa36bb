#!/usr/bin/env bash
# Kim's MR protocol (10 folds x 4 variants, and the unknown-word init
# comparison) on the GPU machine, through the device tool, with
# target/release/kimcnn{,-torch} and bench/out/gpu-mr carried. Metrics are
# copied to $OUT as they finish, so a run cut short still reports.
set -uo pipefail
ROOT=$(pwd)
export LD_LIBRARY_PATH="$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib"
BIN=$ROOT/target/release/kimcnn
cd bench/out/gpu-mr
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
