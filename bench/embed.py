"""Embed-stage benchmark: a synthetic GoogleNews-sized word2vec binary
(3M words x 300 dims, 3.6 GB, written here) and an MR-sized vocabulary.

Measures the `embed` stage (wall time of `kimcnn run embed --force`, the
stage's own time from its run record, peak RSS), `cat file > /dev/null` on
the same file, and gensim's KeyedVectors.load_word2vec_format (the baseline a
user would otherwise reach for). Writes <out>.json and <out>.md.
"""
import argparse
import array
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # nothing written beside the bench scripts
import provenance  # noqa: E402  (bench/provenance.py)

WORDS, DIM, VOCAB = 3_000_000, 300, 18_765


def write_vectors(path: Path):
    rng = random.Random(0)
    block = [array.array("f", [rng.gauss(0.0, 0.1) for _ in range(DIM)]).tobytes() for _ in range(1024)]
    with open(path, "wb", buffering=1 << 24) as f:
        f.write(b"%d %d\n" % (WORDS, DIM))
        buf = []
        for i in range(WORDS):
            buf.append(b"w%d " % i)
            buf.append(block[i % 1024])
            buf.append(b"\n")
            if len(buf) >= 30000:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))


def timed(cmd, cwd=None, shell=False):
    """(wall seconds, peak RSS in MB) via GNU time."""
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + (["sh", "-c", cmd] if shell else cmd), cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    wall = time.perf_counter() - t0
    return wall, int(r.stderr.strip().splitlines()[-1]) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--gensim-python", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    work = Path(a.work)
    proj = work / "embed-bench"
    proj.mkdir(parents=True)
    vec = work / "vectors.bin"
    t0 = time.perf_counter()
    write_vectors(vec)
    size = vec.stat().st_size
    print(f"wrote {vec} ({size / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s", flush=True)
    # MR-sized vocabulary: 90% of it in the vectors (spread over the file), 10% not.
    rng = random.Random(1)
    words = [f"w{k}" for k in rng.sample(range(WORDS), int(VOCAB * 0.9))] + [f"oov{k}" for k in range(VOCAB - int(VOCAB * 0.9))]
    (proj / "words.txt").write_text("\n".join(words) + "\n")
    (proj / "pipeline.yaml").write_text(f"""stages:
  words: {{uses: source, with: {{path: words.txt}}}}
  vectors: {{uses: source, with: {{path: {vec}}}}}
  tokens: {{uses: tokenize, inputs: {{all: words.data}}, with: {{format: lines, cleaner: whitespace, dev_fraction: 0}}}}
  vocab: {{uses: vocab, inputs: {{tokens: tokens.tokens}}}}
  embed: {{uses: embed, inputs: {{vocab: vocab.vocab, vectors: vectors.data}}, with: {{format: word2vec-binary}}}}
""")
    subprocess.run([a.kimcnn, "run"], cwd=proj, check=True, stdout=subprocess.DEVNULL)
    obj = (proj / "artifacts/out/vectors/data").resolve()
    versions = provenance.collect(kimcnn=provenance.kimcnn(a.kimcnn),
                                  gensim=provenance.python_module(a.gensim_python, "gensim"))
    res = {"file_bytes": size, "words": WORDS, "dim": DIM, "vocab": VOCAB, "versions": versions, "runs": []}
    for _ in range(a.reps):
        subprocess.run(["cat", str(obj)], stdout=subprocess.DEVNULL, check=True)
        wall, rss = timed([a.kimcnn, "run", "embed", "--force"], cwd=proj)
        lock = (proj / "pipeline.lock").read_text()
        key = re.search(r"\n  embed:\n(?:    .*\n)*?    key: ([0-9a-f]{64})", lock).group(1)
        stage_s = json.loads((proj / f"artifacts/runs/{key}.json").read_text())["seconds"]
        cat_wall, _ = timed(f"cat {obj} > /dev/null", shell=True)
        res["runs"].append({"kimcnn_wall_s": wall, "embed_stage_s": stage_s, "peak_rss_mb": rss, "cat_s": cat_wall})
        print(res["runs"][-1], flush=True)
    cov = json.loads((proj / "artifacts/out/embed/coverage").read_text())
    res["coverage"] = cov
    matrix_mb = (VOCAB + 2) * DIM * 4 / 2**20
    res["output_matrix_mb"] = matrix_mb
    g_wall, g_rss = timed([a.gensim_python, "-c", f"from gensim.models import KeyedVectors as K; K.load_word2vec_format('{obj}', binary=True)"])
    res["gensim"] = {"wall_s": g_wall, "peak_rss_mb": g_rss}
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    med = lambda k: sorted(r[k] for r in res["runs"])[len(res["runs"]) // 2]
    gb = size / 1e9
    md = [
        f"word2vec binary, {WORDS:,} words x {DIM} dims ({gb:.2f} GB, page-cached); vocabulary {VOCAB:,} words "
        f"(MR-sized, {cov['words_found']:,} found); output matrix {matrix_mb:.1f} MiB. Medians of {a.reps}.",
        "",
        "| | wall | read speed | peak RSS |",
        "|---|---|---|---|",
        f"| `embed` stage alone (run record) | {med('embed_stage_s'):.2f} s | {gb / med('embed_stage_s'):.2f} GB/s | |",
        f"| `kimcnn run embed --force` (+ start, input re-hash, commit) | {med('kimcnn_wall_s'):.2f} s | {gb / med('kimcnn_wall_s'):.2f} GB/s | {med('peak_rss_mb'):.0f} MB |",
        f"| `cat file > /dev/null` | {med('cat_s'):.2f} s | {gb / med('cat_s'):.2f} GB/s | |",
        f"| gensim `load_word2vec_format(binary=True)` | {g_wall:.1f} s | {gb / g_wall:.2f} GB/s | {g_rss:.0f} MB |",
        "",
        f"Ratios: gensim / kimcnn run wall = {g_wall / med('kimcnn_wall_s'):.1f}x; "
        f"embed stage vs cat = {med('cat_s') / med('embed_stage_s'):.2f}x cat's speed; "
        f"peak RSS = {med('peak_rss_mb') / matrix_mb:.1f}x the output matrix.",
        "",
        provenance.markdown(versions),
    ]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
