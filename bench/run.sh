#!/usr/bin/env bash
# `make bench`: every benchmark, each against its baseline measured in the
# same run on the same machine. Results: bench/out/*.json and *.md, assembled
# by bench/report.py into bench/out/BENCHMARKS.generated.md (the source of
# BENCHMARKS.md's tables). Every script works in a scratch directory ($WORK)
# and writes only its results into bench/out/; baseline tools go to a
# per-user cache, not the repo.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ beside the scripts
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/kimcnn
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kimcnn
OUT=$ROOT/bench/out
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kimcnn-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [ ! -x "$CACHE/bench-venv/bin/dvc" ]; then
  echo "installing DVC (baseline) into $CACHE/bench-venv"
  python3 -m venv "$CACHE/bench-venv"
  "$CACHE/bench-venv/bin/pip" install --quiet --disable-pip-version-check dvc
fi
if [ ! -x "$CACHE/bench-venv/bin/aws" ]; then
  echo "installing the aws CLI (baseline) into $CACHE/bench-venv"
  "$CACHE/bench-venv/bin/pip" install --quiet --disable-pip-version-check awscli
fi
if [ ! -x "$CACHE/bench-tools/bin/b3sum" ]; then
  echo "installing b3sum (baseline) into $CACHE/bench-tools"
  cargo install --quiet b3sum --root "$CACHE/bench-tools"
fi

python3 "$ROOT/bench/backbone.py" \
  --kimcnn "$BIN" \
  --dvc "$CACHE/bench-venv/bin/dvc" \
  --b3sum "$CACHE/bench-tools/bin/b3sum" \
  --project "$ROOT" \
  --work "$WORK" \
  --out "$OUT/backbone"

# Embed stage on a synthetic GoogleNews-sized word2vec binary (3.6 GB), against gensim.
if [ ! -x "$CACHE/gensim-venv/bin/python" ] || ! "$CACHE/gensim-venv/bin/python" -c "import gensim" 2>/dev/null; then
  echo "installing gensim (baseline) into $CACHE/gensim-venv"
  python3 -m venv "$CACHE/gensim-venv"
  "$CACHE/gensim-venv/bin/pip" install --quiet --disable-pip-version-check gensim
fi
python3 "$ROOT/bench/embed.py" \
  --kimcnn "$BIN" \
  --gensim-python "$CACHE/gensim-venv/bin/python" \
  --work "$WORK" \
  --out "$OUT/embed"

# Training throughput and accuracy against the reference PyTorch implementation (same machine, same run).
TORCH_PY=${VENV:-$CACHE/torch-2.11.0}/bin/python
"$TORCH_PY" -c "import numpy, pandas" 2>/dev/null || "${VENV:-$CACHE/torch-2.11.0}/bin/pip" install --quiet --disable-pip-version-check numpy pandas
python3 "$ROOT/bench/train.py" \
  --kimcnn "$BIN" \
  --python "$TORCH_PY" \
  --shared "$ROOT/../shared" \
  --work "$WORK" \
  --out "$OUT/train" \
  --epochs "${TRAIN_BENCH_EPOCHS:-5}" \
  --reps "${TRAIN_BENCH_REPS:-3}"
# The same in the same numerics on both sides: kimcnn in `fast` (libtorch's default kernels, as the reference).
python3 "$ROOT/bench/train.py" \
  --kimcnn "$BIN" \
  --python "$TORCH_PY" \
  --shared "$ROOT/../shared" \
  --work "$WORK" \
  --out "$OUT/train_fast" \
  --kimcnn-numerics fast \
  --predict-sentences 0 \
  --epochs "${TRAIN_BENCH_EPOCHS:-5}" \
  --reps "${TRAIN_BENCH_REPS:-3}"

# Where a training step's time goes: perf samples of the worker by library and symbol (perf from
# Debian's linux-perf, installed where missing), and the convolution in three formulations.
if ! command -v perf >/dev/null; then
  echo "installing linux-perf (bench/step_profile.py)"
  { apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; } || echo "no perf: bench/step_profile.py fails below"
fi
python3 "$ROOT/bench/step_profile.py" \
  --kimcnn "$BIN" \
  --python "$TORCH_PY" \
  --shared "$ROOT/../shared" \
  --work "$WORK" \
  --out "$OUT/step_profile"

# Push and pull to a local S3 server (s3s-fs), against `aws s3 sync` of the same files.
python3 "$ROOT/bench/remote.py" \
  --kimcnn "$BIN" \
  --server "${S3_SERVER:-$CACHE/s3s-tools/bin/s3s-fs}" \
  --aws "$CACHE/bench-venv/bin/aws" \
  --work "$WORK" \
  --out "$OUT/remote"

