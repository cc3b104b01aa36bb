"""Training throughput and accuracy: kimcnn against the reference PyTorch
implementation (../shared/bench/pytorch_kimcnn.py), same machine, same run,
same settings: MR with the reference's exact split (splits/mr_split0.json),
GloVe 50-d, seed 1, the same threads, each run alone. Two cells a variant:

* kimcnn `pad: kim` against the reference's `--pad kim` (the same model: every
  sentence padded to the data set's longest; the reference computes every
  column, kimcnn (train kind 8) packs a batch's sentences into one row with
  pads between them and pools each over its own windows and one window of
  pads alone, which cannot change the result);
* kimcnn `pad: bucket` against the reference's `--pad dynamic`, each side's
  fastest mode (the reference pads each random batch to its own longest
  sentence; kimcnn batches sentences of similar length).

One untimed warm-up run of each side first (1 epoch), then --reps repetitions
(default 3) of every cell, kimcnn and the reference back to back, the side
that goes first alternating from one repetition to the next. A run's figure is
the median over its epochs of training sentences/s (dev scoring excluded, as
both sides time it); a cell's is the median over the repetitions (min-max
shown), and the ratio is of the medians. Also `kimcnn predict` on 100k
sentences (no baseline: the reference has no inference mode). Records the
versions of kimcnn and of the reference. Writes <out>.json and <out>.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # nothing written beside the bench scripts
import provenance  # noqa: E402  (bench/provenance.py)
from mr_data import split0_stages  # noqa: E402  (bench/mr_data.py)

VARIANTS = ["rand", "static", "non-static", "multichannel"]
PADS = {"kim": "kim", "bucket": "dynamic"}  # kimcnn pad -> the reference's --pad it is compared with


def pipeline(shared, epochs, threads, variants, numerics="reproducible"):
    return f"""params: {{seed: 1, epochs: {epochs}}}
stages:
{split0_stages(shared)}  warmup:
    uses: train
    threads: {threads}
    inputs: {{tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}}
    with: {{dataset: mr, variant: static, pad: kim, epochs: 1, seed: '${{seed}}', device: cpu, rand_a: matched, numerics: {numerics}}}
  train:
    uses: train
    threads: {threads}
    matrix: {{variant: {variants}, pad: {list(PADS)}}}
    inputs: {{tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}}
    with: {{dataset: mr, variant: '${{variant}}', pad: '${{pad}}', epochs: '${{epochs}}', seed: '${{seed}}', device: cpu, rand_a: matched, numerics: {numerics}}}
  evaluate:
    uses: evaluate
    matrix: {{variant: {variants}, pad: {list(PADS)}}}
    inputs: {{model: 'train.${{variant}}.${{pad}}.model', tokens: tokenize.tokens, vocab: vocab.vocab}}
