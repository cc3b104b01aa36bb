"""Search quality on a real MR search space: TPE against random search at
equal trial budgets over many seeds, and ASHA's best config against the full
grid's at a fraction of the epochs. Part of `make bench`; writes OUT.json
and OUT.md.

The space: variant {rand, static, non-static, multichannel} x dropout {0.3,
0.5, 0.7} x batch {25, 50}, 24 points, each trained 4 epochs on MR (the
reference's split 0, GloVe 50-d, seed 1, pad bucket), one thread a trial, 2
at a time. A point's value is its best dev accuracy over its epochs (what the
study selects on); its test accuracy at that epoch is reported, never used.

1. The grid: `kimcnn tune` of the whole grid on a fresh store (timed).
2. TPE against random: `kimcnn tune` studies with `search: tpe` and
   `search: random`, seeds 0..S-1, at budgets of 12 and 16 trials, in the
   grid's store. Every trial is a point of the grid, so its train run is
   already in the store under the same key: the studies are real runs of
   the tuner that train nothing (the cache makes this benchmark cheap, it does
   not change what the searchers see). TPE starts with 5 random trials
   (`tpe_startup: 5`; Optuna's default is 10, half or more of these budgets),
   drawn as random search draws them with the same seed, so each seed is a
   paired comparison: the two differ only from trial 5 on.
   Reported per budget: mean regret (the grid's best dev minus the best dev
   found), how often the grid's best was found, wins/ties/losses of TPE over
   random per seed, and a two-sided sign test on the seeds that differ.
3. ASHA: the same grid with `stopper: {asha: {grace: 1, reduction: 2, max:
   4}}` on a fresh store (timed): epochs trained, wall time, and its best
   config's dev and test against the grid's.

Usage (bench/run.sh runs it with the tune venv's python, which has pandas and
pyarrow for kimcnn's trials.parquet):
  $TUNE_PY bench/search_quality.py --kimcnn BIN --shared ../shared --work DIR --out PREFIX [--seeds 20]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # nothing written beside the bench scripts
import provenance  # noqa: E402  (bench/provenance.py)
from mr_data import INPUTS, split0_stages  # noqa: E402  (bench/mr_data.py)

SPACE = "{variant: {choice: [rand, static, non-static, multichannel]}, dropout: {choice: [0.3, 0.5, 0.7]}, batch: {choice: [25, 50]}}"
BASE = "{dataset: mr, seed: 1, rand_a: 0.25, device: cpu, epochs: 4, pad: bucket}"
BUDGETS = [12, 16]
POINTS = 24


def pipeline(shared, studies):
    return f"""params: {{algos: [random, tpe], budgets: {BUDGETS}, seeds: []}}
stages:
{split0_stages(shared)}{studies}"""


GRID = f"""  grid:
    uses: study
    inputs: {INPUTS}
    with: {{base: {BASE}, space: {SPACE}, search: grid, parallel: 2}}
  search:
    uses: study
    matrix: {{algo: '${{algos}}', n: '${{budgets}}', s: '${{seeds}}'}}
    inputs: {INPUTS}
    with: {{base: {BASE}, space: {SPACE}, search: '${{algo}}', trials: '${{n}}', seed: '${{s}}', parallel: 1, tpe_startup: 5}}
"""
ASHA = f"""  asha:
    uses: study
    inputs: {INPUTS}
    with: {{base: {BASE}, space: {SPACE}, search: grid, parallel: 2, stopper: {{asha: {{grace: 1, reduction: 2, max: 4}}}}}}