# The Ray executor's overhead per stage against running it here (a one-node Ray head and s3s-fs on loopback).
# (Named ray_stages.py: a bench/ray.py would shadow the ray package for study.py and tuner_overhead.py beside it.)
make -s -C "$ROOT" check-ray
python3 "$ROOT/bench/ray_stages.py" \
  --kimcnn "$BIN" \
  --ray "$CACHE/ray-2.60.0/bin/ray" \
  --server "${S3_SERVER:-$CACHE/s3s-tools/bin/s3s-fs}" \
  --shared "$ROOT/../shared" \
  --work "$WORK" \
  --out "$OUT/ray"

# Reproducible numerics: which kernel pins change a model's bytes, the same bytes on
# other CPUs (emulated by qemu-user, installed from Debian where missing), and the cost.
if ! command -v qemu-x86_64 >/dev/null; then
  echo "installing qemu-user (emulated CPUs for bench/numerics.py)"
  { apt-get update -qq && apt-get install -y -qq qemu-user >/dev/null; } || echo "no qemu-user: the other-CPU rows are skipped"
fi
python3 "$ROOT/bench/numerics.py" \
  --kimcnn "$BIN" \
  --project "$ROOT" \
  --shared "$ROOT/../shared" \
  --work "$WORK" \
  --out "$OUT/numerics"

# Hyper-parameter studies: `kimcnn tune` against the reference run as a sequential grid and Ray Tune
# (bench/study.py), and the tuner's overhead per trial against Optuna and Ray Tune (bench/tuner_overhead.py).
# The baselines go to a cached venv that imports the torch venv's packages through a .pth file (torch,
# numpy and pandas are not installed twice, and the torch venv is left as `make` made it). The study's
# default budgets {2,3,4,6} keep the origin project's 1:1.5:2:3 shape at a fifth of its epochs (about a
# quarter hour on 2 quiet cores); STUDY_BENCH_BUDGETS=10,15,20,30 runs the origin's own (about an hour).
TUNE_VENV=$CACHE/tune-venv
TUNE_PY=$TUNE_VENV/bin/python
if ! "$TUNE_PY" -c "import ray, optuna, torch, pandas, pyarrow; assert ray.__version__ == '2.60.0' and optuna.__version__ == '5.0.0'" 2>/dev/null; then
  echo "installing ray[tune] 2.60.0 and optuna 5.0.0 (baselines) into $TUNE_VENV"
  rm -rf "$TUNE_VENV"
  "$TORCH_PY" -m venv "$TUNE_VENV"
  "$TORCH_PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
    > "$("$TUNE_PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/kimcnn-torch.pth"
  "$TUNE_VENV/bin/pip" install --quiet --disable-pip-version-check "ray[tune]==2.60.0" "optuna==5.0.0"
fi
"$TUNE_PY" "$ROOT/bench/study.py" \
  --kimcnn "$BIN" \
  --python "$TORCH_PY" \
  --shared "$ROOT/../shared" \
  --work "$WORK" \
  --out "$OUT/study" \
  --budgets "${STUDY_BENCH_BUDGETS:-2,3,4,6}"
# Search quality on a real MR space: TPE against random search over seeds (studies on the grid's
# store, every trial a cache hit), and ASHA against the full grid (about 10 minutes on 2 cores).
"$TUNE_PY" "$ROOT/bench/search_quality.py" \
  --kimcnn "$BIN" \
  --shared "$ROOT/../shared" \
  --work "$WORK" \
  --out "$OUT/search_quality"
python3 "$ROOT/bench/tuner_overhead.py" \
  --python "$TUNE_PY" \
  --kimcnn "$BIN" \
  --work "$WORK" \
  --out "$OUT/tuner_overhead"
# The report's costs: t-SNE (2,000 and 20,000 Subj words) against scikit-learn's TSNE, and report
# generation for `make paper`'s 93 runs and a 500-trial study (bench/report_bench.py, about 15 minutes).
if ! "$TUNE_PY" -c "import sklearn" 2>/dev/null; then
  echo "installing scikit-learn (baseline) into $TUNE_VENV"
  "$TUNE_VENV/bin/pip" install --quiet --disable-pip-version-check scikit-learn
fi
"$TUNE_PY" "$ROOT/bench/report_bench.py" \
  --kimcnn "$BIN" \
  --shared "$ROOT/../shared" \
  --work "$WORK" \
  --out "$OUT/report"
# word2vec training speed against gensim 4.4 on NSMC's reviews (the same tokens, params, one thread).
make -s -C "$ROOT" check-py-tools
"${XDG_CACHE_HOME:-$HOME/.cache}/kimcnn/py-tools/bin/python" "$ROOT/bench/word2vec.py" \
  --kimcnn "$BIN" \
  --python "${XDG_CACHE_HOME:-$HOME/.cache}/kimcnn/py-tools/bin/python" \
  --shared "$ROOT/../shared" \
  --work "$WORK" \
  --out "$OUT/word2vec"
# The page shows the study benchmark's running times with:
#   kimcnn report --set 'report.study_benchmark=bench/out/study.json'

# One file with every section and the run's date, machine and commit.
python3 "$ROOT/bench/report.py" --out-dir "$OUT"
