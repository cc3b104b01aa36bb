"""Tuner overhead per trial: kimcnn's tuner (crates/tune: Searcher::propose +
Scheduler::report) against Optuna's TPE and Ray Tune, with a trivial
objective, so that what is timed is the tuner's own bookkeeping.

The objective and space are those of crates/tune's `overhead` test: 4
dimensions (x, y uniform in [-5, 5], lr log-uniform in [1e-5, 1], act a choice
of 5), a closed-form value to minimise, reported 3 times per trial (3
"epochs", value + 1/epoch) to a successive-halving stopper (grace 1,
reduction 3). Every tuner runs its trials one after another unless said:

* kimcnn: the ignored test `overhead` of kimcnn-tune (release build), which
  times 1000 trials of ask (propose, with every done trial as history) and
  tell (3 ASHA reports) for random search and TPE, and prints the mean per
  trial and the mean of trials 900-999. It is run --reps times (default 3);
  the median of each figure is reported.
* Optuna: TPESampler (its defaults: 10 random start-up trials, 24
  candidates; kimcnn's TPE copies them) and RandomSampler, in-memory storage,
  SuccessiveHalvingPruner(min_resource=1, reduction_factor=3), the same
  objective through trial.suggest_* / trial.report / trial.should_prune, the
  same 1000 trials, --reps times.
* Ray Tune: a function trainable that computes the objective and calls
  tune.report 3 times, ASHAScheduler(grace_period=1, reduction_factor=3,
  max_t=10), random search (Ray's default BasicVariantGenerator) and
  OptunaSearch (TPE); --ray-trials trials (default 100; Ray starts an actor
  per trial, so it is far slower), 2 CPUs, 1 CPU per trial (2 trials at a
  time, Ray's default for this machine), reuse_actors at Ray's default
  (False). The figure is Tuner.fit()'s wall time / trials; ray.init() is timed
  apart and not included. One run (Ray's per-trial cost dwarfs the spread).

What each figure includes differs, and the .md says so: kimcnn's is the
search and scheduler calls alone (the crate's API, in-process, no journal);
Optuna's includes its in-memory storage (the Study object a user drives);
Ray's includes its trial actors, result pipeline and experiment logging, the
cost a user of Ray Tune pays per trial.

Usage: python3 bench/tuner_overhead.py --python TUNE_PY --out PREFIX
       [--kimcnn-test EXE | --cargo cargo] [--trials 1000] [--ray-trials 100]
TUNE_PY: a python with optuna and ray[tune] (bench/run.sh's tune venv).
Writes PREFIX.json and PREFIX.md.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # nothing written beside the bench scripts
sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance  # noqa: E402  (bench/provenance.py)

ROOT = Path(__file__).resolve().parent.parent
ACTS = {"relu": 0.3, "tanh": 0.0, "sigmoid": 0.6, "identity": 1.0, "elu": 0.4}


def objective(x, y, lr, act):
    """crates/tune's benchmark objective (tests/search.rs `objective`): minimise, optimum 0."""
    import math
    return (x - 1.2) ** 2 / 25.0 + (y + 2.1) ** 2 / 25.0 + (math.log10(lr) + 2.7) ** 2 / 6.25 + ACTS[act]


# ---------------------------------------------------------------------------
# Children: each baseline runs in a process of the tune venv's python and
# prints one JSON line.
# ---------------------------------------------------------------------------

