"""Pipeline-backbone benchmarks: kimcnn against DVC and b3sum, same run.

1. No-op `kimcnn run` / `kimcnn status` of a 5-stage pipeline with everything
   cached, against `dvc repro` / `dvc status` of the same 5 commands.
2. BLAKE3 of a 1 GB file: `kimcnn hash` against `b3sum`.
3. 8 independent 1-second stages: `kimcnn run --jobs 2` against `dvc repro`.

Wall-clock times via perf_counter around whole processes; medians of
repeated runs. Writes <out>.json and <out>.md.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path


def timed(cmd, cwd, reps, env=None, setup=None):
    times = []
    for _ in range(reps):
        if setup:
            setup()
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "reps": reps}


CHAIN_CMDS = [
    'cp in.txt s0.txt',
    'tr a-z A-Z < s0.txt > s1.txt',
    'rev < s1.txt > s2.txt',
    'sort < s2.txt > s3.txt',
    'wc -l < s3.txt > s4.txt',
]


def kimcnn_chain(d: Path):
    d.mkdir()
    (d / "in.txt").write_text("".join(f"line {i}\n" for i in range(1000)))
    y = ["stages:",
         "  s0: {uses: source, with: {path: in.txt}}"]
    for i, c in enumerate(CHAIN_CMDS[1:], start=1):
        src, dst = f"s{i-1}.txt", f"s{i}.txt"
        cmd = c.replace(f"< {src}", '< "$IN_in"').replace(f"> {dst}", '> "$OUT_out"')
        y.append(f"  s{i}: {{uses: exec, inputs: {{in: s{i-1}.{'data' if i == 1 else 'out'}}}, outputs: [out], with: {{cmd: '{cmd}'}}}}")
    (d / "pipeline.yaml").write_text("\n".join(y) + "\n")


def dvc_project(d: Path, dvc: str, stages: dict):
    d.mkdir()
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    subprocess.run(["git", "init", "-q"], cwd=d, check=True)
    subprocess.run([dvc, "init", "-q"], cwd=d, check=True, env=env)
    lines = ["stages:"]
    for name, (cmd, deps, outs) in stages.items():
        lines += [f"  {name}:", f"    cmd: {cmd}"]
        if deps:
            lines.append("    deps: [" + ", ".join(deps) + "]")
        lines.append("    outs: [" + ", ".join(outs) + "]")
    (d / "dvc.yaml").write_text("\n".join(lines) + "\n")
    return env


def dvc_chain(d: Path, dvc: str):
    stages = {}
    for i, c in enumerate(CHAIN_CMDS):
        stages[f"s{i}"] = (c, ["in.txt" if i == 0 else f"s{i-1}.txt"], [f"s{i}.txt"])
    env = dvc_project(d, dvc, stages)
    (d / "in.txt").write_text("".join(f"line {i}\n" for i in range(1000)))
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--dvc", required=True)
    ap.add_argument("--b3sum", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hash-gb", type=float, default=1.0)
    a = ap.parse_args()
    work = Path(a.work)
    res = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    dvc_version = subprocess.run([a.dvc, "--version"], capture_output=True, text=True).stdout.strip()
    res["dvc_version"] = dvc_version

    # 1. No-op run and status, 5 stages, all cached.
    k = work / "k5"
    kimcnn_chain(k)
    subprocess.run([a.kimcnn, "run"], cwd=k, check=True, stdout=subprocess.DEVNULL)
    dv = work / "d5"
    env = dvc_chain(dv, a.dvc)
    subprocess.run([a.dvc, "repro", "-q"], cwd=dv, check=True, env=env)
    res["noop_run"] = {"kimcnn": timed([a.kimcnn, "run"], k, 30), "dvc": timed([a.dvc, "repro", "-q"], dv, 10, env=env)}
    res["status"] = {"kimcnn": timed([a.kimcnn, "status"], k, 30), "dvc": timed([a.dvc, "status", "-q"], dv, 10, env=env)}
    # The default pipeline of this project (data and training stages), no-op.
    subprocess.run([a.kimcnn, "run"], cwd=a.project, check=True, stdout=subprocess.DEVNULL)
    res["noop_default_pipeline"] = {"kimcnn": timed([a.kimcnn, "run"], a.project, 20)}

    # 2. Hashing a 1 GB file.
    big = work / "big.bin"
    n = int(a.hash_gb * (1 << 30))
    with open(big, "wb") as f:
        chunk = os.urandom(1 << 24)
        for i in range(n // len(chunk)):
            f.write(chunk[:-1] + bytes([i % 256]))
    subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    b3 = subprocess.run([a.b3sum, str(big)], capture_output=True, text=True, check=True).stdout.split()[0]
    kh = subprocess.run([a.kimcnn, "hash", str(big)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert b3 == kh, (b3, kh)
    res["hash_1gb"] = {"bytes": n, "b3sum": timed([a.b3sum, str(big)], work, 5), "kimcnn": timed([a.kimcnn, "hash", str(big)], work, 5)}
    big.unlink()

    # 3. Eight independent 1-second stages.
    kp = work / "kpar"
    kp.mkdir()
    (kp / "pipeline.yaml").write_text("stages:\n" + "".join(
        f"  p{i}: {{uses: exec, outputs: [out], with: {{cmd: 'sleep 1; echo {i} > \"$OUT_out\"'}}}}\n" for i in range(8)))
    import shutil

    def clear():
        shutil.rmtree(kp / "artifacts", ignore_errors=True)
        (kp / "pipeline.lock").unlink(missing_ok=True)
    res["parallel_8x1s"] = {"kimcnn_jobs2": timed([a.kimcnn, "run", "--jobs", "2"], kp, 3, setup=clear)}
    dp = work / "dpar"
    env = dvc_project(dp, a.dvc, {f"p{i}": (f"sleep 1 && echo {i} > p{i}.txt", [], [f"p{i}.txt"]) for i in range(8)})
    res["parallel_8x1s"]["dvc"] = timed([a.dvc, "repro", "-q", "-f"], dp, 2, env=env)

    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    ms = lambda r: r["median_s"] * 1000
    gbps = lambda r: res["hash_1gb"]["bytes"] / r["median_s"] / 1e9
    md = [
        f"Machine: {res['machine']['cpus']} CPUs, {res['machine']['platform']}; baseline {dvc_version and 'DVC ' + dvc_version}.",
        "",
        "| benchmark | kimcnn | baseline | ratio (baseline / kimcnn) |",
        "|---|---|---|---|",
        f"| no-op `run`, 5 cached stages (median of 30 / 10) | {ms(res['noop_run']['kimcnn']):.1f} ms | `dvc repro`: {ms(res['noop_run']['dvc']):.0f} ms | {res['noop_run']['dvc']['median_s'] / res['noop_run']['kimcnn']['median_s']:.0f}x |",
        f"| `status`, 5 cached stages | {ms(res['status']['kimcnn']):.1f} ms | `dvc status`: {ms(res['status']['dvc']):.0f} ms | {res['status']['dvc']['median_s'] / res['status']['kimcnn']['median_s']:.0f}x |",
        f"| no-op `run` of the default pipeline (58 stages: data, training, results; all cached) | {ms(res['noop_default_pipeline']['kimcnn']):.1f} ms | | |",
        f"| BLAKE3 of a 1 GiB file, page-cached (median of 5) | {gbps(res['hash_1gb']['kimcnn']):.2f} GB/s | `b3sum`: {gbps(res['hash_1gb']['b3sum']):.2f} GB/s | {res['hash_1gb']['b3sum']['median_s'] / res['hash_1gb']['kimcnn']['median_s']:.2f}x |",
        f"| 8 independent 1-s stages, `--jobs 2` (median of 3 / 2) | {res['parallel_8x1s']['kimcnn_jobs2']['median_s']:.2f} s | `dvc repro -f`: {res['parallel_8x1s']['dvc']['median_s']:.2f} s | {res['parallel_8x1s']['dvc']['median_s'] / res['parallel_8x1s']['kimcnn_jobs2']['median_s']:.1f}x |",
    ]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
