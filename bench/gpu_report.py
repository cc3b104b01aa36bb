"""Turns bench/gpu.sh's results.tar (one run on the GPU machine) into
bench/out/gpu.md and gpu.json: the machine, TREC's four variants, the study
whose trials share the GPU (parallel 1 against 8), MR's 10 folds, and the
cross-machine check of reproducible numerics. For that check it trains the
same TREC CNN-static here (reproducible numerics, one thread, in a scratch
copy of bench/out/gpu-projects/gpu) and compares the model's hash with the
one the GPU machine's CPU computed.

Usage: python3 bench/gpu_report.py --results DIR_OR_TAR [--kimcnn target/release/kimcnn] [--out bench/out/gpu]
"""
import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
import provenance  # noqa: E402  (bench/provenance.py)

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ["rand", "static", "non-static", "multichannel"]
KIM = {"mr": {"rand": 76.1, "static": 81.0, "non-static": 81.5, "multichannel": 81.1},
       "trec": {"rand": 91.2, "static": 92.8, "non-static": 93.6, "multichannel": 92.2}}


def model_hash(lock: Path, stage: str) -> str:
    lines = lock.read_text().splitlines()
    at = lines.index(f"  {stage}:")
    for line in lines[at + 1:]:
        if line.startswith("      model: "):
            return line.split(": ", 1)[1].strip()
        if line.startswith("  ") and not line.startswith("   "):
            break
    raise SystemExit(f"{lock}: no model output for {stage}")


def results_dir(path: Path, tmp: Path) -> Path:
    if path.is_dir():
        return path / "gpu-results" if (path / "gpu-results").is_dir() else path
    with tarfile.open(path) as t:
        t.extractall(tmp, filter="data")
    return tmp / "gpu-results"


def load(d: Path, pattern: str):
    return {p.name: json.loads(p.read_text()) for p in sorted(d.glob(pattern))}