def child_optuna(trials, sampler_name):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=1) if sampler_name == "tpe" else optuna.samplers.RandomSampler(seed=1)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)

    def obj(trial):
        v = objective(trial.suggest_float("x", -5, 5), trial.suggest_float("y", -5, 5),
                      trial.suggest_float("lr", 1e-5, 1, log=True),
                      trial.suggest_categorical("act", list(ACTS)))
        for epoch in (1, 2, 3):
            trial.report(v + 1.0 / epoch, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return v

    # Time each trial's ask + objective + tell, as optimize() runs them.
    stamps = []
    t0 = time.perf_counter()
    study.optimize(obj, n_trials=trials, callbacks=[lambda s, t: stamps.append(time.perf_counter())])
    total = time.perf_counter() - t0
    tail = (stamps[-1] - stamps[-101]) / 100 if len(stamps) > 100 else None
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    print(json.dumps({"total_s": total, "per_trial_us": total / trials * 1e6,
                      "last100_per_trial_us": tail * 1e6 if tail else None,
                      "best": study.best_value, "pruned": pruned, "optuna": optuna.__version__}))


def child_ray(trials, search, work):
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    def trainable(config):
        v = objective(config["x"], config["y"], config["lr"], config["act"])
        for epoch in (1, 2, 3):
            tune.report({"loss": v + 1.0 / epoch})

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t0
    space = {"x": tune.uniform(-5, 5), "y": tune.uniform(-5, 5), "lr": tune.loguniform(1e-5, 1),
             "act": tune.choice(list(ACTS))}
    alg = None
    if search == "tpe":
        from ray.tune.search.optuna import OptunaSearch
        import optuna
        alg = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=1))
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}), param_space=space,
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=trials, search_alg=alg,
                                    scheduler=ASHAScheduler(grace_period=1, reduction_factor=3, max_t=10)),
        run_config=tune.RunConfig(storage_path=os.path.join(work, f"ray-{search}"), verbose=0))
    t0 = time.perf_counter()
    grid = tuner.fit()
    fit_s = time.perf_counter() - t0
    n = len(grid)
    best = grid.get_best_result().metrics["loss"]
    ray.shutdown()
    print(json.dumps({"init_s": init_s, "fit_s": fit_s, "trials": n, "errors": len(grid.errors),
                      "per_trial_ms": fit_s / trials * 1e3, "best_last_report": best, "ray": ray.__version__}))


