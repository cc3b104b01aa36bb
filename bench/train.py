"""Training throughput and accuracy: kimcnn against the reference PyTorch
implementation (../shared/bench/pytorch_kimcnn.py), same machine, same run,
same settings: MR with the reference's exact split (splits/mr_split0.json),
GloVe 50-d, seed 1, 2 threads, each run alone, a variant at a time. kimcnn with `pad: kim`
(identical work) and `pad: bucket`. Also `kimcnn predict` on 100k sentences.
Writes <out>.json and <out>.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

VARIANTS = ["rand", "static", "non-static", "multichannel"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--python", required=True, help="a python with torch 2.11, numpy, pandas")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    a.kimcnn = str(Path(a.kimcnn).resolve())  # the runs below change directory
    shared = Path(a.shared).resolve()
    work = Path(a.work) / "train-bench"
    work.mkdir(parents=True)
    env = dict(os.environ, KIMCNN_MIRROR=str(shared))
    (work / "pipeline.yaml").write_text(f"""params: {{seed: 1, epochs: {a.epochs}}}
stages:
  mr:
    uses: source
    matrix: {{file: [rt-polarity.pos, rt-polarity.neg]}}
    with: {{url: 'https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data/${{file}}'}}
  split: {{uses: source, with: {{path: {shared}/bench/splits/mr_split0.json}}}}
  glove: {{uses: source, with: {{url: https://nlp.stanford.edu/data/glove.6B.zip, member: glove.6B.50d.txt, mirror: glove.6B.50d.txt.gz}}}}
  tokenize: {{uses: tokenize, inputs: {{pos: mr.rt-polarity.pos.data, neg: mr.rt-polarity.neg.data, splits: split.data}}, with: {{format: lines, order: [pos, neg]}}}}
  vocab: {{uses: vocab, inputs: {{tokens: tokenize.tokens}}}}
  embed: {{uses: embed, inputs: {{vocab: vocab.vocab, vectors: glove.data}}, with: {{seed: 1}}}}
  train:
    uses: train
    threads: {a.threads}
    matrix: {{variant: {VARIANTS}, pad: [kim, bucket]}}
    inputs: {{tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}}
    with: {{dataset: mr, variant: '${{variant}}', pad: '${{pad}}', epochs: '${{epochs}}', seed: '${{seed}}', device: cpu, rand_a: matched}}
  evaluate:
    uses: evaluate
    matrix: {{variant: {VARIANTS}, pad: [kim, bucket]}}
    inputs: {{model: 'train.${{variant}}.${{pad}}.model', tokens: tokenize.tokens, vocab: vocab.vocab}}
""")
    # Interleaved, a variant at a time (kimcnn kim, kimcnn bucket, reference), so that
    # a slow spell of the shared machine hits both sides rather than one.
    res = {"epochs": a.epochs, "threads": a.threads, "kimcnn": {}, "reference": {}}
    out = lambda link: json.loads((work / "artifacts/out" / link).read_text())
    ref = shared / "bench/pytorch_kimcnn.py"
    for v in VARIANTS:
        subprocess.run([a.kimcnn, "run", "--jobs", str(a.threads), f"evaluate.{v}.*"], cwd=work, env=env, check=True)
        for pad in ["kim", "bucket"]:
            s = out(f"train.{v}.{pad}/summary")
            m = out(f"evaluate.{v}.{pad}/metrics")
            res["kimcnn"][f"{v}.{pad}"] = {"sentences_per_s": s["median_train_sentences_per_s"], "threads": s["threads"], "test_acc": m["accuracy"], "best_epoch": m["best_epoch"]}
        f = work / f"ref-{v}.json"
        subprocess.run([a.python, str(ref), "--dataset", "mr", "--variant", v, "--epochs", str(a.epochs), "--pad", "kim", "--seed", "1",
                        "--threads", str(a.threads), "--data-dir", str(shared / "datasets/kim"),
                        "--vectors", str(shared / "vectors/glove.6B.50d.txt.gz"), "--out", str(f)], check=True, stdout=subprocess.DEVNULL)
        r = json.loads(f.read_text())
        rates = [e["train_sentences_per_s"] for e in r["epochs"]]
        res["reference"][v] = {"sentences_per_s": statistics.median(rates), "test_acc": r["summary"]["test_acc_at_best_dev"], "best_epoch": r["summary"]["best_dev_epoch"]}
        print(v, "kimcnn", res["kimcnn"][f"{v}.kim"], res["kimcnn"][f"{v}.bucket"], "reference", res["reference"][v], flush=True)
    # Inference: predict on 100k sentences (MR lines, repeated).
    lines = (shared / "datasets/kim/rt-polarity.pos").read_bytes().decode("latin-1").splitlines()
    big = work / "sentences.txt"
    big.write_text("\n".join((lines * (100_000 // len(lines) + 1))[:100_000]) + "\n")
    t0 = time.perf_counter()
    with open(big) as f:
        subprocess.run([a.kimcnn, "predict", "--model", "train.non-static.kim"], cwd=work, stdin=f, stdout=subprocess.DEVNULL, check=True)
    res["predict_100k_s"] = time.perf_counter() - t0
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    md = [f"MR, the reference's split 0 (8,635 train / 960 dev / 1,067 test), GloVe 50-d, {a.epochs} epochs, seed 1, "
          f"{a.threads} threads, runs one at a time; sentences/s = median over epochs of training throughput.", "",
          "| variant | reference (kim pad) | kimcnn kim | ratio | kimcnn bucket | ratio | test acc % ref / kim / bucket |",
          "|---|---|---|---|---|---|---|"]
    for v in VARIANTS:
        r, k, b = res["reference"][v], res["kimcnn"][f"{v}.kim"], res["kimcnn"][f"{v}.bucket"]
        md.append(f"| {v} | {r['sentences_per_s']:,.0f} | {k['sentences_per_s']:,.0f} | {k['sentences_per_s'] / r['sentences_per_s']:.2f}x | "
                  f"{b['sentences_per_s']:,.0f} | {b['sentences_per_s'] / r['sentences_per_s']:.2f}x | "
                  f"{100 * r['test_acc']:.1f} / {100 * k['test_acc']:.1f} / {100 * b['test_acc']:.1f} |")
    md += ["", f"`kimcnn predict` on 100,000 sentences (CNN-non-static, CPU): {res['predict_100k_s']:.1f} s, "
           f"{100_000 / res['predict_100k_s']:,.0f} sentences/s (process start and model load included)."]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
