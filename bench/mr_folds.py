"""MR 10-fold CV on the reference's own folds (`make accuracy` runs it after
accuracy.py): the reference PyTorch script dumps its train/dev/test split of
each fold (`--dump-split`, no training), then kimcnn and the reference train
the given variants on those exact splits, side by side (one core each: each
side one training at a time), 25 epochs, kim padding, variance-matched
unknown words (or, with --unk-a A, U[-A, A] for unknown and CNN-rand words on
both sides: the reference's README ran CNN-rand with --unk-a 0.25), seed 1,
one thread per run. Both sides' figures come from this
run, in a fresh directory under --work; none is copied from elsewhere (the
reference's training runs dump their split again, and it must equal the one
kimcnn trained on). Records the versions of kimcnn and of the reference.
Writes <out>.json and <out>.md.
"""
import argparse
import concurrent.futures as cf
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # nothing written beside the bench scripts
import provenance  # noqa: E402  (bench/provenance.py)

SPLIT_PARTS = ("train", "dev", "test")


def reference(a, shared, args, out, **kw):
    """One run of the reference script on MR, one thread; `args` adds to the fixed ones."""
    return subprocess.run([a.python, str(shared / "bench/pytorch_kimcnn.py"), "--dataset", "mr", "--threads", "1",
                           "--data-dir", str(shared / "datasets/kim"), "--vectors", str(shared / "vectors/glove.6B.50d.txt.gz"),
                           "--out", str(out)] + [str(x) for x in args], stdout=subprocess.DEVNULL, **kw)


