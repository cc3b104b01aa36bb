"""Push and pull against a local S3 server (s3s-fs on loopback): a store of
1,000 small objects (4 KiB) and 3 large ones (100 MB), made by exec stages;
`kimcnn push` into an empty prefix, `kimcnn pull` into a fresh clone, against
`aws s3 sync` of the same object files (upload to another empty prefix,
download into an empty directory), same server, same run. Writes
<out>.json and <out>.md.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # nothing written beside the bench scripts
import provenance  # noqa: E402  (bench/provenance.py)
from local_s3 import KEY, SECRET, start  # noqa: E402  (bench/local_s3.py)


def pipeline(endpoint):
    y = [f"remotes:\n  bench: {{url: 's3://bench/kimcnn', endpoint: '{endpoint}', region: us-east-1}}", "stages:"]
    for g in range(10):
        outs = [f"o{i}" for i in range(100)]
        cmd = f": stage {g}; for i in $(seq 0 99); do head -c 4096 /dev/urandom > \\\"$(printenv OUT_o$i)\\\"; done"
        y.append(f"  small{g}: {{uses: exec, outputs: [{', '.join(outs)}], with: {{cmd: \"{cmd}\"}}}}")
    for g in range(3):
        y.append(f"  big{g}: {{uses: exec, outputs: [data], with: {{cmd: ': stage {g}; head -c 100000000 /dev/urandom > \"$OUT_data\"'}}}}")
    return "\n".join(y) + "\n"


def timed(cmd, **kw):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--server", required=True, help="s3s-fs")
    ap.add_argument("--aws", required=True, help="the aws CLI")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    work = Path(a.work) / "remote-bench"
    root = work / "s3"
    (root / "bench").mkdir(parents=True)
    server, endpoint = start(a.server, root)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1", KIMCNN_NO_PROGRESS="1")
        a_dir, b_dir = work / "a", work / "b"
        a_dir.mkdir()
        (a_dir / "pipeline.yaml").write_text(pipeline(endpoint))
        subprocess.run([a.kimcnn, "run", "--jobs", "2"], cwd=a_dir, env=env, check=True, stdout=subprocess.DEVNULL)
        objects = [p for p in (a_dir / "artifacts/objects").rglob("*") if p.is_file()]
        n, size = len(objects), sum(p.stat().st_size for p in objects)
        versions = provenance.collect(kimcnn=provenance.kimcnn(a.kimcnn), aws=provenance.first_line([a.aws, "--version"]),
                                      s3_server=provenance.first_line([a.server, "--version"]))
        res = {"objects": n, "bytes": size, "versions": versions}
        res["kimcnn_push_s"] = timed([a.kimcnn, "push"], cwd=a_dir, env=env)
        res["kimcnn_push_again_s"] = timed([a.kimcnn, "push"], cwd=a_dir, env=env)
        b_dir.mkdir()
        shutil.copy(a_dir / "pipeline.yaml", b_dir)
        shutil.copy(a_dir / "pipeline.lock", b_dir)
        res["kimcnn_pull_s"] = timed([a.kimcnn, "pull"], cwd=b_dir, env=env)
        pulled = [p for p in (b_dir / "artifacts/objects").rglob("*") if p.is_file()]
        assert len(pulled) == n, (len(pulled), n)
        aws = [a.aws, "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors"]
        res["aws_push_s"] = timed(aws + [str(a_dir / "artifacts/objects"), "s3://bench/aws/objects"], env=env)
        res["aws_push_again_s"] = timed(aws + [str(a_dir / "artifacts/objects"), "s3://bench/aws/objects"], env=env)
        res["aws_pull_s"] = timed(aws + ["s3://bench/aws/objects", str(work / "aws-down")], env=env)
        assert sum(1 for p in (work / "aws-down").rglob("*") if p.is_file()) == n
    finally:
        server.kill()
        server.wait()
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    mbs = lambda s: size / 1e6 / s
    row = lambda what, k, b: (f"| {what} | {res[k]:.2f} s ({n / res[k]:,.0f} objects/s, {mbs(res[k]):,.0f} MB/s) | "
                              f"{res[b]:.2f} s ({n / res[b]:,.0f} objects/s, {mbs(res[b]):,.0f} MB/s) | {res[b] / res[k]:.2f}x |")
    md = [f"{n:,} objects ({size / 1e6:,.0f} MB: 1,000 x 4 KiB and 3 x 100 MB) to and from s3s-fs on loopback; "
          "kimcnn with 16 parallel transfers, aws CLI with its defaults (10 concurrent requests).", "",
          "| | kimcnn | `aws s3 sync` | ratio (aws / kimcnn) |", "|---|---|---|---|",
          row("push (empty remote)", "kimcnn_push_s", "aws_push_s"),
          row("push again (nothing to send)", "kimcnn_push_again_s", "aws_push_again_s"),
          row("pull (empty store / directory)", "kimcnn_pull_s", "aws_pull_s"),
          "", provenance.markdown(versions)]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