"""


def spread(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": xs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--python", required=True, help="a python with torch 2.11, numpy, pandas")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True, help="a fresh directory is made under it for this run")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions of every cell (at least 3 for a reported figure)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--predict-sentences", type=int, default=100_000)
    ap.add_argument("--kimcnn-numerics", choices=["reproducible", "fast"], default="reproducible",
                    help="kimcnn's numerics: reproducible (its default: CPU kernels capped at AVX2) or fast (libtorch's "
                         "default kernels, as the reference runs: the same-numerics pairing)")
    a = ap.parse_args()
    if a.reps < 1:
        ap.error("--reps must be at least 1")
    a.kimcnn = str(Path(a.kimcnn).resolve())  # the runs below change directory
    shared = Path(a.shared).resolve()
    Path(a.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="train-bench-", dir=a.work)).resolve()
    variants = a.variants.split(",")
    ref = shared / "bench/pytorch_kimcnn.py"
    versions = provenance.collect(
        kimcnn=provenance.kimcnn(a.kimcnn),
        reference_script=provenance.script(ref, a.kimcnn),
        reference_python=f"{a.python} (python {provenance.python_version(a.python)}, "
                         f"torch {provenance.python_module(a.python, 'torch')})",
    )
    print(provenance.markdown(versions), flush=True)
    env = dict(os.environ, KIMCNN_MIRROR=str(shared))
    (work / "pipeline.yaml").write_text(pipeline(shared, a.epochs, a.threads, variants, a.kimcnn_numerics))
    out = lambda link: json.loads((work / "artifacts/out" / link).read_text())

    def kimcnn_train(stage, force=True):
        subprocess.run([a.kimcnn, "run", "--jobs", str(a.threads)] + (["--force"] if force else []) + [stage],
                       cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
        try:  # per-epoch rates, where this kimcnn writes them
            rates = [e["sentences_per_s"] for e in out(f"{stage}/timings")["epochs"]]
            return statistics.median(rates), rates
        except (OSError, KeyError, ValueError):
            return out(f"{stage}/summary")["median_train_sentences_per_s"], None

    def reference(variant, pad, epochs, f):
        subprocess.run([a.python, str(ref), "--dataset", "mr", "--variant", variant, "--epochs", str(epochs), "--pad", pad,
                        "--seed", "1", "--threads", str(a.threads), "--data-dir", str(shared / "datasets/kim"),
                        "--vectors", str(shared / "vectors/glove.6B.50d.txt.gz"), "--out", str(f)],
                       check=True, stdout=subprocess.DEVNULL)
        r = json.loads(f.read_text())
        rates = [e["train_sentences_per_s"] for e in r["epochs"]]
        return statistics.median(rates), rates, r

    # Data stages, then the untimed warm-up of each side (1 epoch of CNN-static, kim padding).
    subprocess.run([a.kimcnn, "run", "--jobs", str(a.threads), "embed", "tokenize"], cwd=work, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    kimcnn_train("warmup", force=False)
    (work / "ref").mkdir()
    _, _, r = reference("static", "kim", 1, work / "ref/warmup.json")
    ref_env = f"torch {r['env']['torch']}, numpy {r['env']['numpy']}, python {r['env']['python']}"
    versions["tools"]["reference_env_recorded"] = ref_env

    runs = {f"{v}.{p}": {"kimcnn": [], "reference": [], "kimcnn_epochs": [], "reference_epochs": [],
                         "reference_contended_epochs": [], "order": []} for v in variants for p in PADS}
    last_ref = {}
    for rep in range(a.reps):
        kimcnn_first = rep % 2 == 0
        for v in variants:
            for pad, ref_pad in PADS.items():
                cell = runs[f"{v}.{pad}"]
                for side in (["kimcnn", "reference"] if kimcnn_first else ["reference", "kimcnn"]):
                    if side == "kimcnn":
                        rate, rates = kimcnn_train(f"train.{v}.{pad}")
                    else:
                        rate, rates, r = reference(v, ref_pad, a.epochs, work / f"ref/{v}-{ref_pad}-rep{rep}.json")
                        cell["reference_contended_epochs"].append(r["summary"]["contended_epochs"])
                        last_ref[f"{v}.{pad}"] = r
                    cell[side].append(rate)
                    cell[f"{side}_epochs"].append(rates)
                cell["order"].append("kimcnn first" if kimcnn_first else "reference first")
                print(f"rep {rep + 1}/{a.reps} {v} kimcnn {pad} {cell['kimcnn'][-1]:,.0f} / reference {ref_pad} "
                      f"{cell['reference'][-1]:,.0f} sentences/s", flush=True)
    subprocess.run([a.kimcnn, "run", "--jobs", str(a.threads), "evaluate"], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    res = {"epochs": a.epochs, "threads": a.threads, "reps": a.reps, "versions": versions, "kimcnn_numerics_param": a.kimcnn_numerics,
           "cells": {}}
    numerics = set()
    for v in variants:
        for pad, ref_pad in PADS.items():
            key, cell = f"{v}.{pad}", runs[f"{v}.{pad}"]
            k, r = spread(cell["kimcnn"]), spread(cell["reference"])
            m, s = out(f"evaluate.{key}/metrics"), last_ref[key]["summary"]
            nm = out(f"train.{key}/summary").get("numerics")
            numerics.add(f"{nm.get('mode')}, ISA {nm.get('isa')}, libtorch {nm.get('torch')}" if isinstance(nm, dict)
                         else str(nm or "not recorded"))
            res["cells"][key] = {"variant": v, "kimcnn_pad": pad, "reference_pad": ref_pad, "kimcnn": k, "reference": r,
                                 "ratio_of_medians": k["median"] / r["median"], "order": cell["order"],
                                 "kimcnn_epochs": cell["kimcnn_epochs"], "reference_epochs": cell["reference_epochs"],
                                 "reference_contended_epochs": cell["reference_contended_epochs"],
                                 "test_acc": {"kimcnn": m["accuracy"], "reference": s["test_acc_at_best_dev"]},
                                 "best_epoch": {"kimcnn": m["best_epoch"], "reference": s["best_dev_epoch"]}}

    # Inference: predict on 100k sentences (MR lines, repeated); one untimed run, then --reps timed.
    n = a.predict_sentences
    if n > 0:
        lines = (shared / "datasets/kim/rt-polarity.pos").read_bytes().decode("latin-1").splitlines()
        big = work / "sentences.txt"
        big.write_text("\n".join((lines * (n // len(lines) + 1))[:n]) + "\n")
        model = f"train.{'non-static' if 'non-static' in variants else variants[0]}.kim"
        times = []
        for i in range(a.reps + 1):
            with open(big) as f:
                t0 = time.perf_counter()
                subprocess.run([a.kimcnn, "predict", "--model", model], cwd=work, stdin=f, stdout=subprocess.DEVNULL, check=True)
                if i:
                    times.append(time.perf_counter() - t0)
        res["predict"] = {"model": model, "sentences": n, "seconds": spread(times)}
    res["kimcnn_numerics"] = sorted(numerics)
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")

    rng = lambda c: f"{c['median']:,.0f} ({c['min']:,.0f}-{c['max']:,.0f})"
    md = [f"MR, the reference's split 0 (8,635 train / 960 dev / 1,067 test), GloVe 50-d, {a.epochs} epochs, seed 1, "
          f"{a.threads} threads, runs one at a time. Training sentences/s: per run the median over its epochs; per cell "
          f"the median (min-max) over {a.reps} repetitions, after one untimed warm-up run of each side; kimcnn and the "
          "reference back to back in each repetition, the side going first alternating. Ratio = kimcnn median / "
          "reference median. `kim`: both compute Kim's layout, every sentence padded to the data set's longest (the same model; the "
          "reference computes every column, kimcnn packs each batch's sentences into one row, pads between them, and pools "
          "each over its own windows and one window of pads alone, which cannot change the result); `bucket` / "
          "`dynamic`: each side's fastest mode (kimcnn batches similar lengths, the reference pads each random batch "
          f"to its longest). kimcnn in `numerics: {a.kimcnn_numerics}` ({', '.join(sorted(numerics))}"
          f"{'; its default' if a.kimcnn_numerics == 'reproducible' else '; the same kernels as the reference'}); the reference "
          "with PyTorch's defaults.", "",
          "| variant | padding, kimcnn / reference | reference | kimcnn | ratio | test acc %, reference / kimcnn |",
          "|---|---|---|---|---|---|"]
    for key, c in res["cells"].items():
        md.append(f"| {c['variant']} | {c['kimcnn_pad']} / {c['reference_pad']} | {rng(c['reference'])} | {rng(c['kimcnn'])} | "
                  f"{c['ratio_of_medians']:.2f}x | {100 * c['test_acc']['reference']:.1f} / {100 * c['test_acc']['kimcnn']:.1f} |")
    contended = sum(sum(c["reference_contended_epochs"]) for c in res["cells"].values())
    total = sum(len(e) for c in res["cells"].values() for e in c["reference_epochs"])
    md += ["", f"Test accuracies are single runs (the last repetition), shown to check the settings match, not to rank. "
           f"The reference flagged {contended} of its {total} timed epochs as contended (other processes used > 5% of the machine)."]
    if "predict" in res:
        p, model = res["predict"]["seconds"], res["predict"]["model"]
        md += ["", f"`kimcnn predict` on {n:,} sentences (CNN-{model.split('.')[1]}, kim padding, CPU; no baseline): median "
               f"{p['median']:.1f} s ({p['min']:.1f}-{p['max']:.1f}) over {a.reps} runs after a warm-up, "
               f"{n / p['median']:,.0f} sentences/s (process start and model load included)."]
    md += ["", provenance.markdown(versions)]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
