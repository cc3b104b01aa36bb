#!/usr/bin/env python3
"""Reproducible numerics: which libraries' kernel dispatch changes a model's
bytes, whether the reproducible mode gives the same bytes on other CPUs, and
what it costs. Part of `make bench`; writes OUT.json and OUT.md.

1. ISA pins, one at a time, on `train.trec.static` (fast numerics, so the
   worker runs with exactly the environment given): the weights' hash per
   setting, against the default.
2. Other CPUs: the same tiny model trained natively and under qemu-user
   emulating an AVX2-only Intel CPU (Haswell) and an AMD one (EPYC-Rome), in
   reproducible and in fast numerics. Skipped where `qemu-x86_64` is missing.
3. Cost: `train.trec.static` and `train.trec.non-static` in fast and in
   reproducible numerics, alternating, medians over --reps runs.
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # nothing written beside the bench scripts
import provenance  # noqa: E402  (bench/provenance.py)

PINS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT"}
PIN_KEYS = list(PINS) + ["MKL_ENABLE_INSTRUCTIONS"]


def weights_hash(model: Path) -> str:
    """SHA-256 of a safetensors file's tensor bytes (its metadata, which names the mode, left out)."""
    b = model.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    return hashlib.sha256(b[8 + n :]).hexdigest()[:12]


def clean_env(extra):
    env = {k: v for k, v in os.environ.items() if k not in PIN_KEYS}
    env.update(extra)
    return env


class Project:
    """A scratch project: a pipeline, its own store, run through the kimcnn binary."""

    def __init__(self, kimcnn, root: Path, pipeline: str, mirror: str):
        self.kimcnn, self.root = str(Path(kimcnn).resolve()), root
        self.worker = str(Path(self.kimcnn).with_name("kimcnn-torch"))
        root.mkdir(parents=True, exist_ok=True)
        (root / "pipeline.yaml").write_text(pipeline)
        self.env = dict(os.environ, KIMCNN_MIRROR=mirror)

    def run(self, *args):
        subprocess.run([self.kimcnn, "run", *args], cwd=self.root, env=self.env, check=True, stdout=subprocess.DEVNULL)

    def job(self, stage, name, **params):
        """A worker job for `stage` (already run once) with params changed; returns its directory."""
        lock = (self.root / "pipeline.lock").read_text()
        at = lock.index(f"\n  {stage}:\n")
        key = next(l.split("key: ")[1] for l in lock[at:].splitlines() if l.strip().startswith("key: "))
        entry = json.loads((self.root / "artifacts/runs" / f"{key}.json").read_text())
        obj = lambda h: str(self.root / "artifacts/objects" / h[:2] / h[2:])
        d = self.root / "jobs" / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        p = dict(entry["params"], **params)
        job = {
            "stage": stage, "params": p, "inputs": {k: obj(v) for k, v in entry["inputs"].items()},
            "outputs": {k: str(d / k) for k in ["model", "history", "summary", "timings"]},
            "threads": 1, "device": "cpu", "result": str(d / "result.json"),
        }
        (d / "job.json").write_text(json.dumps(job))
        return d

    def train(self, d: Path, env, threads=1, wrapper=()):
        job = json.loads((d / "job.json").read_text())
        job["threads"] = threads
        (d / "job.json").write_text(json.dumps(job))
        t0 = time.perf_counter()
        r = subprocess.run([*wrapper, self.worker, "train", str(d / "job.json")], env=env, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"{d.name}: the worker failed: {r.stderr[-500:]}")
        return weights_hash(d / "model"), secs


def toy_pipeline():
    """The tiny data set of tests/cnn.rs (text and vectors written here)."""
    return """stages:
  raw.train: {uses: source, with: {path: train.tsv}}
  raw.test: {uses: source, with: {path: test.tsv}}
  vectors: {uses: source, with: {path: vectors.txt}}
  tokenize: {uses: tokenize, inputs: {train: raw.train.data, test: raw.test.data}, with: {format: tsv}}
  vocab: {uses: vocab, inputs: {tokens: tokenize.tokens}}
  embed: {uses: embed, inputs: {vocab: vocab.vocab, vectors: vectors.data}}
  train:
    uses: train
    matrix: {variant: [static, non-static]}
    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}
    with: {dataset: toy, variant: '${variant}', epochs: 6, batch: 10, maps: 10, seed: 1, pad: bucket}
"""


