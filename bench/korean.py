"""NSMC with tokenizers and word vectors trained here (issue 14): the table
`make korean` ends with, read from what the pipeline computed.

For every NSMC evaluate stage in the project's pipeline.lock (`evaluate.kr.*`:
whitespace words or a trained tokenizer's units, with word2vec vectors
trained here; `evaluate.nsmc.*`: words with GloVe 50-d), its test accuracy
on the 50,000 test reviews, by units x variant (CNN-rand is the random
initialisation). Beside it, fastText (PyPI `fasttext`, word bigrams, 25
epochs, one thread, seeds 1..N) on the same tokens: each units' tokens
table, its `train` rows (the CNN's training rows; dev unused, as fastText
selects nothing), tested on the same test rows. Then the cost of the
stages that learn from the text: the tokenizer training and word2vec
seconds, from their run records (the run that computed them).

Writes PREFIX.json and PREFIX.md.
"""
import sys

sys.dont_write_bytecode = True

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import provenance

VARIANTS = ["rand", "static", "non-static", "multichannel"]


def lock_stages(project: Path):
    """stage -> key, from pipeline.lock (YAML written by kimcnn: `  name:` then `    key: hex`)."""
    out, stage = {}, None
    for line in (project / "pipeline.lock").read_text().splitlines():
        m = re.match(r"^  (\S+):$", line)
        if m:
            stage = m.group(1)
        m = re.match(r"^    key: ([0-9a-f]{64})$", line)
        if m and stage:
            out[stage] = m.group(1)
    return out


def record(store: Path, key: str):
    return json.loads((store / "runs" / f"{key}.json").read_text())


def output(store: Path, stage: str, name: str) -> Path:
    return store / "out" / stage / name


def units_of(dataset: str):
    return {"nsmc": "words, GloVe 50-d"}.get(dataset, dataset.removeprefix("nsmc-"))


