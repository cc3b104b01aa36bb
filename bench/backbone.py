"""Pipeline-backbone benchmarks: kimcnn against DVC and b3sum, same run.

1. No-op `kimcnn run` / `kimcnn status` of a 5-stage pipeline with everything
   cached, against `dvc repro` / `dvc status` of the same 5 commands. Also a
   no-op `kimcnn run` of the project's own default pipeline, in a scratch copy
   (pipeline.yaml, pipeline.lock and the artifacts/ store copied under --work,
   completed there if the copy lacks anything): nothing is written under
   --project.
2. BLAKE3 of a 1 GiB file, page-cached: `kimcnn hash` against `b3sum`, one
   untimed run of each, then --hash-reps (at least 5) of each, alternating.
3. 8 independent 1-second stages: `kimcnn run --jobs 2` against `dvc repro`.

Every project these runs touch lives under --work. Wall-clock times via
perf_counter around whole processes; medians (and min-max) of repeated runs.
Records the versions of kimcnn, DVC and b3sum. Writes <out>.json and <out>.md.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # nothing written beside the bench scripts
import provenance  # noqa: E402  (bench/provenance.py)

SECTIONS = ["noop", "default", "hash", "parallel"]


def timed(cmd, cwd, reps, env=None, setup=None):
    times = []
    for _ in range(reps):
        if setup:
            setup()
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t0)
    return summary(times)


def summary(times):
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "reps": len(times), "runs_s": times}


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


def default_pipeline_copy(a, work, env):
    """The project's pipeline, its lock and its store, copied under work; completed there (untimed)."""
    project = Path(a.project).resolve()
    d = work / "default-pipeline"
    d.mkdir()
    shutil.copy2(project / "pipeline.yaml", d / "pipeline.yaml")
    if (project / "pipeline.lock").exists():
        shutil.copy2(project / "pipeline.lock", d / "pipeline.lock")
    if (project / "artifacts").is_dir():
        # Relative links inside the store stay inside the copy; --reflink shares blocks where the file system can.
        subprocess.run(["cp", "-a", "--reflink=auto", str(project / "artifacts"), str(d / "artifacts")], check=True)
    print("completing the copy of the default pipeline (a no-op if the project's store is complete)", flush=True)
    subprocess.run([a.kimcnn, "run"], cwd=d, env=env, check=True, stdout=subprocess.DEVNULL)
    dag = subprocess.run([a.kimcnn, "dag"], cwd=d, env=env, check=True, capture_output=True, text=True).stdout
    return d, sum(1 for line in dag.splitlines() if re.match(r"\S+ \[", line))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--dvc", help="needed for the noop and parallel sections")
    ap.add_argument("--b3sum", help="needed for the hash section")
    ap.add_argument("--project", required=True, help="read only: its pipeline.yaml, pipeline.lock and artifacts/ are copied")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hash-gb", type=float, default=1.0, help="GiB hashed")
    ap.add_argument("--hash-reps", type=int, default=5)
    ap.add_argument("--sections", default=",".join(SECTIONS), help="which benchmarks: " + ",".join(SECTIONS))
    a = ap.parse_args()
    a.kimcnn = str(Path(a.kimcnn).resolve())
    sections = a.sections.split(",")
    if a.hash_reps < 5 and "hash" in sections:
        print(f"warning: --hash-reps {a.hash_reps}: the reported figure wants at least 5", file=sys.stderr)
    project = Path(a.project).resolve()
    work = Path(a.work).resolve()
    if work == project or project in work.parents and (project / "bench/out") not in [work, *work.parents]:
        raise SystemExit(f"--work {work} is inside --project {project}: the benchmarks only write in scratch directories")
    work.mkdir(parents=True, exist_ok=True)
    tools = {"kimcnn": provenance.kimcnn(a.kimcnn)}
    if {"noop", "parallel"} & set(sections):
        tools["dvc"] = provenance.first_line([a.dvc, "--version"])
    if "hash" in sections:
        tools["b3sum"] = provenance.first_line([a.b3sum, "--version"])
    versions = provenance.collect(**tools)
    print(provenance.markdown(versions), flush=True)
    res = {"versions": versions}
    # A pipeline file or store named in the environment could point into the project: not here.
    env = {k: v for k, v in os.environ.items() if k not in ("KIMCNN_PIPELINE", "KIMCNN_STORE")}
    env["KIMCNN_NO_PROGRESS"] = "1"
    if (project.parent / "shared").is_dir():  # the mirror the project finds beside itself
        env.setdefault("KIMCNN_MIRROR", str(project.parent / "shared"))

    # 1. No-op run and status, 5 stages, all cached.
    if "noop" in sections:
        k = work / "k5"
        kimcnn_chain(k)
        subprocess.run([a.kimcnn, "run"], cwd=k, check=True, stdout=subprocess.DEVNULL)
        dv = work / "d5"
        denv = dvc_chain(dv, a.dvc)
        subprocess.run([a.dvc, "repro", "-q"], cwd=dv, check=True, env=denv)
        res["noop_run"] = {"kimcnn": timed([a.kimcnn, "run"], k, 30), "dvc": timed([a.dvc, "repro", "-q"], dv, 10, env=denv)}
        res["status"] = {"kimcnn": timed([a.kimcnn, "status"], k, 30), "dvc": timed([a.dvc, "status", "-q"], dv, 10, env=denv)}
    # The default pipeline of this project (data and training stages), no-op, in a scratch copy.
    if "default" in sections:
        d, n_stages = default_pipeline_copy(a, work, env)
        res["noop_default_pipeline"] = {"stages": n_stages, "kimcnn": timed([a.kimcnn, "run"], d, 20, env=env)}

    # 2. Hashing a 1 GiB file: one untimed run of each, then alternating timed runs.
    if "hash" in sections:
        big = work / "big.bin"
        n = int(a.hash_gb * (1 << 30))
        with open(big, "wb") as f:
            chunk = os.urandom(1 << 24)
            for i in range(n // len(chunk)):
                f.write(chunk[:-1] + bytes([i % 256]))
        n = big.stat().st_size
        subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
        b3 = subprocess.run([a.b3sum, str(big)], capture_output=True, text=True, check=True).stdout.split()[0]
        kh = subprocess.run([a.kimcnn, "hash", str(big)], capture_output=True, text=True, check=True).stdout.split()[0]
        assert b3 == kh, (b3, kh)
        times = {"b3sum": [], "kimcnn": []}
        cmds = {"b3sum": [a.b3sum, str(big)], "kimcnn": [a.kimcnn, "hash", str(big)]}
        for rep in range(a.hash_reps):
            for tool in (["b3sum", "kimcnn"] if rep % 2 == 0 else ["kimcnn", "b3sum"]):
                times[tool] += timed(cmds[tool], work, 1)["runs_s"]
        res["hash_1gb"] = {"bytes": n, "b3sum": summary(times["b3sum"]), "kimcnn": summary(times["kimcnn"])}
        big.unlink()

    # 3. Eight independent 1-second stages.
    if "parallel" in sections:
        kp = work / "kpar"
        kp.mkdir()
        (kp / "pipeline.yaml").write_text("stages:\n" + "".join(
            f"  p{i}: {{uses: exec, outputs: [out], with: {{cmd: 'sleep 1; echo {i} > \"$OUT_out\"'}}}}\n" for i in range(8)))

        def clear():
            shutil.rmtree(kp / "artifacts", ignore_errors=True)
            (kp / "pipeline.lock").unlink(missing_ok=True)
        res["parallel_8x1s"] = {"kimcnn_jobs2": timed([a.kimcnn, "run", "--jobs", "2"], kp, 3, setup=clear)}
        dp = work / "dpar"
        denv = dvc_project(dp, a.dvc, {f"p{i}": (f"sleep 1 && echo {i} > p{i}.txt", [], [f"p{i}.txt"]) for i in range(8)})
        res["parallel_8x1s"]["dvc"] = timed([a.dvc, "repro", "-q", "-f"], dp, 2, env=denv)

    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    ms = lambda r: r["median_s"] * 1000
    md = ["| benchmark | kimcnn | baseline | ratio (baseline / kimcnn) |", "|---|---|---|---|"]
    if "noop" in sections:
        md += [
            f"| no-op `run`, 5 cached stages (median of 30 / 10) | {ms(res['noop_run']['kimcnn']):.1f} ms | `dvc repro`: {ms(res['noop_run']['dvc']):.0f} ms | {res['noop_run']['dvc']['median_s'] / res['noop_run']['kimcnn']['median_s']:.0f}x |",
            f"| `status`, 5 cached stages | {ms(res['status']['kimcnn']):.1f} ms | `dvc status`: {ms(res['status']['dvc']):.0f} ms | {res['status']['dvc']['median_s'] / res['status']['kimcnn']['median_s']:.0f}x |"]
    if "default" in sections:
        r = res["noop_default_pipeline"]
        md.append(f"| no-op `run` of the default pipeline ({r['stages']} stages: data, training, results; all cached; "
                  f"a scratch copy; median of 20) | {ms(r['kimcnn']):.1f} ms | (no baseline) | |")
    if "hash" in sections:
        h = res["hash_1gb"]
        gbps = lambda s: h["bytes"] / s / 1e9
        rate = lambda r: f"{gbps(r['median_s']):.2f} GB/s ({gbps(r['max_s']):.2f}-{gbps(r['min_s']):.2f})"
        md.append(f"| BLAKE3 of a {h['bytes'] / (1 << 30):g} GiB file, page-cached (median (min-max) of {a.hash_reps} each, "
                  f"alternating, after a warm-up) | {rate(h['kimcnn'])} | `b3sum`: {rate(h['b3sum'])} | "
                  f"{h['b3sum']['median_s'] / h['kimcnn']['median_s']:.2f}x |")
    if "parallel" in sections:
        r = res["parallel_8x1s"]
        md.append(f"| 8 independent 1-s stages, `--jobs 2` (median of 3 / 2) | {r['kimcnn_jobs2']['median_s']:.2f} s | "
                  f"`dvc repro -f`: {r['dvc']['median_s']:.2f} s | {r['dvc']['median_s'] / r['kimcnn_jobs2']['median_s']:.1f}x |")
    md += ["", provenance.markdown(versions)]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