def write_toy(root: Path):
    words = ["the", "film", "was", "a", "plot", "of", "and", "it", "story", "acting"]

    def tsv(n, off):
        s = "text\tlabel\n"
        for i in range(off, off + n):
            pos = i % 2 == 0
            w = [words[(i * 7 + j) % len(words)] for j in range(4 + i % 6)]
            w.insert(i % len(w), "great" if pos else "awful")
            s += " ".join(w) + "\t" + ("pos" if pos else "neg") + "\n"
        return s

    (root / "train.tsv").write_text(tsv(400, 0))
    (root / "test.tsv").write_text(tsv(60, 1000))
    (root / "vectors.txt").write_text(
        "".join(f"{w} {math.sin(i * 0.37):.6f} {math.cos(i * 0.11):.6f} {i * 0.01:.6f}\n" for i, w in enumerate(words + ["great", "awful"]))
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--project", required=True, help="the kimcnn checkout (its pipeline.yaml is copied, never run in place)")
    ap.add_argument("--shared", required=True, help="the data mirror")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True, help="path prefix for .json and .md")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    work = Path(a.work) / "numerics"
    qemu = shutil.which("qemu-x86_64")
    res = {"cpu": provenance.cpu_model(), "epochs": a.epochs, "reps": a.reps, "kimcnn": provenance.kimcnn(a.kimcnn)}
    res["versions"] = provenance.collect(kimcnn=res["kimcnn"], qemu=provenance.first_line([qemu, "--version"]) if qemu else "not installed")

    # 1. ISA pins on train.trec.static (fast numerics: the worker keeps the given environment).
    trec = Project(a.kimcnn, work / "trec", Path(a.project, "pipeline.yaml").read_text(), str(Path(a.shared).resolve()))
    trec.run("train.trec.static", "train.trec.non-static", "--set", f"train.trec.epochs={a.epochs}")
    settings = [
        ("default (fast)", {}),
        ("ATEN_CPU_CAPABILITY=avx2", {"ATEN_CPU_CAPABILITY": "avx2"}),
        ("ATEN_CPU_CAPABILITY=default", {"ATEN_CPU_CAPABILITY": "default"}),
        ("ONEDNN_MAX_CPU_ISA=AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
        ("MKL_CBWR=AVX2", {"MKL_CBWR": "AVX2"}),
        ("MKL_CBWR=AVX2,STRICT", {"MKL_CBWR": "AVX2,STRICT"}),
        ("ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}),
        ("all three pins (the reproducible mode)", PINS),
    ]
    pins = []
    for label, env in settings:
        d = trec.job("train.trec.static", "pin", numerics="fast")
        h, _ = trec.train(d, clean_env(env))
        pins.append({"setting": label, "weights": h})
    d = trec.job("train.trec.static", "repro", numerics="reproducible")
    h, _ = trec.train(d, clean_env({}))
    pins.append({"setting": "numerics: reproducible (the worker sets the pins itself)", "weights": h})
    d = trec.job("train.trec.static", "t2", numerics="fast")
    h, _ = trec.train(d, clean_env({}), threads=2)
    pins.append({"setting": "default, 2 threads", "weights": h})
    res["pins"] = pins

    # 2. Other CPUs under qemu-user (AVX2 is emulated; AVX-512 is not).
    toy = Project(a.kimcnn, work / "toy", toy_pipeline(), str(Path(a.shared).resolve()))
    write_toy(toy.root)
    toy.run()
    cpus = [("native", ())]
    if qemu:
        cpus += [("qemu Haswell-v4 (Intel, AVX2)", (qemu, "-cpu", "Haswell-v4")), ("qemu EPYC-Rome-v1 (AMD, AVX2)", (qemu, "-cpu", "EPYC-Rome-v1"))]
    cross = []
    for variant in ["static", "non-static"]:
        for mode, env in [("reproducible", PINS), ("fast", {})]:
            row = {"variant": variant, "numerics": mode}
            for name, wrapper in cpus:
                d = toy.job(f"train.{variant}", "x", numerics=mode)
                # The pins set before the worker starts, so it does not re-execute itself (out of the emulator).
                row[name], _ = toy.train(d, clean_env(env), wrapper=wrapper)
            cross.append(row)
    res["cpus"] = [c for c, _ in cpus]
    res["cross"] = cross

    # 3. Cost: fast vs reproducible, alternating which runs first.
    cost = []
    for stage in ["train.trec.static", "train.trec.non-static"]:
        t = {"fast": [], "reproducible": []}
        trec.train(trec.job(stage, "warm", numerics="fast"), clean_env({}))
        for rep in range(a.reps):
            order = ["fast", "reproducible"] if rep % 2 == 0 else ["reproducible", "fast"]
            for mode in order:
                _, secs = trec.train(trec.job(stage, mode, numerics=mode), clean_env({}))
                t[mode].append(secs)
        f, r = statistics.median(t["fast"]), statistics.median(t["reproducible"])
        cost.append({"stage": stage, "fast_s": t["fast"], "reproducible_s": t["reproducible"], "ratio": r / f})
    res["cost"] = cost

    Path(a.out + ".json").write_text(json.dumps(res, indent=2))
    Path(a.out + ".md").write_text(markdown(res))
    print(markdown(res))


def markdown(r):
    out = [f"`bench/numerics.py`, {r['cpu']}, {r['kimcnn']}; TREC {r['epochs']} epochs, 1 thread.\n"]
    base = r["pins"][0]["weights"]
    out.append("| setting (`train.trec.static`) | weights (SHA-256 of the tensors, first 12) | same as default |\n|---|---|---|")
    for p in r["pins"]:
        out.append(f"| {p['setting']} | `{p['weights']}` | {'yes' if p['weights'] == base else 'no'} |")
    out.append("\nThe tiny model of `tests/cnn.rs` on other CPUs (weights hash; qemu-user emulates the CPU, its cpuid and vendor):\n")
    out.append("| variant | numerics | " + " | ".join(r["cpus"]) + " |\n|---|---|" + "---|" * len(r["cpus"]))
    for c in r["cross"]:
        cells = [f"`{c[n]}`" + (" (= native)" if n != "native" and c[n] == c["native"] else "") for n in r["cpus"]]
        out.append(f"| {c['variant']} | {c['numerics']} | " + " | ".join(cells) + " |")
    out.append(f"\nCost (seconds for {r['epochs']} epochs, median of {r['reps']}, alternating):\n")
    out.append("| stage | fast | reproducible | reproducible / fast |\n|---|---|---|---|")
    for c in r["cost"]:
        out.append(
            f"| {c['stage']} | {statistics.median(c['fast_s']):.1f} | {statistics.median(c['reproducible_s']):.1f} | {c['ratio']:.2f}x |"
        )
    out.append("\n" + provenance.markdown(r["versions"]))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