def run_child(python, args):
    r = subprocess.run([python, os.path.abspath(__file__), "--child"] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# kimcnn: the crate's ignored `overhead` test.
# ---------------------------------------------------------------------------

LINE = re.compile(r"^(\w+): ([\d.]+) us per trial over (\d+) trials \(ask \+ tell\); trials 900-999: ([\d.]+) us each; "
                  r"best ([-\d.]+)")


def kimcnn_test_binary(cargo):
    """Builds kimcnn-tune's tests in release (no run) and returns the test executable's path."""
    r = subprocess.run([cargo, "test", "-p", "kimcnn-tune", "--release", "--locked", "--no-run",
                        "--message-format=json"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"cargo test --no-run failed:\n{r.stderr[-3000:]}")
    for line in r.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "kimcnn_tune":
            return msg["executable"]
    raise SystemExit("no test executable for kimcnn-tune in cargo's output")


def kimcnn_overhead(exe):
    r = subprocess.run([exe, "--ignored", "--nocapture", "--exact", "tests::search::overhead"],
                       capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        m = LINE.match(line.strip())
        if m:
            out[m.group(1).lower()] = {"per_trial_us": float(m.group(2)), "trials": int(m.group(3)),
                                       "last100_per_trial_us": float(m.group(4)), "best": float(m.group(5))}
    if r.returncode != 0 or set(out) != {"random", "tpe"}:
        raise SystemExit(f"{exe} overhead: exit {r.returncode}, could not read its figures:\n{r.stdout}\n{r.stderr}")
    return out


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", help="a python with optuna and ray[tune]")
    ap.add_argument("--out")
    ap.add_argument("--kimcnn-test", help="kimcnn-tune's test executable (default: built by --cargo)")
    ap.add_argument("--cargo", default="cargo")
    ap.add_argument("--kimcnn", help="the kimcnn binary (its version is recorded)")
    ap.add_argument("--trials", type=int, default=1000, help="kimcnn and Optuna trials (kimcnn's test runs 1000)")
    ap.add_argument("--ray-trials", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", default=tempfile.gettempdir())
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "optuna":
            child_optuna(int(rest[0]), rest[1])
        else:
            child_ray(int(rest[0]), rest[1], rest[2])
        return
    if not a.python or not a.out:
        ap.error("--python and --out are required")
    work = tempfile.mkdtemp(prefix="tuner-overhead-", dir=a.work)
    versions = provenance.collect(
        kimcnn=provenance.kimcnn(a.kimcnn) if a.kimcnn else "not given (the tune crate of this checkout)",
        python=f"{a.python} (python {provenance.python_version(a.python)})",
        optuna=provenance.python_module(a.python, "optuna"),
        ray=provenance.python_module(a.python, "ray"),
    )
    print(provenance.markdown(versions), flush=True)

    exe = a.kimcnn_test or kimcnn_test_binary(a.cargo)
    load_start = os.getloadavg()[0]  # the machine is not reserved: its load is recorded beside the figures
    res = {"trials": a.trials, "ray_trials": a.ray_trials, "reps": a.reps, "versions": versions, "kimcnn_test": exe}
    kim = [kimcnn_overhead(exe) for _ in range(a.reps)]
    res["kimcnn"] = {alg: {"runs": [k[alg] for k in kim], "per_trial_us": med([k[alg] for k in kim], "per_trial_us"),
                           "last100_per_trial_us": med([k[alg] for k in kim], "last100_per_trial_us")}
                     for alg in ("random", "tpe")}
    print("kimcnn", json.dumps({k: v["per_trial_us"] for k, v in res["kimcnn"].items()}), flush=True)
    res["optuna"] = {}
    for alg in ("random", "tpe"):
        runs = [run_child(a.python, ["optuna", str(a.trials), alg]) for _ in range(a.reps)]
        res["optuna"][alg] = {"runs": runs, "per_trial_us": med(runs, "per_trial_us"),
                              "last100_per_trial_us": med(runs, "last100_per_trial_us")}
        print("optuna", alg, res["optuna"][alg]["per_trial_us"], flush=True)
    res["ray"] = {}
    for alg in ("random", "tpe"):
        res["ray"][alg] = run_child(a.python, ["ray", str(a.ray_trials), alg, work])
        print("ray", alg, res["ray"][alg], flush=True)
    res["load_average_1min"] = {"start": load_start, "end": os.getloadavg()[0]}
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")

    ms = lambda us: f"{us / 1000:.3f}"
    k, o, r = res["kimcnn"], res["optuna"], res["ray"]
    md = [f"Tuner overhead per trial with a trivial objective (crates/tune's `overhead` test: 4-d space, x, y "
          f"uniform, lr log-uniform, act a choice of 5; 3 reports per trial to successive halving, grace 1, reduction "
          f"3), trials one after another. kimcnn: {k['random']['runs'][0]['trials']} trials (its test's count), "
          f"Optuna: {a.trials} trials, each the median of {a.reps} runs; Ray Tune: {a.ray_trials} trials, 2 at a time "
          "(1 CPU each on 2 cores), one run. Target: under 1 ms per trial.", "",
          "| tuner | search | ms per trial (mean over all trials) | ms per trial, the last 100 trials | ratio to kimcnn (mean) |",
          "|---|---|---|---|---|"]
    for alg, name in (("random", "random"), ("tpe", "TPE")):
        base = k[alg]["per_trial_us"]
        md.append(f"| kimcnn (Searcher::propose + Scheduler::report) | {name} | {ms(base)} | "
                  f"{ms(k[alg]['last100_per_trial_us'])} | 1.00x |")
        t = o[alg]["last100_per_trial_us"]
        md.append(f"| Optuna {o[alg]['runs'][0]['optuna']} (in-memory study) | {name} | {ms(o[alg]['per_trial_us'])} | "
                  f"{ms(t) if t else '-'} | {o[alg]['per_trial_us'] / base:,.0f}x |")
        md.append(f"| Ray Tune {r[alg]['ray']} ({'BasicVariantGenerator' if alg == 'random' else 'OptunaSearch'}, ASHA) | "
                  f"{name} | {r[alg]['per_trial_ms']:.1f} | - | {r[alg]['per_trial_ms'] * 1000 / base:,.0f}x |")
    md += ["", "What each figure includes: kimcnn's, the search and scheduler calls alone (the crate's API in "
           "process; `kimcnn tune` adds a journal line per event and a cached train run per trial, not timed here); "
           "Optuna's, its in-memory storage and pruner as `study.optimize` drives them; Ray Tune's, `Tuner.fit()`'s "
           f"wall time over the trials (an actor per trial, result pipeline, experiment logging; `ray.init()` "
           f"apart: {r['random']['init_s']:.1f} s and {r['tpe']['init_s']:.1f} s). TPE's per-trial cost grows with "
           "the history (it models every done trial), hence the last-100 column. The machine's 1-minute load average "
           f"(on {os.cpu_count()} cores): {res['load_average_1min']['start']:.2f} at the start, "
           f"{res['load_average_1min']['end']:.2f} at the end.",
           "", provenance.markdown(versions)]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
