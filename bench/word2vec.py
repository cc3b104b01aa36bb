"""word2vec training speed (issue 14): kimcnn's `word2vec` stage against
gensim's Word2Vec on the same tokens, params and one thread, same run.

The corpus: NSMC's 150k training reviews and its 512k unlabeled ones,
lower-cased and cut at non-word characters here, written one document a line
with the tokens separated by spaces. kimcnn reads that file through a
`tokenize` stage (format `lines`, cleaner `whitespace`: the tokens as they
are), gensim through LineSentence: the same token stream. Params: dim 100,
window 5, negative 5, min_count 5, sample 1e-3, one epoch, one thread.
Speed is words trained on a second: tokens of the kept words (before
sub-sampling) over the training seconds (kimcnn: its `timings` output;
gensim: `train()` alone, after `build_vocab`). A nearest-neighbour check of
both tools' vectors is printed beside.

Writes PREFIX.json and PREFIX.md.
"""
import sys

sys.dont_write_bytecode = True

import argparse
import gzip
import json
import re
import subprocess
import time
from pathlib import Path

import provenance

QUERIES = ["최고", "재미", "배우", "쓰레기"]


def corpus(shared: Path, out: Path):
    word = re.compile(r"\w+")
    n = 0
    with out.open("w", encoding="utf-8") as f:
        with (shared / "datasets/nsmc/ratings_train.txt").open(encoding="utf-8") as t:
            next(t)
            for line in t:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 3 and word.search(parts[1]):
                    f.write(" ".join(word.findall(parts[1].lower())) + "\n")
                    n += 1
        with gzip.open(shared / "datasets/nsmc/unlabeled.txt.gz", "rt", encoding="utf-8", errors="replace") as u:
            for line in u:
                if word.search(line):
                    f.write(" ".join(word.findall(line.lower())) + "\n")
                    n += 1
    return n


GENSIM = r"""
import json, sys, time
from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence
path, sg = sys.argv[1], int(sys.argv[2])
m = Word2Vec(vector_size=100, window=5, negative=5, min_count=5, sample=1e-3, workers=1, sg=sg, seed=1, epochs=1)
s = LineSentence(path)
m.build_vocab(s)
kept = int(sum(m.wv.get_vecattr(w, "count") for w in m.wv.index_to_key))
t0 = time.perf_counter()
m.train(s, total_examples=m.corpus_count, epochs=1)
secs = time.perf_counter() - t0
near = {q: [[w, round(float(c), 2)] for w, c in m.wv.most_similar(q, topn=5)] for q in sys.argv[3:] if q in m.wv}
print(json.dumps({"seconds": secs, "words": len(m.wv), "tokens": kept, "words_per_s": kept / secs, "near": near}))
"""

NEAR = r"""
import json, sys
from gensim.models import KeyedVectors as K
k = K.load_word2vec_format(sys.argv[1], binary=True)
print(json.dumps({q: [[w, round(float(c), 2)] for w, c in k.most_similar(q, topn=5)] for q in sys.argv[2:] if q in k}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--python", required=True, help="a Python with gensim 4.4")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    a.kimcnn = str(Path(a.kimcnn).resolve())
    work = Path(a.work) / "word2vec-bench"
    work.mkdir(parents=True)
    text = work / "corpus.txt"
    docs = corpus(Path(a.shared), text)
    print(f"corpus: {docs} documents, {text.stat().st_size / 1e6:.0f} MB", flush=True)
    (work / "pipeline.yaml").write_text(f"""stages:
  text: {{uses: source, with: {{path: {text}}}}}
  tokens: {{uses: tokenize, inputs: {{all: text.data}}, with: {{format: lines, cleaner: whitespace, lower: false, dev_fraction: 0}}}}
  w2v:
    uses: word2vec
    matrix: {{arch: [skipgram, cbow]}}
    inputs: {{tokens: tokens.tokens, summary: tokens.summary}}
    with: {{arch: "${{arch}}", dim: 100, window: 5, negative: 5, min_count: 5, sample: 0.001, epochs: 1, threads: 1}}
""")
    subprocess.run([a.kimcnn, "run", "tokens"], cwd=work, check=True, stdout=subprocess.DEVNULL)
    versions = provenance.collect(kimcnn=provenance.kimcnn(a.kimcnn), gensim=provenance.python_module(a.python, "gensim"))
    res = {"documents": docs, "versions": versions, "runs": {}}
    for arch, sg in [("skipgram", 1), ("cbow", 0)]:
        subprocess.run([a.kimcnn, "run", f"w2v.{arch}", "--force"], cwd=work, check=True, stdout=subprocess.DEVNULL)
        t = json.loads((work / f"artifacts/out/w2v.{arch}/timings").read_text())
        s = json.loads((work / f"artifacts/out/w2v.{arch}/summary").read_text())
        near = json.loads(subprocess.run([a.python, "-c", NEAR, str(work / f"artifacts/out/w2v.{arch}/vectors"), *QUERIES],
                                         capture_output=True, text=True, check=True).stdout)
        g = json.loads(subprocess.run([a.python, "-c", GENSIM, str(text), str(sg), *QUERIES], capture_output=True, text=True, check=True).stdout)
        res["runs"][arch] = {"kimcnn": {"seconds": t["seconds"], "words_per_s": t["words_per_s"], "words": s["words"], "tokens": s["tokens"], "near": near},
                             "gensim": g}
        print(arch, json.dumps(res["runs"][arch], ensure_ascii=False)[:400], flush=True)
    Path(a.out + ".json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    md = [
        f"NSMC training reviews + unlabeled reviews ({docs:,} documents), the same tokens for both; dim 100, window 5, "
        "negative 5, min_count 5, sample 1e-3, one epoch, one thread. Words/s: tokens of kept words over training seconds.",
        "",
        "| | kimcnn words/s | gensim words/s | kimcnn / gensim | words (kimcnn / gensim) | tokens (kimcnn / gensim) |",
        "|---|---|---|---|---|---|",
    ]
    for arch, r in res["runs"].items():
        k, g = r["kimcnn"], r["gensim"]
        md.append(f"| {arch} | {k['words_per_s']:,.0f} | {g['words_per_s']:,.0f} | {k['words_per_s'] / g['words_per_s']:.2f}x | "
                  f"{k['words']:,} / {g['words']:,} | {k['tokens']:,} / {g['tokens']:,} |")
    md += ["", "Nearest words by cosine (top 3):", "", "| arch | word | kimcnn | gensim |", "|---|---|---|---|"]
    for arch, r in res["runs"].items():
        for q in QUERIES:
            show = lambda n: ", ".join(f"{w} ({c:.2f})" for w, c in n.get(q, [])[:3])
            md.append(f"| {arch} | {q} | {show(r['kimcnn']['near'])} | {show(r['gensim']['near'])} |")
    md += ["", provenance.markdown(versions)]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