def local_cpu_hash(kimcnn: str, work: Path):
    """TREC CNN-static, reproducible numerics, one thread, here."""
    shutil.copytree(ROOT / "bench/out/gpu-projects/gpu", work / "cpu-trec", ignore=shutil.ignore_patterns("artifacts", "pipeline.lock"))
    t0 = time.monotonic()
    subprocess.run([kimcnn, "run", "train.static", "--device", "cpu", "--jobs", "1"], cwd=work / "cpu-trec", check=True,
                   stdout=subprocess.DEVNULL)
    return model_hash(work / "cpu-trec/pipeline.lock", "train.static"), time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True, help="results.tar from bench/gpu.sh, or the folder it unpacks to")
    ap.add_argument("--kimcnn", default=str(ROOT / "target/release/kimcnn"))
    ap.add_argument("--out", default=str(ROOT / "bench/out/gpu"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpu-report-") as tmp:
        tmp = Path(tmp)
        r = results_dir(Path(a.results), tmp)
        machine = (r / "machine.txt").read_text().strip().splitlines()
        doctor = json.loads((r / "doctor.json").read_text())
        md = []
        gpu = machine[0].split(",")[0]
        cpu = next((m.split(":", 1)[1].strip() for m in machine if m.startswith("Model name")), "unknown CPU")
        cores = next((m.split(":", 1)[1].strip() for m in machine if m.startswith("CPU(s)")), "?")
        torch = next((m for m in machine if m.startswith("torch ")), "torch ?")
        vendor = next((m.split(":", 1)[1].strip() for m in machine if m.startswith("Vendor ID")), "?")
        isa = next((m.split(":", 1)[1].strip() for m in machine if m.startswith("ISA:")), "?")
        md += [f"One run of `bench/gpu.sh` through the device tool on {gpu} ({cpu}, {cores} CPUs, {torch}); "
               f"`kimcnn doctor` there: CUDA {'available' if doctor['cuda_available'] else 'NOT available'}, "
               f"{doctor['cuda_devices']} device(s), its tiny net trained on {doctor['device']} (loss {doctor['loss_first']:.3f} -> {doctor['loss_last']:.3f}). "
               "GPU runs train in fast numerics (GPU kernels are not bit-stable across cards); data: "
               "`bench/gpu_prepare.py`'s projects (GloVe 6B 50-d cut to each data set's tokens, clitics kept, "
               "the unknown-word range a = 1.1156 as computed on the whole GloVe file).", ""]

        # Reproducible numerics on another CPU.
        there = model_hash(r / "cpu-trec.lock", "train.static") if (r / "cpu-trec.lock").exists() else None
        there_s = next((ln.split()[1] for ln in (r / "cpu-trec.txt").read_text().splitlines() if ln.startswith("seconds ")), "?")
        here, here_s = local_cpu_hash(a.kimcnn, tmp)
        same = there == here
        md += ["**Reproducible numerics on the GPU machine's CPU:** TREC CNN-static, 25 epochs, one thread, "
               f"`--device cpu`: model `{(there or 'none')[:16]}` there ({vendor}, {isa}; {there_s} s) and `{here[:16]}` here "
               f"({here_s:.0f} s, {provenance.cpu_model()}): **{'the same bytes' if same else 'DIFFERENT bytes'}**.", ""]

        # TREC.
        trec = load(r / "trec", "evaluate.*.metrics.json")
        md += ["TREC on the GPU, the four variants at once, 25 epochs, one run each, test accuracy % (Kim 2014 after the slash):", "",
               "| variant | accuracy | best-dev epoch |", "|---|---|---|"]
        for v in VARIANTS:
            m = trec.get(f"evaluate.{v}.metrics.json")
            md.append(f"| {v} | {100 * m['accuracy']:.1f} / {KIM['trec'][v]} | {m['best_epoch']} |" if m else f"| {v} | not run | |")
        t = next((ln for ln in (r / "trec.txt").read_text().splitlines() if re.match(r"\d+ ran, ", ln)), "")
        md += ["", f"`kimcnn run` said: {t.strip()}" if t else "", ""]

        # The study.
        runs = {}
        for ln in (r / "study.txt").read_text().splitlines():
            f = ln.split()
            runs[int(f[1])] = {"rc": int(f[3]), "seconds": float(f[5])}
        md += ["A study sharing the GPU: MR fold 0, variant x pad (8 trials), epoch budgets 2, 3, 4, 6 (each trial trains 6 epochs), "
               "grid, from one upstream (tokenize, vocab, embed computed once, copied), so no trial is a cache hit:", "",
               "| parallel | seconds | speed-up | best (dev accuracy) | its test accuracy |", "|---|---|---|---|---|"]
        for n, run in sorted(runs.items()):
            b = r / f"study-{n}.best.json"
            best = json.loads(b.read_text()) if b.exists() else None
            cfg = ", ".join(f"{k} {v}" for k, v in best["config"].items()) if best else "failed"
            speedup = f"{runs[1]['seconds'] / run['seconds']:.2f}x" if 1 in runs else ""
            md.append(f"| {n} | {run['seconds']:.1f} | {speedup} | {cfg} ({100 * best['value']:.1f}) | "
                      f"{100 * best['test_accuracy']:.1f} |" if best else f"| {n} | {run['seconds']:.1f} | | failed (rc {run['rc']}) | |")
        md.append("")

        # MR's folds.
        mr = load(r / "mr", "evaluate.*.metrics.json")
        tail = (r / "mr.txt").read_text().strip().splitlines()[-1].split()
        md += [f"MR, Kim's protocol on the GPU: 10-fold CV, 25 epochs, {tail[5]} trainings at a time, "
               f"{len(mr)} of 40 evaluated in {float(tail[3]):.0f} s (the run stops at the script's deadline), "
               "test accuracy %, mean ± sd over the folds done (Kim 2014 after the slash):", "",
               "| variant | folds | accuracy | range | best-dev epochs |", "|---|---|---|---|---|"]
        table = {}
        for v in VARIANTS:
            ms = [m for k, m in mr.items() if k.startswith(f"evaluate.{v}.fold")]
            accs = [100 * m["accuracy"] for m in ms]
            eps = [m["best_epoch"] for m in ms]
            table[v] = accs
            if len(accs) >= 2:
                md.append(f"| {v} | {len(accs)} | {statistics.mean(accs):.1f} ± {statistics.stdev(accs):.1f} / {KIM['mr'][v]} | "
                          f"{min(accs):.1f}-{max(accs):.1f} | {min(eps)}-{max(eps)} |")
            else:
                md.append(f"| {v} | {len(accs)} | {' '.join(f'{x:.1f}' for x in accs) or '-'} / {KIM['mr'][v]} | | |")
        md.append("")
        versions = provenance.collect(kimcnn=provenance.kimcnn(a.kimcnn), gpu=gpu, gpu_cpu=f"{cpu} ({vendor}; {isa})", gpu_torch=torch)
        md.append(provenance.markdown(versions) + " (GPU machine's figures from its run; the CPU hash here computed now.)")
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        Path(str(out) + ".md").write_text("\n".join(md) + "\n")
        Path(str(out) + ".json").write_text(json.dumps({
            "versions": versions, "reproducible_trec_static": {"gpu_machine_cpu": there, "here": here, "same": same},
            "trec": {k: v["accuracy"] for k, v in trec.items()}, "study": runs, "mr": table}, indent=2) + "\n")
        print("\n".join(md))
        if not same:
            sys.exit("reproducible numerics gave other bytes on the GPU machine's CPU")


if __name__ == "__main__":
    main()
