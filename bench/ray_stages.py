"""What a stage costs on Ray over running it here: a one-node Ray 2.60 head
with token auth on loopback and s3s-fs as the remote, both on this machine.
Two stages, each forced `--reps` times locally and with `--executor ray`
(in turn, so both see the same machine load): a trivial `exec` stage (the
overhead alone) and a short training (MR, 2,000 sentences, 2 epochs).
Reported: the whole `kimcnn run` wall time, the stage's own seconds (its run
record) and their difference, the executor's overhead. Then, on paper with
those figures, a 200-trial study on 8 GPU nodes against one such node.
Writes <out>.json and <out>.md.
"""
import argparse
import gzip
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # nothing written beside the bench scripts
import provenance  # noqa: E402  (bench/provenance.py)
from local_s3 import KEY, SECRET, free_port, start, wait_port  # noqa: E402  (bench/local_s3.py)

TOKEN = "kimcnn-bench-token-0123456789"


def pipeline(endpoint, dashboard):
    return f"""params: {{seed: 1}}
stages:
  pos: {{uses: source, with: {{path: pos.txt}}}}
  neg: {{uses: source, with: {{path: neg.txt}}}}
  glove: {{uses: source, with: {{path: glove.txt}}}}
  tokenize: {{uses: tokenize, inputs: {{pos: pos.data, neg: neg.data}}, with: {{format: lines, order: [pos, neg], folds: 10, seed: 1}}}}
  vocab: {{uses: vocab, inputs: {{tokens: tokenize.tokens}}}}
  embed: {{uses: embed, inputs: {{vocab: vocab.vocab, vectors: glove.data}}}}
  trivial: {{uses: exec, outputs: [out], with: {{cmd: 'echo done > "$OUT_out"'}}}}
  train:
    uses: train
    inputs: {{tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}}
    with: {{dataset: mr, variant: non-static, fold: 0, epochs: 2, seed: 1}}
remotes:
  bench: {{url: 's3://bench/kimcnn', endpoint: '{endpoint}', region: us-east-1}}
ray: {{address: 'http://{dashboard}'}}
"""


