#!/usr/bin/env bash
# Every GPU check in one run through the device tool (a session has 15
# minutes of device time). Here: `python3 bench/gpu_prepare.py` and the
# release build, its two binaries gzipped into bench/out/gpu-bin (to fit the
# 64 MiB the tool carries: `make gpu-prepare` does both). There: `bash
# bench/gpu.sh` with bench/out/gpu-bin and bench/out/gpu-projects carried.
# It uses the machine's own torch (libtorch_cuda) and writes
# $OUT/results.tar (read by bench/gpu_report.py) and $OUT/log.txt:
#   1. the machine (GPU, CPU) and `kimcnn doctor`;
#   2. on the machine's CPU, in the background: TREC CNN-static in
#      reproducible numerics, one thread (its model hash against this
#      machine's: the same bytes on another x86-64 CPU?);
#   3. TREC, the four variants, 25 epochs, on the GPU, 4 at a time;
#   4. a study sharing the GPU: MR fold 0, 8 trials (variant x pad, budgets
#      2/3/4/6 epochs), with `parallel` 1 and then 8, each from the same
#      upstream (copies of one store, so no trial is a cache hit);
#   5. MR, Kim's 10-fold protocol, four variants, 25 epochs, $GPU_JOBS at a
#      time, until $GPU_DEADLINE seconds after the start: what finished by
#      then is reported as such.
# GPU_DEVICE=cpu GPU_SETS='--set epochs=1' GPU_PARALLEL=8 GPU_DEADLINE=60 OUT=/tmp/o tries
# the script's flow here, without a GPU.
set -uo pipefail
ROOT=$(pwd)
PROJECTS=$ROOT/bench/out/gpu-projects
DEVICE=${GPU_DEVICE:-cuda}
read -r -a SETS <<< "${GPU_SETS:-}"
DEADLINE=${GPU_DEADLINE:-450}
JOBS=${GPU_JOBS:-14}
R=/tmp/gpu-results
W=/tmp/gpu-work
rm -rf "$R" "$W" /tmp/gpu-bin && mkdir -p "$R" "$W" /tmp/gpu-bin "$OUT"
for b in kimcnn kimcnn-torch; do gunzip -c "$ROOT/bench/out/gpu-bin/$b.gz" > "/tmp/gpu-bin/$b" && chmod +x "/tmp/gpu-bin/$b"; done
BIN=/tmp/gpu-bin/kimcnn
export LD_LIBRARY_PATH="$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib"
start=$(date +%s.%N)
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(date +%s.%N)"; }
log() { echo "[$(elapsed "$start") s] $*" | tee -a "$OUT/log.txt"; }
pack() { tar -C /tmp -cf "$OUT/results.tar.tmp" gpu-results && mv "$OUT/results.tar.tmp" "$OUT/results.tar"; }
# A project's metrics and train summaries into $R/<name>/ (as they finish).
collect() {
  mkdir -p "$R/$2"
  for d in "$W/$1"/artifacts/out/evaluate.* "$W/$1"/artifacts/out/train.*; do
    for f in metrics summary; do [ -f "$d/$f" ] && cp "$d/$f" "$R/$2/$(basename "$d").$f.json"; done
  done
}

# 1. The machine.
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  lscpu | grep -E '^(Vendor ID|Model name|CPU\(s\)):'
  echo "ISA: $(grep -o -w -E 'avx2|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  python3 -c 'import torch; print("torch", torch.__version__)'; } > "$R/machine.txt" 2>&1
"$BIN" doctor > "$R/doctor.json" 2>&1
rc=$?
log "machine: $(head -1 "$R/machine.txt"); doctor rc=$rc"

# 2. CPU reproducibility, in the background.
cp -r "$PROJECTS/gpu" "$W/cpu-trec"
( cd "$W/cpu-trec" && t0=$(date +%s.%N) \
  && "$BIN" run train.static --device cpu --jobs 1 > "$R/cpu-trec.txt" 2>&1 \
  && echo "seconds $(elapsed "$t0")" >> "$R/cpu-trec.txt" \
  && cp pipeline.lock "$R/cpu-trec.lock"
  "$BIN" show train.static/model > "$R/cpu-trec.model.json" 2>&1 ) &
cpu=$!

# 3. TREC on the GPU.
cp -r "$PROJECTS/gpu" "$W/trec"
t0=$(date +%s.%N)
(cd "$W/trec" && "$BIN" run --device "$DEVICE" --jobs 4 "${SETS[@]}" > "$R/trec.txt" 2>&1)
log "TREC, 4 variants on $DEVICE: rc=$? in $(elapsed "$t0") s"
collect trec trec
pack

# 4. The study, parallel 1 and 8, from one upstream.
cp -r "$PROJECTS/gpu-mr" "$W/study"
(cd "$W/study" && "$BIN" run embed tokenize vocab --jobs 4 > "$R/study-upstream.txt" 2>&1)
for n in ${GPU_PARALLEL:-1 8}; do
  cp -r "$W/study" "$W/study-$n"
  t0=$(date +%s.%N)
  (cd "$W/study-$n" && "$BIN" tune study --device "$DEVICE" --set "study.parallel=$n" --jobs 16 > "$R/study-$n.txt" 2>&1)
  rc=$?
  s=$(elapsed "$t0")
  echo "parallel $n rc $rc seconds $s" >> "$R/study.txt"
  cp "$W/study-$n/artifacts/out/study/best" "$R/study-$n.best.json" 2>/dev/null
  cp "$W/study-$n/artifacts/out/study/trials" "$R/study-$n.trials.parquet" 2>/dev/null
  log "study, parallel $n: rc=$rc in $s s"
  pack
done

# 5. MR 10 folds until the deadline.
cp -r "$PROJECTS/gpu-mr" "$W/mr"
t0=$(date +%s.%N)
(cd "$W/mr" && exec "$BIN" run results --device "$DEVICE" --jobs "$JOBS" "${SETS[@]}" > "$R/mr.txt" 2>&1) &
mr=$!
while kill -0 $mr 2>/dev/null; do
  sleep 10
  collect mr mr
  if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$(elapsed "$start")" "$DEADLINE"; then
    log "MR: deadline reached, stopping the run"
    kill -INT $mr; sleep 5; kill $mr 2>/dev/null
    break
  fi
  pack
done
wait $mr; rc=$?
collect mr mr
echo "rc $rc seconds $(elapsed "$t0") jobs $JOBS deadline $DEADLINE" >> "$R/mr.txt"
log "MR: rc=$rc, $(ls "$R"/mr/evaluate.*.metrics.json 2>/dev/null | wc -l) of 40 evaluated in $(elapsed "$t0") s"

# The CPU run should long be done; give it a minute at most.
for _ in $(seq 60); do kill -0 $cpu 2>/dev/null || break; sleep 1; done
kill $cpu 2>/dev/null
log "CPU TREC static (reproducible): $(tail -1 "$R/cpu-trec.txt")"
pack
