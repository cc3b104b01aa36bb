"""MR 10-fold CV on the reference's own folds (`make accuracy` runs it after
accuracy.py): the reference PyTorch script dumps its train/dev/test split of
each fold (`--dump-split`, no training), and kimcnn trains the given variants
on those exact splits, 25 epochs, kim padding, seed 1, one thread per run.
The reference's own 10-fold figures are in ../shared/bench/README.md (same
folds, same settings but 2 threads). Writes <out>.json and <out>.md.
"""
import argparse
import json
import os
import statistics
import subprocess
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--python", required=True, help="the python that runs the reference (torch 2.11, numpy, pandas)")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--variants", default="non-static")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    a.kimcnn = str(Path(a.kimcnn).resolve())  # the runs below change directory
    shared = Path(a.shared).resolve()
    work = Path(a.work).resolve()
    (work / "splits").mkdir(parents=True, exist_ok=True)
    folds = list(range(10))
    for k in folds:
        f = work / f"splits/mr_fold{k}.json"
        if not f.exists():
            # --epochs 0: the split is written before training; what follows may fail, the file is what counts.
            subprocess.run([a.python, str(shared / "bench/pytorch_kimcnn.py"), "--dataset", "mr", "--variant", "static",
                            "--epochs", "0", "--fold", str(k), "--threads", "1", "--data-dir", str(shared / "datasets/kim"),
                            "--vectors", str(shared / "vectors/glove.6B.50d.txt.gz"), "--dump-split", str(f),
                            "--out", str(work / f"dump{k}.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not f.exists():
                raise SystemExit(f"the reference did not write {f}")
    variants = a.variants.split(",")
    (work / "pipeline.yaml").write_text(f"""params: {{epochs: {a.epochs}}}
stages:
  kim:
    uses: source
    matrix: {{file: [rt-polarity.pos, rt-polarity.neg]}}
    with: {{url: 'https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data/${{file}}'}}
  glove: {{uses: source, with: {{url: https://nlp.stanford.edu/data/glove.6B.zip, member: glove.6B.50d.txt, mirror: glove.6B.50d.txt.gz}}}}
  split: {{uses: source, matrix: {{fold: {folds}}}, with: {{path: '{work}/splits/mr_fold${{fold}}.json'}}}}
  tokenize:
    uses: tokenize
    matrix: {{fold: {folds}}}
    inputs: {{pos: kim.rt-polarity.pos.data, neg: kim.rt-polarity.neg.data, splits: 'split.fold${{fold}}.data'}}
    with: {{format: lines, order: [pos, neg]}}
  vocab: {{uses: vocab, inputs: {{tokens: tokenize.fold0.tokens}}}}
  embed: {{uses: embed, inputs: {{vocab: vocab.vocab, vectors: glove.data}}, with: {{seed: 1}}}}
  train:
    uses: train
    threads: 1
    matrix: {{variant: {variants}, fold: {folds}}}
    inputs: {{tokens: 'tokenize.fold${{fold}}.tokens', vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.fold0.summary}}
    with: {{dataset: mr, variant: '${{variant}}', seed: 1, epochs: '${{epochs}}', pad: kim, device: cpu, rand_a: matched}}
  evaluate:
    uses: evaluate
    matrix: {{variant: {variants}, fold: {folds}}}
    inputs: {{model: 'train.${{variant}}.fold${{fold}}.model', tokens: 'tokenize.fold${{fold}}.tokens', vocab: vocab.vocab}}
""")
    env = dict(os.environ, KIMCNN_MIRROR=str(shared))
    subprocess.run([a.kimcnn, "run", "--jobs", str(a.jobs)], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    res = {}
    for v in variants:
        for k in folds:
            m = json.loads((work / f"artifacts/out/evaluate.{v}.fold{k}/metrics").read_text())
            res.setdefault(v, []).append({"fold": k, "accuracy": 100 * m["accuracy"], "best_epoch": m["best_epoch"]})
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    md = [f"MR, the reference's 10 folds (split seed 0), {a.epochs} epochs, kim padding, seed 1, one thread per run.", "",
          "| variant | kimcnn mean ± sd (10 folds) | min-max | best-dev epochs |", "|---|---|---|---|"]
    for v, rows in res.items():
        acc = [r["accuracy"] for r in rows]
        ep = [r["best_epoch"] for r in rows]
        md.append(f"| {v} | {statistics.mean(acc):.1f} ± {statistics.stdev(acc):.1f} | {min(acc):.1f}-{max(acc):.1f} | {min(ep)}-{max(ep)} |")
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