def fasttext_cell(tokens: Path, seeds, work: Path):
    import fasttext
    import pandas as pd

    df = pd.read_parquet(tokens)
    files = {}
    for split in ["train", "test"]:
        part = df[df.split == split]
        path = work / f"{tokens.parent.name}.{split}.txt"
        with path.open("w", encoding="utf-8") as f:
            for label, toks in zip(part.label, part.tokens):
                f.write(f"__label__{label} {' '.join(toks)}\n")
        files[split] = (path, list(part.label), [" ".join(t) for t in part.tokens])
    accs, secs = [], []
    for s in seeds:
        t0 = time.time()
        m = fasttext.train_supervised(str(files["train"][0]), epoch=25, wordNgrams=2, thread=1, seed=s, verbose=0)
        secs.append(time.time() - t0)
        _, labels, texts = files["test"]
        pred, _ = m.predict(texts)
        accs.append(100.0 * sum(p[0] == f"__label__{l}" for p, l in zip(pred, labels)) / len(labels))
    return {"accuracy": accs, "seconds": secs, "train_rows": int((df.split == "train").sum()), "test_rows": len(files["test"][1])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", required=True, help="the directory holding pipeline.lock and artifacts/")
    ap.add_argument("--store", help="the artifact store [default: PROJECT/artifacts]")
    ap.add_argument("--kimcnn", required=True, help="the binary (for its version)")
    ap.add_argument("--seeds", type=int, default=3, help="fastText seeds 1..N")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    project = Path(a.project)
    store = Path(a.store) if a.store else project / "artifacts"
    stages = lock_stages(project)
    seeds = list(range(1, a.seeds + 1))

    cnn = []
    for stage in sorted(s for s in stages if s.startswith("evaluate.kr.") or s.startswith("evaluate.nsmc.")):
        m = json.loads(output(store, stage, "metrics").read_text())
        train = stage.replace("evaluate.", "train.", 1)
        rec = record(store, stages[train]) if train in stages else {}
        cnn.append({"stage": stage, "units": units_of(m["dataset"]), "variant": m["variant"], "accuracy": 100 * m["accuracy"],
                    "best_epoch": m["best_epoch"], "dev": 100 * m["best_dev_accuracy"],
                    "seconds": rec.get("seconds"), "device": rec.get("device")})
        print(f"{stage}: {cnn[-1]['accuracy']:.2f}", flush=True)

    # The tokens each units' CNN reads: every segment stage's, and (words) the tokenize stage's.
    tables = {m.group(1): output(store, s, "tokens") for s in stages for m in [re.match(r"^kr\.segment\.(\S+)$", s)] if m}
    if any(c["units"].startswith("words") for c in cnn):
        tables["words"] = output(store, "tokenize.nsmc", "tokens")
    ftx = {}
    with tempfile.TemporaryDirectory() as work:
        for u, path in sorted(tables.items()):
            ftx[u] = fasttext_cell(path, seeds, Path(work))
            print(f"fasttext {u}: {ftx[u]['accuracy']}", flush=True)

    costs = []
    for stage in sorted(s for s in stages if re.match(r"^kr\.(subword|word2vec)\.", s)):
        rec = record(store, stages[stage])
        summary = json.loads(output(store, stage, "summary").read_text())
        costs.append({"stage": stage, "seconds": rec["seconds"], "summary": summary})

    versions = provenance.collect(kimcnn=provenance.kimcnn(a.kimcnn),
                                  fasttext=provenance.python_module(sys.executable, "fasttext", ["fasttext", "fasttext-wheel"]))
    res = {"cnn": cnn, "fasttext": ftx, "costs": costs, "seeds": seeds, "provenance": versions}
    Path(a.out + ".json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")

    def ms(xs):
        return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}" if len(xs) > 1 else f"{xs[0]:.1f}"

    units = sorted({c["units"] for c in cnn} | set(tables), key=lambda u: (not u.startswith("words"), u))
    md = [f"NSMC test accuracy % (50,000 reviews), one run per cell (seed 3435), selected on dev (15,000 training reviews); "
          f"CNN-rand: random init, the others: word2vec vectors trained here (GloVe 50-d where said). "
          f"fastText: word bigrams, 25 epochs, one thread, mean ± sd over seeds {seeds[0]}..{seeds[-1]}, on the same tokens "
          f"and training rows. — : not run.", "",
          "| units | " + " | ".join(f"CNN-{v}" for v in VARIANTS) + " | fastText bigrams |",
          "|---|" + "---|" * (len(VARIANTS) + 1)]
    for u in units:
        cells = []
        for v in VARIANTS:
            hit = [c for c in cnn if c["units"] == u and c["variant"] == v]
            cells.append(f"{hit[0]['accuracy']:.1f} (epoch {hit[0]['best_epoch']})" if hit else "—")
        f = ftx.get("words" if u.startswith("words") else u)
        md.append(f"| {u} | " + " | ".join(cells) + f" | {ms(f['accuracy']) if f else '—'} |")
    if costs:
        md += ["", "What learning from the text cost (seconds of the run that computed each stage, from its run record):", "",
               "| stage | seconds | what |", "|---|---|---|"]
        for c in costs:
            s = c["summary"]
            if "pieces" in s:
                what = (f"{s['model']} tokenizer, {s['vocab_size']} pieces, on {s['rows']:,} training rows + "
                        f"{s['corpus']['used']:,} corpus lines ({s['words']:,} words)")
            else:
                what = (f"word2vec {s['arch']} {s['dim']}-d on {s['rows']:,} training rows + {s['corpus']['used']:,} corpus lines: "
                        f"{s['words']:,} words, {s['trained']:,} words trained, {s['threads']} thread(s)")
            md.append(f"| {c['stage']} | {c['seconds']:.0f} | {what} |")
    md += ["", "The CNN cells and stage seconds are those of the runs that computed them (their run records); "
           "fastText ran now. " + provenance.markdown(versions)]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