"""


def tune(kimcnn, d, shared, args):
    env = dict(os.environ, KIMCNN_MIRROR=str(shared))
    t0 = time.perf_counter()
    subprocess.run([kimcnn, "tune"] + args + ["--jobs", "2"], cwd=d, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def data_stages(kimcnn, d, shared):
    env = dict(os.environ, KIMCNN_MIRROR=str(shared))
    subprocess.run([kimcnn, "run", "--jobs", "2", "embed", "tokenize"], cwd=d, env=env, check=True, stdout=subprocess.DEVNULL)


def points(d, stage):
    """Per trial: its config, best dev (ties: the later epoch), the test at that epoch, epochs reported, status."""
    import pandas as pd  # the tune venv's; kimcnn writes trials.parquet
    rows = pd.read_parquet(d / f"artifacts/out/{stage}/trials")
    out = {}
    for tid, r in rows.groupby("trial_id"):
        r = r[r["training_iteration"] >= 1].sort_values("training_iteration")
        top = r[r["accuracy"] == r["accuracy"].max()].iloc[-1]
        cfg = (str(top["config/variant"]), float(top["config/dropout"]), int(top["config/batch"]))
        out[int(tid)] = {"config": cfg, "dev": float(top["accuracy"]), "test": float(top["test_accuracy"]),
                         "epoch": int(top["training_iteration"]), "epochs": len(r), "status": str(r["status"].iloc[-1])}
    return out


def sign_test(wins, losses):
    """Two-sided exact sign test p-value for wins vs losses (ties dropped)."""
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, default=20)
    a = ap.parse_args()
    a.kimcnn = str(Path(a.kimcnn).resolve())  # the runs below change directory
    shared, work = Path(a.shared).resolve(), Path(a.work).resolve() / "search_quality"
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    versions = provenance.collect(kimcnn=provenance.kimcnn(a.kimcnn))
    print(provenance.markdown(versions), flush=True)

    # 1. The grid, on a fresh store.
    g = work / "grid"
    g.mkdir(parents=True)
    (g / "pipeline.yaml").write_text(pipeline(shared, GRID))
    data_stages(a.kimcnn, g, shared)
    grid_s = tune(a.kimcnn, g, shared, ["grid"])
    grid = points(g, "grid")
    assert len(grid) == POINTS, f"the grid has {len(grid)} trials"
    value = {p["config"]: p for p in grid.values()}
    best_dev = max(p["dev"] for p in grid.values())
    grid_best = next(p for _, p in sorted(grid.items()) if p["dev"] == best_dev)
    print(f"grid: {grid_s:.0f} s, best dev {best_dev:.4f} {grid_best['config']}", flush=True)

    # 2. TPE and random, every seed, in the grid's store (every trial a cache hit).
    seeds = list(range(a.seeds))
    t0 = time.perf_counter()
    tune(a.kimcnn, g, shared, ["search.*", "--set", f"seeds={json.dumps(seeds)}"])
    search_s = time.perf_counter() - t0
    found = {}
    for algo in ["random", "tpe"]:
        for n in BUDGETS:
            for s in seeds:
                trials = points(g, f"search.{algo}.n{n}.s{s}")
                assert len(trials) == n, f"{algo} {n} seed {s}: {len(trials)} trials"
                for t in trials.values():  # the same point, the same train run: the same figures
                    assert t["dev"] == value[t["config"]]["dev"], f"{algo} {n} {s}: {t}"
                found[(algo, n, s)] = max(t["dev"] for t in trials.values())
    search = {}
    for n in BUDGETS:
        r = [found[("random", n, s)] for s in seeds]
        t = [found[("tpe", n, s)] for s in seeds]
        wins = sum(x > y for x, y in zip(t, r))
        losses = sum(x < y for x, y in zip(t, r))
        search[str(n)] = {
            "random_regret": sum(best_dev - x for x in r) / len(r), "tpe_regret": sum(best_dev - x for x in t) / len(t),
            "random_found_best": sum(x == best_dev for x in r), "tpe_found_best": sum(x == best_dev for x in t),
            "tpe_wins": wins, "ties": len(seeds) - wins - losses, "tpe_losses": losses, "sign_test_p": sign_test(wins, losses),
        }
        print(f"{n} trials: {search[str(n)]}", flush=True)

    # 3. ASHA on a fresh store.
    h = work / "asha"
    h.mkdir()
    (h / "pipeline.yaml").write_text(pipeline(shared, ASHA))
    data_stages(a.kimcnn, h, shared)
    asha_s = tune(a.kimcnn, h, shared, ["asha"])
    asha = points(h, "asha")
    asha_best_dev = max(p["dev"] for p in asha.values() if p["status"] == "completed")
    asha_best = next(p for _, p in sorted(asha.items()) if p["dev"] == asha_best_dev and p["status"] == "completed")
    res = {
        "versions": versions, "seeds": len(seeds), "space": SPACE, "base": BASE,
        "grid": {"wall_s": grid_s, "epochs": sum(p["epochs"] for p in grid.values()), "best": grid_best,
                 "points": sorted(({"config": p["config"], "dev": p["dev"], "test": p["test"]} for p in grid.values()), key=lambda p: -p["dev"])},
        "search": search, "search_wall_s": search_s,
        "asha": {"wall_s": asha_s, "epochs": sum(p["epochs"] for p in asha.values()), "best": asha_best,
                 "statuses": {s: sum(p["status"] == s for p in asha.values()) for s in ["completed", "stopped", "failed"]}},
    }
    Path(a.out + ".json").write_text(json.dumps(res, indent=2, default=list))
    Path(a.out + ".md").write_text(markdown(res))
    print(markdown(res))


def markdown(res):
    g, h = res["grid"], res["asha"]
    pct = lambda x: f"{100 * x:.1f}"
    cfg = lambda c: f"{c[0]}, dropout {c[1]}, batch {c[2]}"
    lines = [
        f"MR (the reference's split 0), GloVe 50-d, seed 1, pad bucket, 4 epochs a trial; space {res['space']} "
        f"({POINTS} points). A point's value: its best dev accuracy over its epochs; test at that epoch, never used to select.",
        "",
        f"The grid's best: **{cfg(g['best']['config'])}**, dev {pct(g['best']['dev'])}%, test {pct(g['best']['test'])}% "
        f"({g['epochs']} epochs trained, {g['wall_s']:.0f} s with 2 trials at a time). Dev of all 24 points: "
        f"{pct(g['points'][-1]['dev'])}-{pct(g['points'][0]['dev'])}%.",
        "",
        f"**TPE against random search**, {res['seeds']} seeds each (the studies run on the grid's store: every trial a cache hit, "
        f"{res['search_wall_s']:.0f} s for all {2 * len(BUDGETS) * res['seeds']} studies). TPE's first 5 trials (`tpe_startup: 5`) are "
        "random search's with the same seed, so seeds are paired; regret is the grid's best dev minus the best dev found, in points.",
        "",
        "| trials | regret random | regret TPE | found the best: random | found the best: TPE | TPE better / tied / worse | sign test p |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, s in res["search"].items():
        lines.append(f"| {n} of {POINTS} | {100 * s['random_regret']:.2f} | {100 * s['tpe_regret']:.2f} | {s['random_found_best']}/{res['seeds']} "
                     f"| {s['tpe_found_best']}/{res['seeds']} | {s['tpe_wins']} / {s['ties']} / {s['tpe_losses']} | {s['sign_test_p']:.2f} |")
    st = h["statuses"]
    lines += [
        "",
        f"**ASHA** (grace 1, reduction 2, max 4) over the same grid, fresh store: {h['epochs']} epochs trained of the grid's {g['epochs']} "
        f"({h['epochs'] / g['epochs']:.2f}), {h['wall_s']:.0f} s against {g['wall_s']:.0f} s ({g['wall_s'] / h['wall_s']:.2f}x faster); "
        f"{st['completed']} trials completed, {st['stopped']} stopped. Its best: {cfg(h['best']['config'])}, dev {pct(h['best']['dev'])}%, "
        f"test {pct(h['best']['test'])}% (the grid's: dev {pct(g['best']['dev'])}%, test {pct(g['best']['test'])}%).",
        "",
        "One training seed per point: the table's differences between points are partly seed noise, which the searchers see as "
        "the objective; the comparison of searchers on it is exact, the ranking of configs is not.",
        "",
        provenance.markdown(res["versions"]),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
