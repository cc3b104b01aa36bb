"""The origin project's running-time experiment for a hyper-parameter study:
every variant x padding on MR (the reference's split 0), at several epoch
budgets, three ways, on the same machine in the same run:

(a) the reference PyTorch script (../shared/bench/pytorch_kimcnn.py) run once
    per config, one after another, each run loading the data and GloVe
    itself, 2 threads: seed_study_ray.py's `grid_without_ray`, once per epoch
    budget (the origin project ran a separate study per budget);
(b) Ray Tune 2.60 with the reference's training as function trials, the
    padded data and GloVe loaded once by the driver and put in the object
    store (tune.with_parameters), 2 trials at a time, 1 CPU and 1 thread each:
    seed_study_ray.py's `ray_with_put`, one Tuner.fit per budget. Two changes
    to the seed script, both in Ray's favour or neutral: one driver process
    (one data load, one ray.init) runs the fits of every budget in turn, where
    the seed script starts afresh per study; and each trial also reports its
    best dev accuracy and epoch, so that the best config is selected on dev
    here as in (a) and (c) (the seed script reports test only). The trial's
    training loop is the seed script's, line for line;
(c) `kimcnn tune` of one study stage with space variant x pad {kim, bucket} x
    epochs {budgets}, parallel 2 (one thread a trial), on a fresh store: each
    point trains once, for the largest budget, and the smaller budgets are read
    off its first epochs. The data stages (sources from the mirror, tokenize,
    vocab, embed) run first and are timed apart; (a) and (b) load their data
    in their timed runs, so the fair comparison is (c) with them.

Settings matched as bench/train.py matches them: MR with the reference's
exact split (splits/mr_split0.json), GloVe 50-d, seed 1, CNN-rand's words from
U[-0.25, 0.25] (the seed script's --unk-a 0.25; kimcnn `rand_a: 0.25`), the
other variants' unknown words variance-matched on both sides; kimcnn in its
default numerics (reproducible: CPU kernels capped at AVX2), the reference in
PyTorch's defaults. Padding: the reference's `kim` and `dynamic` (each batch
to its longest sentence); kimcnn's `kim` and `bucket` (sentences of similar
length batched together), each side's own fast mode.

Measured for each way: wall time (the whole of its processes' lives), peak
memory of its process tree, sampled every 0.5 s from /proc (the sum of RSS
over the tree, as asked, and the sum of PSS, which counts shared pages (torch's
libraries, Ray's object store) once; (b)'s tree includes Ray's GCS, raylet and
worker processes), and for (a) and (c) the largest single-process peak RSS
from wait4 (exact). Accuracy: for each budget, the config with the best dev
accuracy (each config's best dev epoch within the budget, ties to the later
epoch; ties between configs to the first in grid order), and its test
accuracy. One seed: differences are reported, not judged.

Usage (bench/run.sh runs it with the tune venv's python, which has pandas and
pyarrow for kimcnn's trials.parquet, and ray[tune] for (b)):
  $TUNE_PY bench/study.py --kimcnn BIN --python TORCH_PY --shared ../shared \
      --work DIR --out PREFIX [--budgets 10,15,20,30] [--ways a,b,c]
Writes PREFIX.json and PREFIX.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # nothing written beside the bench scripts
sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance  # noqa: E402  (bench/provenance.py)
from mr_data import split0_stages  # noqa: E402  (bench/mr_data.py)

VARIANTS = ["rand", "static", "non-static", "multichannel"]
PADS = {"kim": "kim", "dynamic": "bucket"}  # the reference's pad -> kimcnn's pad in the same grid cell
SAMPLE_S = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# Measuring a process tree: wall time, peak memory
# ---------------------------------------------------------------------------

def descendants(root):
    """root and every process below it (from /proc/*/stat's parent ids)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, i = [root], 0
    while i < len(out):
        out += children.get(out[i], [])
        i += 1
    return out


def cpu_s(pid):
    """utime + stime of a process (its own, not its children's), in seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy_s():
    """CPU seconds the whole machine has been busy since boot (all cores; /proc/stat, idle and iowait excluded)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def rss_pss_kb(pid):
    """(Rss, Pss) of a process in kB, from /proc/PID/smaps_rollup; (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, pss


class TreeSampler(threading.Thread):
    """Samples a process tree every SAMPLE_S seconds until stopped; keeps the peaks."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.stop, self.samples = root, threading.Event(), 0
        self.peak = {"rss_sum_mb": 0.0, "pss_sum_mb": 0.0, "processes_at_rss_peak": 0, "max_processes": 0}
        self.cpu = {}  # pid -> CPU seconds last seen: the tree's own CPU time, for the contention figure

    def run(self):
        while not self.stop.is_set():
            pids = descendants(self.root)
            for p in pids:
                self.cpu[p] = max(self.cpu.get(p, 0.0), cpu_s(p))
            mem = [rss_pss_kb(p) for p in pids]
            rss, pss = sum(m[0] for m in mem) / 1024, sum(m[1] for m in mem) / 1024
            live = sum(1 for m in mem if m[0])
            if rss > self.peak["rss_sum_mb"]:
                self.peak.update(rss_sum_mb=rss, processes_at_rss_peak=live)
            self.peak["pss_sum_mb"] = max(self.peak["pss_sum_mb"], pss)
            self.peak["max_processes"] = max(self.peak["max_processes"], live)
            self.samples += 1
            self.stop.wait(SAMPLE_S)


def measured(cmd, **kw):
    """Runs cmd to its end; returns (wall s, peaks of its tree and the machine's contention, wait4's ru_maxrss
    in MB). Contention: CPU seconds the machine spent outside the tree (busy time from /proc/stat less the
    tree's, the larger of wait4's and the sampled sum), as a share of wall x cores, as the reference's
    `contended` flag measures its epochs."""
    busy0, t0 = machine_busy_s(), time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], **kw)
    s = TreeSampler(p.pid)
    s.start()
    _, status, ru = os.wait4(p.pid, 0)
    wall, busy = time.perf_counter() - t0, machine_busy_s() - busy0
    p.returncode = os.waitstatus_to_exitcode(status)
    s.stop.set()
    s.join()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))}: exit {p.returncode}")
    own = max(ru.ru_utime + ru.ru_stime, sum(s.cpu.values()))
    peak = dict(s.peak, wall_s=wall, own_cpu_s=own, foreign_cpu_s=max(0.0, busy - own))
    return wall, peak, ru.ru_maxrss / 1024


def merge_peaks(peaks):
    """The peaks of runs one after another: memory, the largest; times, summed."""
    sums = ("wall_s", "own_cpu_s", "foreign_cpu_s")
    out = {k: (sum if k in sums else max)(p[k] for p in peaks) for k in peaks[0]}
    out["foreign_cpu_share"] = out["foreign_cpu_s"] / (out["wall_s"] * (os.cpu_count() or 1))
    return out


# ---------------------------------------------------------------------------
# (a) the reference, one process per config, per budget
# ---------------------------------------------------------------------------

def way_a(py, shared, work, budgets):
    ref = shared / "bench/pytorch_kimcnn.py"
    out = {"per_budget": {}, "runs": []}
    peaks, maxrss, t_all = [], 0.0, time.perf_counter()
    for e in budgets:
        t_b, cells = time.perf_counter(), []
        for v in VARIANTS:
            for pad in PADS:
                f = work / f"a/{e}/{v}-{pad}.json"
                f.parent.mkdir(parents=True, exist_ok=True)
                # seed_study_ray.py's grid_without_ray, command for command.
                extra = ["--unk-a", "0.25"] if v == "rand" else []
                wall, peak, rss = measured(
                    [py, ref, "--dataset", "mr", "--variant", v, "--pad", pad, "--epochs", e, "--seed", "1",
                     "--threads", "2", "--data-dir", shared / "datasets/kim",
                     "--vectors", shared / "vectors/glove.6B.50d.txt.gz", "--out", f] + extra,
                    stdout=subprocess.DEVNULL)
                peaks.append(peak)
                maxrss = max(maxrss, rss)
                s = json.loads(f.read_text())["summary"]
                cells.append({"variant": v, "pad": pad, "dev": s["best_dev_acc"], "test": s["test_acc_at_best_dev"],
                              "epoch": s["best_dev_epoch"], "wall_s": wall})
                print(f"(a) {e} epochs {v} {pad}: {wall:.1f} s, dev {s['best_dev_acc']:.4f}", flush=True)
        out["per_budget"][str(e)] = {"wall_s": time.perf_counter() - t_b, "cells": cells}
    out.update(wall_s=time.perf_counter() - t_all, peak=merge_peaks(peaks), max_process_rss_mb=maxrss)
    return out


# ---------------------------------------------------------------------------
# (b) Ray Tune with the data put in the object store once (runs in a child
# process of the tune venv's python: `study.py --ray-child ...`)
# ---------------------------------------------------------------------------

def ray_trial(config, data=None, glove=None):
    """seed_study_ray.py's `trial`, the epochs taken from the config and the best dev reported too."""
    import numpy as np
    import torch
    import pytorch_kimcnn as R
    from ray import tune
    torch.set_num_threads(1)
    v, p, epochs = config["model_type"], config["pad"], config["epochs"]
    torch.manual_seed(1); rng = np.random.RandomState(1)
    R.load_glove = lambda path: glove  # the vectors come from the object store, not the file
    emb, _ = R.build_embeddings(data["w2i"], v, "put", 1, False, 0.25 if v == "rand" else None)
    X, lens, Y, tr, dv, te, ncls = (data[k] for k in ("X", "lens", "Y", "tr", "dv", "te", "ncls"))
    model = R.KimCNN(emb, ncls, v)
    opt = torch.optim.Adadelta([q for q in model.parameters() if q.requires_grad], **R.ADADELTA)
    best = (-1, None, None)
    for ep in range(1, epochs + 1):
        model.train(); t0 = time.perf_counter(); perm = rng.permutation(len(tr)); loss_sum = 0.0
        for s in range(0, len(tr), R.BATCH_SIZE):
            idx = tr[perm[s:s + R.BATCH_SIZE]]
            loss = torch.nn.functional.cross_entropy(model(R.batch_view(X, lens, idx, p)), Y[idx])
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); model.apply_max_norm()
            loss_sum += loss.item() * len(idx)
        dev = R.accuracy(model, X[dv], lens[dv], Y[dv], p); test = R.accuracy(model, X[te], lens[te], Y[te], p)
        if dev >= best[0]:
            best = (dev, test, ep)
        tune.report({"loss": loss_sum / len(tr), "accuracy": dev, "best_dev": best[0], "test_accuracy": best[1],
                     "best_epoch": best[2], "time_this_iter_s": time.perf_counter() - t0})


def ray_child(shared, work, budgets, out):
    """The driver of (b): loads once, ray.init once, one Tuner.fit per budget; writes its results to `out`."""
    t_start = time.perf_counter()
    bench = str(shared / "bench")
    sys.path.insert(0, bench)
    import torch
    import pytorch_kimcnn as R
    import ray
    from ray import tune
    t0 = time.perf_counter()
    d = R.load_dataset("mr", str(shared / "datasets/kim"), 0, False)
    w2i = R.build_vocab(d["tokens"]); max_len = max(len(t) for t in d["tokens"])
    X, lens = R.to_padded(d["tokens"], w2i, max_len)
    data = dict(w2i=w2i, X=X, lens=lens, Y=torch.from_numpy(d["labels"]), tr=d["train"], dv=d["dev"], te=d["test"],
                ncls=len(d["classes"]))
    glove = R.load_glove(str(shared / "vectors/glove.6B.50d.txt.gz"))
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": bench}})
    res = {"load_s": load_s, "init_s": time.perf_counter() - t0, "per_budget": {}, "ray": ray.__version__}
    for e in budgets:
        t0 = time.perf_counter()
        tuner = tune.Tuner(tune.with_resources(tune.with_parameters(ray_trial, data=data, glove=glove), {"cpu": 1}),
                           param_space={"model_type": tune.grid_search(VARIANTS), "pad": tune.grid_search(list(PADS)),
                                        "epochs": e},
                           tune_config=tune.TuneConfig(metric="accuracy", mode="max", max_concurrent_trials=2),
                           run_config=tune.RunConfig(storage_path=str(work / f"ray/{e}"), verbose=0))
        grid = tuner.fit()
        if grid.errors:
            raise SystemExit(f"{len(grid.errors)} Ray Tune trials failed: {grid.errors[0]}")
        cells = []
        for r in grid:
            m = r.metrics
            cells.append({"variant": r.config["model_type"], "pad": r.config["pad"], "dev": m["best_dev"],
                          "test": m["test_accuracy"], "epoch": m["best_epoch"], "epochs_run": m["training_iteration"]})
        order = {(v, p): i for i, (v, p) in enumerate((v, p) for v in VARIANTS for p in PADS)}
        cells.sort(key=lambda c: order[(c["variant"], c["pad"])])
        res["per_budget"][str(e)] = {"wall_s": time.perf_counter() - t0, "cells": cells}
        print(f"(b) {e} epochs: {res['per_budget'][str(e)]['wall_s']:.1f} s", flush=True)
    t0 = time.perf_counter()
    ray.shutdown()
    res["shutdown_s"] = time.perf_counter() - t0
    res["driver_s"] = time.perf_counter() - t_start
    Path(out).write_text(json.dumps(res, indent=1))


def way_b(ray_py, shared, work, budgets):
    f, log = work / "b.json", work / "b.stderr"
    try:
        with open(log, "wb") as err:
            wall, peak, _ = measured([ray_py, os.path.abspath(__file__), "--ray-child", shared, work,
                                      ",".join(map(str, budgets)), f], stdout=subprocess.DEVNULL, stderr=err)
    except SystemExit as e:  # Ray is verbose on stderr: its last lines say why
        raise SystemExit(f"{e}; the end of its stderr ({log}):\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
    res = json.loads(f.read_text())
    res.update(wall_s=wall, peak=merge_peaks([peak]))
    return res


# ---------------------------------------------------------------------------
# (c) kimcnn tune
# ---------------------------------------------------------------------------

def pipeline(shared, budgets):
    return f"""stages:
{split0_stages(shared)}  study:
    uses: study
    inputs: {{tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}}
    with:
      base: {{dataset: mr, seed: 1, rand_a: 0.25, device: cpu}}
      space: {{variant: {{choice: {VARIANTS}}}, pad: {{choice: {list(PADS.values())}}}, epochs: {{choice: {budgets}}}}}
      search: grid
      parallel: 2
      trials: 0
      seed: 0
      stopper: none
"""


def way_c(kimcnn, shared, work, budgets):
    d = work / "c"
    d.mkdir()
    (d / "pipeline.yaml").write_text(pipeline(shared, budgets))
    env = dict(os.environ, KIMCNN_MIRROR=str(shared))
    run = lambda args: measured([kimcnn] + args, cwd=d, env=env, stdout=subprocess.DEVNULL)
    data_s, data_peak, data_rss = run(["run", "--jobs", "2", "embed", "tokenize"])
    tune_s, tune_peak, tune_rss = run(["tune", "study", "--jobs", "2"])
    import pandas as pd  # the tune venv's; kimcnn writes trials.parquet
    rows = pd.read_parquet(d / "artifacts/out/study/trials")
    best = json.loads((d / "artifacts/out/study/best").read_text())
    res = {"data_s": data_s, "tune_s": tune_s, "wall_s": data_s + tune_s, "data_peak": data_peak,
           "peak": merge_peaks([data_peak, tune_peak]), "tune_peak": merge_peaks([tune_peak]), "max_process_rss_mb": max(data_rss, tune_rss),
           "trial_statuses": rows.groupby("trial_id")["status"].last().astype(str).value_counts().to_dict(), "best_json": best, "per_budget": {}}
    for e in budgets:
        cells = []
        for v in VARIANTS:
            for pad, kpad in PADS.items():
                r = rows[(rows["config/variant"] == v) & (rows["config/pad"] == kpad) & (rows["config/epochs"] == e)]
                r = r[r["training_iteration"] >= 1].sort_values("training_iteration")
                if len(r) != e:
                    raise SystemExit(f"(c) {v} {kpad} {e} epochs: {len(r)} epoch rows in trials.parquet")
                top = r[r["accuracy"] == r["accuracy"].max()].iloc[-1]  # ties: the later epoch
                cells.append({"variant": v, "pad": kpad, "dev": float(top["accuracy"]), "test": float(top["test_accuracy"]),
                              "epoch": int(top["training_iteration"]), "trial_id": int(top["trial_id"])})
        res["per_budget"][str(e)] = {"cells": cells}
    return res


# ---------------------------------------------------------------------------

def best_cell(cells):
    """The best dev config (ties: the first in grid order)."""
    top = max(c["dev"] for c in cells)
    return next(c for c in cells if c["dev"] == top)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kimcnn")
    ap.add_argument("--python", help="the torch venv's python (the reference, (a))")
    ap.add_argument("--ray-python", default=sys.executable, help="a python with ray[tune] and torch ((b)); default: this one")
    ap.add_argument("--shared")
    ap.add_argument("--work", help="a fresh directory is made under it for this run")
    ap.add_argument("--out")
    ap.add_argument("--budgets", default="10,15,20,30", help="epoch budgets, comma-separated")
    ap.add_argument("--ways", default="a,b,c", help="which of a, b, c to run (all for a reported figure)")
    ap.add_argument("--ray-child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.ray_child:
        shared, work, budgets, out = a.ray_child
        ray_child(Path(shared), Path(work), [int(b) for b in budgets.split(",")], out)
        return
    for k in ("kimcnn", "python", "shared", "work", "out"):
        if not getattr(a, k):
            ap.error(f"--{k} is required")
    budgets = sorted({int(b) for b in a.budgets.split(",")})
    ways = a.ways.split(",")
    a.kimcnn = str(Path(a.kimcnn).resolve())
    shared = Path(a.shared).resolve()
    Path(a.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="study-bench-", dir=a.work)).resolve()
    versions = provenance.collect(
        kimcnn=provenance.kimcnn(a.kimcnn),
        reference_script=provenance.script(shared / "bench/pytorch_kimcnn.py", a.kimcnn),
        seed_study_script=provenance.script(shared / "bench/seed_study_ray.py", a.kimcnn),
        reference_python=f"{a.python} (python {provenance.python_version(a.python)}, "
                         f"torch {provenance.python_module(a.python, 'torch')})",
        ray_python=f"{a.ray_python} (python {provenance.python_version(a.ray_python)}, "
                   f"torch {provenance.python_module(a.ray_python, 'torch')}, ray {provenance.python_module(a.ray_python, 'ray')})",
    )
    print(provenance.markdown(versions), flush=True)
    res = {"budgets": budgets, "grid": {"variants": VARIANTS, "pads": PADS}, "ways": {}, "versions": versions,
           "memory_sampling": f"sum over the process tree every {SAMPLE_S} s of /proc/PID/smaps_rollup Rss and Pss"}
    # One way at a time (2 cores): (c) first on its fresh store, then (a), then (b).
    if "c" in ways:
        res["ways"]["c"] = way_c(a.kimcnn, shared, work, budgets)
        print(f"(c) data {res['ways']['c']['data_s']:.1f} s, tune {res['ways']['c']['tune_s']:.1f} s", flush=True)
    if "a" in ways:
        res["ways"]["a"] = way_a(a.python, shared, work, budgets)
        print(f"(a) {res['ways']['a']['wall_s']:.1f} s", flush=True)
    if "b" in ways:
        res["ways"]["b"] = way_b(a.ray_python, shared, work, budgets)
        print(f"(b) {res['ways']['b']['wall_s']:.1f} s", flush=True)
    for w in res["ways"].values():
        for b in w["per_budget"].values():
            b["best"] = best_cell(b["cells"])
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res, budgets)
    Path(a.out + ".md").write_text(md)
    print(md)


def markdown(res, budgets):
    W = {k: res["ways"][k] for k in ("a", "b", "c") if k in res["ways"]}
    pct = lambda x: f"{100 * x:.1f}"
    rows = []  # (name, wall, peak dict, per-budget dict)
    if "a" in W:
        rows.append(("(a) reference, sequential grid per budget, 2 threads", W["a"]["wall_s"], W["a"]["peak"], W["a"]))
    if "b" in W:
        rows.append(("(b) Ray Tune with put, a study per budget, 2 x 1 thread", W["b"]["wall_s"], W["b"]["peak"], W["b"]))
    if "c" in W:
        c = W["c"]
        rows.append(("(c) `kimcnn tune`, one study, 2 x 1 thread, with its data stages", c["wall_s"], c["peak"], c))
        rows.append(("(c) `kimcnn tune` alone (data stages cached)", c["tune_s"], c["tune_peak"], c))
    base = W.get("a")
    md = [f"MR, the reference's split 0 (fold 0), GloVe 50-d, seed 1; grid: {len(VARIANTS)} variants x 2 paddings "
          f"(reference kim / dynamic, kimcnn kim / bucket) at epoch budgets {', '.join(map(str, budgets))}; "
          f"{os.cpu_count()} cores, one run of each way, one after another. (a) and (b) train every budget "
          f"separately ({len(VARIANTS) * 2 * sum(budgets)} training epochs); (c) trains each point once for "
          f"{max(budgets)} epochs ({len(VARIANTS) * 2 * max(budgets)} training epochs) and reads the smaller "
          "budgets off its first epochs. Memory: the peak, over samples every 0.5 s, of the sum of RSS over the "
          "way's process tree ((b): the driver, Ray's GCS and raylet and its workers), and of the sum of PSS "
          "(shared pages counted once). CPU s: the CPU time of the way's own processes (user + system, all cores), "
          "less sensitive to other load than wall time (though a 2-thread process spins more when it shares its "
          "cores). Others' CPU: the CPU time other processes used during the way, as a share of "
          "its wall time x cores (the machine was not reserved; above a few % the way's wall time is inflated). "
          "Best dev / test: the config with the best dev accuracy within the budget, "
          "and its test accuracy, %.", "",
          "| way | wall s | faster than (a) | CPU s | less CPU than (a) | peak RSS sum MB | RSS vs (a) | "
          "peak PSS sum MB | others' CPU | " + " | ".join(f"{e} epochs: dev / test" for e in budgets) + " |",
          "|---|---|---|---|---|---|---|---|---|" + "---|" * len(budgets)]
    for name, wall, peak, w in rows:
        speed = f"{base['wall_s'] / wall:.2f}x" if base else "-"
        cpu = f"{base['peak']['own_cpu_s'] / peak['own_cpu_s']:.2f}x" if base else "-"
        mem = f"{peak['rss_sum_mb'] / base['peak']['rss_sum_mb']:.2f}x" if base else "-"
        accs = [f"{pct(w['per_budget'][str(e)]['best']['dev'])} / {pct(w['per_budget'][str(e)]['best']['test'])}"
                for e in budgets]
        md.append(f"| {name} | {wall:.0f} | {speed} | {peak['own_cpu_s']:.0f} | {cpu} | {peak['rss_sum_mb']:,.0f} | {mem} | "
                  f"{peak['pss_sum_mb']:,.0f} | "
                  f"{100 * peak['foreign_cpu_share']:.0f}% | " + " | ".join(accs) + " |")
    if "b" in W and "c" in W:
        c = W["c"]
        md += ["", f"(c) against (b): {W['b']['wall_s'] / c['wall_s']:.2f}x faster with its data stages, "
               f"{W['b']['wall_s'] / c['tune_s']:.2f}x without; peak RSS sum {c['peak']['rss_sum_mb'] / W['b']['peak']['rss_sum_mb']:.2f}x "
               f"of (b)'s, PSS sum {c['peak']['pss_sum_mb'] / W['b']['peak']['pss_sum_mb']:.2f}x."]
    parts = []
    if "a" in W:
        parts.append("(a) per budget " + ", ".join(f"{e}: {W['a']['per_budget'][str(e)]['wall_s']:.0f} s" for e in budgets)
                     + f"; largest single process {W['a']['max_process_rss_mb']:,.0f} MB (wait4)")
    if "b" in W:
        b = W["b"]
        parts.append(f"(b) data and GloVe load {b['load_s']:.1f} s, ray.init {b['init_s']:.1f} s, fits "
                     + ", ".join(f"{e}: {b['per_budget'][str(e)]['wall_s']:.0f} s" for e in budgets)
                     + f", shutdown {b['shutdown_s']:.1f} s; up to {b['peak']['max_processes']} processes in its tree")
    if "c" in W:
        c = W["c"]
        parts.append(f"(c) data stages {c['data_s']:.1f} s, tune {c['tune_s']:.1f} s; largest single process "
                     f"{c['max_process_rss_mb']:,.0f} MB (wait4); trials by how they ended {c['trial_statuses']}")
    md += ["", "Timings: " + "; ".join(parts) + "."]
    md += ["", "Best config per budget (variant, padding, selected epoch; test %):", "",
           "| budget | " + " | ".join(f"({k})" for k in W) + " |", "|---|" + "---|" * len(W)]
    for e in budgets:
        cells = []
        for w in W.values():
            b = w["per_budget"][str(e)]["best"]
            cells.append(f"{b['variant']} {b['pad']}, epoch {b['epoch']}: {pct(b['test'])}")
        md.append(f"| {e} | " + " | ".join(cells) + " |")
    if len(W) > 1:
        diffs = []
        for e in budgets:
            t = {k: w["per_budget"][str(e)]["best"]["test"] for k, w in W.items()}
            if "c" in t and "a" in t:
                diffs.append(f"{e}: (c) - (a) {100 * (t['c'] - t['a']):+.1f}"
                             + (f", (b) - (a) {100 * (t['b'] - t['a']):+.1f}" if "b" in t else ""))
        if diffs:
            md += ["", "Test accuracy differences of the selected configs, points: " + "; ".join(diffs) + ". One seed "
                   "per way, and two implementations (other random streams, other padding in the fast mode, other "
                   "kernels): this run does not measure the seed-to-seed spread these differences should be read "
                   "against (the reference's README gives its spread on MR)."]
    md += ["", provenance.markdown(res["versions"])]
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    main()