def ray_floor(dashboard, reps):
    """Seconds from submitting a bare `true` job through the Jobs API to Ray listing it
    SUCCEEDED, polled every 20 ms: what any job costs on this cluster, kimcnn or not."""
    import urllib.request
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    times = []
    for i in range(reps):
        body = json.dumps({"entrypoint": "true", "submission_id": f"floor-{i}-{time.time_ns()}"}).encode()
        t0 = time.perf_counter()
        req = urllib.request.Request(f"http://{dashboard}/api/jobs/", data=body, headers=headers, method="POST")
        job = json.loads(urllib.request.urlopen(req).read())["submission_id"]
        while True:
            req = urllib.request.Request(f"http://{dashboard}/api/jobs/{job}", headers=headers)
            status = json.loads(urllib.request.urlopen(req).read())["status"]
            if status in ("SUCCEEDED", "FAILED", "STOPPED"):
                assert status == "SUCCEEDED", status
                break
            time.sleep(0.02)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_data(project, shared):
    kim = Path(shared) / "datasets/kim"
    for name, file in [("pos.txt", "rt-polarity.pos"), ("neg.txt", "rt-polarity.neg")]:
        lines = (kim / file).read_bytes().split(b"\n")[:1000]
        (project / name).write_bytes(b"\n".join(lines) + b"\n")
    with gzip.open(Path(shared) / "vectors/glove.6B.50d.txt.gz", "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(20000)]
    (project / "glove.txt").write_text("".join(lines))


def stage_seconds(project, stage):
    """The stage's own seconds, from the run record pipeline.lock points to."""
    lock = (project / "pipeline.lock").read_text()
    block = lock.split(f"\n  {stage}:\n", 1)[1]
    key = next(l.split(":", 1)[1].strip() for l in block.splitlines() if l.strip().startswith("key:"))
    return json.loads((project / "artifacts/runs" / f"{key}.json").read_text())["seconds"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--ray", required=True, help="the `ray` executable (Ray 2.60 with the dashboard)")
    ap.add_argument("--server", required=True, help="s3s-fs")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--gpu-trial-s", type=float, default=17.0,
                    help="one trial's seconds on a GPU node for the paper estimate (BENCHMARKS.md: a TREC training on the H200, 17 s)")
    a = ap.parse_args()
    a.kimcnn = str(Path(a.kimcnn).resolve())
    work = Path(a.work) / "ray-bench"
    (work / "s3/bench").mkdir(parents=True)
    gcs, dash = free_port(), free_port()
    dashboard = f"127.0.0.1:{dash}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAY_"))}
    env.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=TOKEN,
               KIMCNN_NODE_STORE=str(work / "node-store"), KIMCNN_NO_PROGRESS="1")
    server, endpoint = start(a.server, work / "s3")
    ray_tmp = work / "ray"
    head = None
    try:
        # Its own process group: stopped below by signalling it (`ray stop` would stop every Ray of this user).
        head = subprocess.Popen([a.ray, "start", "--head", f"--port={gcs}", f"--dashboard-port={dash}", "--dashboard-host=127.0.0.1",
                                 "--include-dashboard=true", "--num-cpus=2", "--num-gpus=0", "--disable-usage-stats",
                                 "--node-ip-address=127.0.0.1", f"--temp-dir={ray_tmp}"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if head.wait() != 0:
            raise SystemExit("ray start failed")
        wait_port(dash, 90)
        project = work / "project"
        project.mkdir()
        (project / "pipeline.yaml").write_text(pipeline(endpoint, dashboard))
        write_data(project, a.shared)
        # Everything once on each side: upstream stages cached, inputs and binaries on the cluster.
        subprocess.run([a.kimcnn, "run", "-q"], cwd=project, env=env, check=True)
        subprocess.run([a.kimcnn, "run", "-q", "--executor", "ray", "--force", "trivial", "train"], cwd=project, env=env, check=True)
        res = {"reps": a.reps, "stages": {}, "ray_floor_s": ray_floor(dashboard, a.reps)}
        for stage in ["trivial", "train"]:
            rows = {"local": [], "ray": []}
            for _ in range(a.reps):
                for executor in ["local", "ray"]:
                    t0 = time.perf_counter()
                    subprocess.run([a.kimcnn, "run", "-q", "--executor", executor, "--force", stage], cwd=project, env=env,
                                   check=True)
                    wall = time.perf_counter() - t0
                    rows[executor].append({"wall_s": wall, "stage_s": stage_seconds(project, stage)})
            med = {x: {k: statistics.median(r[k] for r in rows[x]) for k in ["wall_s", "stage_s"]} for x in rows}
            res["stages"][stage] = {"runs": rows, "median": med, "overhead_s": med["ray"]["wall_s"] - med["local"]["wall_s"]}
            print(f"{stage}: local {med['local']['wall_s']:.2f} s, ray {med['ray']['wall_s']:.2f} s", flush=True)
        res["versions"] = provenance.collect(kimcnn=provenance.kimcnn(a.kimcnn), ray=provenance.first_line([a.ray, "--version"]),
                                             s3_server=provenance.first_line([a.server, "--version"]))
    finally:
        if head is not None:
            for sig in [signal.SIGTERM, signal.SIGKILL]:
                try:
                    os.killpg(head.pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(2)
        server.kill()
        server.wait()

    # On paper: 200 trials, one node running them one at a time against 8 such nodes, a trial a Ray job.
    o = res["stages"]["trivial"]["overhead_s"]
    t = a.gpu_trial_s
    trials, nodes = 200, 8
    one = trials * t
    per_node = math.ceil(trials / nodes)
    # Each node runs its trials in jobs of `batch`; each job pays the overhead once.
    on_nodes = lambda batch: per_node * t + math.ceil(per_node / batch) * o
    eight = on_nodes(1)
    paper = {"trials": trials, "nodes": nodes, "trial_s": t, "overhead_s": o, "one_node_s": one, "eight_nodes_s": eight,
             "speed_up": one / eight}
    for batch in [1, 4, 10]:
        paper[f"speed_up_batch_{batch}"] = one / on_nodes(batch)
    res["paper"] = paper
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")

    def row(stage, what):
        m = res["stages"][stage]["median"]
        return (f"| {what} | {m['local']['wall_s']:.2f} s ({m['local']['stage_s']:.2f} s in the stage) | "
                f"{m['ray']['wall_s']:.2f} s ({m['ray']['stage_s']:.2f} s in the stage) | "
                f"{res['stages'][stage]['overhead_s']:+.2f} s |")
    md = [f"Medians of {a.reps} forced runs each, local and `--executor ray` in turn: a one-node Ray 2.60 head "
          "(token auth) and s3s-fs on loopback, on this machine. Wall: the whole `kimcnn run`; in the stage: its run record's seconds.",
          "", "| stage | local | Ray job | overhead |", "|---|---|---|---|",
          row("trivial", "trivial (`exec`, writes one line)"),
          row("train", "short training (MR 2,000 sentences, 2 epochs)"),
          "",
          f"Ray's own floor on this cluster, a bare `true` job submitted through the Jobs API and polled every 20 ms: "
          f"{res['ray_floor_s']:.2f} s (its job supervisor and driver start). The rest of the overhead, "
          f"{o - res['ray_floor_s']:.2f} s, is kimcnn's: the node's process start, inputs pulled and outputs pushed "
          "through the remote, the coordinator's polling (100 ms after a submission, doubling to 1 s) and its pull of the outputs.",
          "",
          f"On paper, with that overhead ({o:.1f} s a job) and a {t:.0f} s trial (a TREC training on the H200): "
          f"{trials} trials one at a time on one GPU node take {one / 60:.0f} min; on {nodes} nodes, a trial a job, "
          f"{eight / 60:.1f} min ({paper['speed_up']:.1f}x of the ideal {nodes}x). Batching trials per job (not built: kimcnn submits a trial a job) "
          f"(4: {paper['speed_up_batch_4']:.1f}x, 10: {paper['speed_up_batch_10']:.1f}x) pays the overhead once per batch. "
          f"The overhead dominates only where a job computes for less than about {o:.1f} s: a trivial stage, "
          "a training of a few epochs on a small data set on a GPU; there, batching would pay "
          f"(with {t / 10:.1f} s trials, 10 per job: {one / 10 / (math.ceil(trials / nodes) * t / 10 + math.ceil(trials / nodes / 10) * o):.1f}x "
          f"against {one / 10 / (math.ceil(trials / nodes) * (t / 10 + o)):.1f}x a trial a job). A trial already in the "
          "store is no job at all: the runner finds it before the executor is asked. On a real cluster the remote is "
          "across a network: a node pulls a study's inputs once (its store keeps them), each trial's model goes back.",
          "", provenance.markdown(res["versions"])]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