def run_kimcnn(a, work, env, variants, folds):
    subprocess.run([a.kimcnn, "run", "--jobs", str(a.jobs)], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    res = {}
    for v in variants:
        for k in folds:
            m = json.loads((work / f"artifacts/out/evaluate.{v}.fold{k}/metrics").read_text())
            res.setdefault(v, []).append({"fold": k, "accuracy": 100 * m["accuracy"], "best_epoch": m["best_epoch"]})
    return res


def run_reference(a, shared, work, variants, folds):
    res, env = {}, set()
    for v in variants:
        for k in folds:
            out, split = work / f"ref/{v}-fold{k}.json", work / f"ref/{v}-fold{k}.split.json"
            reference(a, shared, ["--variant", v, "--epochs", a.epochs, "--pad", "kim", "--seed", 1, "--fold", k,
                                  "--dump-split", split] + (["--unk-a", a.unk_a] if a.unk_a is not None else []),
                      out, check=True)
            used = json.loads((work / f"splits/mr_fold{k}.json").read_text())
            again = json.loads(split.read_text())
            if [again[p] for p in SPLIT_PARTS] != [used[p] for p in SPLIT_PARTS]:
                raise SystemExit(f"the reference's fold {k} split differs from the one kimcnn trained on")
            r = json.loads(out.read_text())
            env.add(f"torch {r['env']['torch']}, numpy {r['env']['numpy']}, python {r['env']['python']}")
            res.setdefault(v, []).append({"fold": k, "accuracy": 100 * r["summary"]["test_acc_at_best_dev"],
                                          "best_epoch": r["summary"]["best_dev_epoch"]})
            print(f"reference {v} fold {k}: {res[v][-1]['accuracy']:.1f}", flush=True)
    return res, sorted(env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--python", required=True, help="the python that runs the reference (torch 2.11, numpy, pandas)")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True, help="a fresh directory is made under it for this run")
    ap.add_argument("--out", required=True)
    ap.add_argument("--variants", default="non-static")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--folds", type=int, default=10, help="the first N of the reference's 10 folds (default: all 10)")
    ap.add_argument("--unk-a", type=float, help="U[-A, A] for unknown and CNN-rand words on both sides "
                    "(the reference's --unk-a; kimcnn's embed unk_a and train rand_a); default: variance-matched")
    ap.add_argument("--jobs", type=int, default=1, help="kimcnn's thread budget (the reference runs beside it on one thread)")
    a = ap.parse_args()
    a.kimcnn = str(Path(a.kimcnn).resolve())  # the runs below change directory
    shared = Path(a.shared).resolve()
    Path(a.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mr-folds-", dir=a.work)).resolve()  # nothing cached from before
    (work / "splits").mkdir()
    (work / "ref").mkdir()
    versions = provenance.collect(
        kimcnn=provenance.kimcnn(a.kimcnn),
        reference_script=provenance.script(shared / "bench/pytorch_kimcnn.py", a.kimcnn),
        reference_python=f"{a.python} (python {provenance.python_version(a.python)}, "
                         f"torch {provenance.python_module(a.python, 'torch')})",
    )
    print(provenance.markdown(versions), flush=True)
    folds = list(range(a.folds))
    for k in folds:
        f = work / f"splits/mr_fold{k}.json"
        # --epochs 0: the split is written before training; what follows may fail, the file is what counts.
        reference(a, shared, ["--variant", "static", "--epochs", 0, "--fold", k, "--dump-split", f], work / f"dump{k}.json",
                  stderr=subprocess.DEVNULL)
        if not f.exists():
            raise SystemExit(f"the reference did not write {f}")
    variants = a.variants.split(",")
    unk = "" if a.unk_a is None else f", unk_a: {a.unk_a}"
    rand_a = "matched" if a.unk_a is None else a.unk_a
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
  embed: {{uses: embed, inputs: {{vocab: vocab.vocab, vectors: glove.data}}, with: {{seed: 1{unk}}}}}
  train:
    uses: train
    threads: 1
    matrix: {{variant: {variants}, fold: {folds}}}
    inputs: {{tokens: 'tokenize.fold${{fold}}.tokens', vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.fold0.summary}}
    with: {{dataset: mr, variant: '${{variant}}', seed: 1, epochs: '${{epochs}}', pad: kim, device: cpu, rand_a: {rand_a}}}
  evaluate:
    uses: evaluate
    matrix: {{variant: {variants}, fold: {folds}}}
    inputs: {{model: 'train.${{variant}}.fold${{fold}}.model', tokens: 'tokenize.fold${{fold}}.tokens', vocab: vocab.vocab}}
""")
    env = dict(os.environ, KIMCNN_MIRROR=str(shared))
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(2) as pool:
        k = pool.submit(run_kimcnn, a, work, env, variants, folds)
        r = pool.submit(run_reference, a, shared, work, variants, folds)
        kim, (ref, ref_env) = k.result(), r.result()
    wall = time.perf_counter() - t0
    versions["tools"]["reference_env_recorded"] = "; ".join(ref_env)
    res = {"epochs": a.epochs, "folds": folds, "seed": 1, "unk_a": a.unk_a, "versions": versions, "wall_s": wall, "kimcnn": kim, "reference": ref}
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0
    which = "all 10 folds" if len(folds) == 10 else f"folds {folds[0]}-{folds[-1]} of 10"
    init = "variance-matched unknown words" if a.unk_a is None else f"unknown and CNN-rand words from U[-{a.unk_a:g}, {a.unk_a:g}]"
    md = [f"MR, the reference's folds (split seed 0; {which}), {a.epochs} epochs, kim padding, {init}, seed 1, "
          f"one thread per run; kimcnn and the reference side by side in this run ({wall / 60:.0f} min), both on the "
          "split the reference dumped for each fold. Test accuracy %, mean ± sd over the folds; the paired column is "
          "kimcnn minus the reference, fold by fold.", "",
          "| variant | reference | kimcnn | kimcnn - reference (paired) | min-max, reference / kimcnn | best-dev epochs, reference / kimcnn |",
          "|---|---|---|---|---|---|"]
    for v in variants:
        ra, ka = [x["accuracy"] for x in ref[v]], [x["accuracy"] for x in kim[v]]
        re_, ke = [x["best_epoch"] for x in ref[v]], [x["best_epoch"] for x in kim[v]]
        diff = [x - y for x, y in zip(ka, ra)]
        md.append(f"| {v} | {statistics.mean(ra):.1f} ± {sd(ra):.1f} | {statistics.mean(ka):.1f} ± {sd(ka):.1f} | "
                  f"{statistics.mean(diff):+.1f} ± {sd(diff):.1f} | {min(ra):.1f}-{max(ra):.1f} / {min(ka):.1f}-{max(ka):.1f} | "
                  f"{min(re_)}-{max(re_)} / {min(ke)}-{max(ke)} |")
    md += ["", provenance.markdown(versions)]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
