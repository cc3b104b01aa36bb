"""Where a training step's time goes: `perf record` (software clock, so it works
where the CPU's counters are not exposed) of the `kimcnn-torch` worker while it
trains MR (the reference's split 0, GloVe 50-d, one thread, kimcnn's default
reproducible numerics), its samples summed by shared object and by symbol;
then bench/conv_kernels.py, the same convolution in three formulations, with
and without kimcnn's reproducible kernel pins.

Writes OUT.json and OUT.md. Works in a scratch directory under --work.

Usage: python3 bench/step_profile.py --kimcnn target/release/kimcnn --python TORCH_PY \
    --shared ../shared --work /tmp --out bench/out/step_profile
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance  # noqa: E402  (bench/provenance.py)
from mr_data import INPUTS, split0_stages  # noqa: E402  (bench/mr_data.py)
from numerics import PINS  # noqa: E402  (kimcnn's reproducible pins, for conv_kernels.py's pinned run)


def pipeline(shared, epochs, variants):
    return f"""params: {{seed: 1}}
stages:
{split0_stages(shared)}  train:
    uses: train
    threads: 1
    matrix: {{variant: {variants}}}
    inputs: {INPUTS}
    with: {{dataset: mr, variant: '${{variant}}', pad: kim, epochs: {epochs}, seed: '${{seed}}', device: cpu, rand_a: matched}}
"""


def report(perf, data, sort, limit):
    """(percent, name) rows of `perf report` for the worker, sorted by `sort`."""
    out = subprocess.run([perf, "report", "-i", str(data), "--comm", "kimcnn-torch", "--sort", sort, "--stdio",
                          "--no-children", "-g", "none", "--percent-limit", str(limit)],
                         check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(.*\S)", line)
        if m:
            rows.append((float(m.group(1)), re.sub(r"\s+", " ", m.group(2))))
    return rows


GENERIC = {"cpu_kernel", "cpu_kernel_vec", "cpu_serial_kernel", "binary_kernel_reduce", "binary_kernel_reduce_vec",
           "binary_kernel_reduce_lastdim"}


def short(symbol):
    """A C++ symbol shortened to the kernel it names: ATen's `..._kernel` lambdas and oneDNN's
    `jit_..._t::execute_...` are templates whose full names run to kilobytes."""
    lib, _, name = symbol.partition(" [.] ") if " [.] " in symbol else symbol.partition(" [k] ")
    m = re.search(r"dnnl::impl::cpu::x64::(\w+)::(\w+)", name)
    if m:
        return f"{lib}: {m.group(1)}::{m.group(2)}"
    # The op's own kernel, not the generic loops (cpu_kernel, binary_kernel_reduce_vec ...) it is passed to.
    ops = [k for k in re.findall(r"(\w+_kernel\w*)\(", name) if k not in GENERIC]
    if ops:
        return f"{lib}: {ops[0]}"
    return f"{lib}: {name[:100]}"


# Shared objects by name, up to the first "." or "-" (`libc.so.6` is libc, `libc10.so` is not; torch
# ships OpenMP as `libgomp-<hash>.so.1`).
LIBRARIES = {"libtorch_cpu": "libtorch (ATen kernels, oneDNN and MKL linked in)", "libgomp": "OpenMP", "libc": "libc",
             "libm": "libm"}
OWN = {"kimcnn-torch": "kimcnn's own code", "[kernel.kallsyms]": "kernel"}


def library(dso):
    if dso.startswith("[JIT]") or dso in ("[unknown]", "//anon") or dso.startswith("anon") or "perf-" in dso:
        return "oneDNN's JIT-compiled kernels (anonymous code)"
    return OWN.get(dso) or LIBRARIES.get(re.split(r"[.-]", dso)[0], dso)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--python", required=True, help="a python with torch 2.11 (for bench/conv_kernels.py)")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--variants", default="static,non-static")
    a = ap.parse_args()
    perf = shutil.which("perf")
    if not perf:
        sys.exit("step_profile: no `perf` on PATH (Debian: apt-get install linux-perf)")
    kimcnn = str(Path(a.kimcnn).resolve())
    shared = Path(a.shared).resolve()
    Path(a.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="step-profile-", dir=a.work))
    env = dict(os.environ, KIMCNN_MIRROR=str(shared))
    variants = a.variants.split(",")
    (work / "pipeline.yaml").write_text(pipeline(shared, a.epochs, variants))
    subprocess.run([kimcnn, "run", "embed", "tokenize"], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    versions = provenance.collect(kimcnn=provenance.kimcnn(kimcnn), perf=provenance.first_line([perf, "--version"]),
                                  torch=provenance.python_module(a.python, "torch"))
    res = {"epochs": a.epochs, "versions": versions, "variants": {}}
    for v in variants:
        data = work / f"{v}.perf"
        subprocess.run([perf, "record", "-q", "-e", "cpu-clock", "-F", "499", "-o", str(data), "--",
                        kimcnn, "run", "--force", "--jobs", "1", f"train.{v}"],
                       cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
        libs = {}
        for pct, dso in report(perf, data, "dso", 0):
            lib = library(dso)
            libs[lib] = libs.get(lib, 0.0) + pct
        symbols = report(perf, data, "dso,sym", 1.0)
        res["variants"][v] = {"libraries": dict(sorted(libs.items(), key=lambda kv: -kv[1])),
                              "symbols": [{"percent": p, "symbol": s} for p, s in symbols[:15]]}
        print(f"{v}: " + ", ".join(f"{k} {p:.1f}%" for k, p in res["variants"][v]["libraries"].items()), flush=True)

    conv = {}
    script = Path(__file__).resolve().parent / "conv_kernels.py"
    for name, extra in [("default kernels", {}), ("pinned to AVX2 (reproducible)", PINS)]:
        out = subprocess.run([a.python, str(script)], env=dict(os.environ, **extra), check=True,
                             capture_output=True, text=True).stdout
        conv[name] = out.strip()
    res["conv_kernels"] = conv
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")

    md = [f"`perf record -e cpu-clock -F 499` of the `kimcnn-torch` worker training MR (the reference's split 0, "
          f"GloVe 50-d, `pad: kim`, {a.epochs} epochs, one thread, reproducible numerics; data stages not profiled). "
          "Share of the worker's samples by library:", ""]
    md += ["| library | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    share = lambda lib, v: res["variants"][v]["libraries"].get(lib, 0.0)
    libs = sorted({k for v in res["variants"].values() for k in v["libraries"]}, key=lambda k: -max(share(k, v) for v in variants))
    shown = [k for k in libs if max(share(k, v) for v in variants) >= 0.5]
    for lib in shown:
        md.append(f"| {lib} | " + " | ".join(f"{share(lib, v):.1f}%" for v in variants) + " |")
    rest = [k for k in libs if k not in shown]
    if rest:
        md.append(f"| {len(rest)} others, each under 0.5% (CUDA's libraries among them: the worker links them, the CPU run only loads them) | "
                  + " | ".join(f"{sum(share(k, v) for k in rest):.1f}%" for v in variants) + " |")
    for v in variants:
        md += ["", f"Largest symbols, CNN-{v} (library, symbol; 1% and over):", ""]
        md += [f"- {s['percent']:.1f}% {short(s['symbol'])}" for s in res["variants"][v]["symbols"]]
    md += ["", "bench/conv_kernels.py (one batch of 50 sentences padded to 64 tokens, 50-d, 100 maps x widths 3-5, "
           "forward and backward, one thread):"]
    for name, out in conv.items():
        md += ["", f"{name}:", "", out]
    md += ["", provenance.markdown(versions)]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
