"""Prepares the projects bench/gpu.sh runs on the GPU machine (gpu: TREC;
gpu-mr: MR's 10 folds, and a study on fold 0) under
bench/out/gpu-projects/, small enough to carry there: the data files from
../shared, GloVe 6B 50-d cut to each data set's tokens, and a pipeline.yaml.

The cut keeps every GloVe word that is a token of the tokenized data, as the
tokenize stage makes them: Kim's clean_str (taken from the reference,
../shared/bench/pytorch_kimcnn.py, which kimcnn's tokenizer is tested
against), so the clitics it splits off (n't, 's, 're, 've, 'll, 'd) are kept,
and each token's lower-cased form too (TREC's embed looks cased words up
lower-cased). It asserts that n't survives where the data has it.

Usage: python3 bench/gpu_prepare.py [--check --kimcnn target/release/kimcnn]
--check also runs each project's embed stage (kimcnn, in a scratch directory)
on the cut file and on the whole GloVe file and requires the same words found
and the same unknown-word range (each pipeline gives the whole file's a, since
the cut file's variance differs).
"""
import argparse
import ast
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
KIM = SHARED / "datasets" / "kim"
GLOVE = SHARED / "vectors" / "glove.6B.50d.txt.gz"
REFERENCE = SHARED / "bench" / "pytorch_kimcnn.py"
OUT = ROOT / "bench" / "out" / "gpu-projects"
CLITICS = ["n't", "'s", "'re", "'ve", "'ll", "'d"]


def reference_clean_str():
    """clean_str from the reference script, without importing it (it imports torch): its
    module-level regexes and the function itself, executed alone."""
    tree = ast.parse(REFERENCE.read_text())
    keep = [n for n in tree.body
            if (isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("_NOT_KEPT", "_CLITICS", "_MULTISPACE")
                                                  for t in n.targets))
            or (isinstance(n, ast.FunctionDef) and n.name == "clean_str")]
    ns = {"re": re}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(REFERENCE), "exec"), ns)
    return ns["clean_str"]


# Per project: how its tokenize stage reads a line (TREC: "LABEL:fine text", cased; the rest: lower-cased).
TOKENIZE = {"gpu": {"label_first": True, "lower": False},
            "gpu-mr": {"label_first": False, "lower": True}}

PROJECTS = {
    "gpu": (["TREC.train", "TREC.test"], "# TREC, 4 variants, 25 epochs, on a GPU. The vectors file is GloVe 6B 50-d cut\n# to TREC's tokens (to carry it), so the variance-matched unknown range is\n# given as computed on the whole GloVe file (a = 1.1156).\nparams: {seed: 3435, variants: [rand, static, non-static, multichannel], epochs: 25}\nstages:\n  trec.train: {uses: source, with: {path: TREC.train}}\n  trec.test: {uses: source, with: {path: TREC.test}}\n  vectors: {uses: source, with: {path: vectors.txt}}\n  tokenize: {uses: tokenize, inputs: {train: trec.train.data, test: trec.test.data}, with: {format: trec, lower: false, seed: '${seed}'}}\n  vocab: {uses: vocab, inputs: {tokens: tokenize.tokens}}\n  embed: {uses: embed, inputs: {vocab: vocab.vocab, vectors: vectors.data}, with: {lower_lookup: true, unk_a: 1.1156, seed: '${seed}'}}\n  train:\n    uses: train\n    matrix: {variant: '${variants}'}\n    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}\n    with: {dataset: trec, variant: '${variant}', epochs: '${epochs}', seed: '${seed}'}\n  evaluate:\n    uses: evaluate\n    matrix: {variant: '${variants}'}\n    inputs: {model: 'train.${variant}.model', tokens: tokenize.tokens, vocab: vocab.vocab}\n  results: {uses: aggregate, inputs: {metrics: 'evaluate.*.metrics'}}\n"),
    "gpu-mr": (["rt-polarity.pos", "rt-polarity.neg"], "# MR, Kim's protocol (10-fold CV, 25 epochs), on a GPU, with the shipped\n# pipeline's MR settings (`make paper`): unknown words U[-a, a] with a matched\n# to the vectors' variance, CNN-rand U[-0.25, 0.25]. The vectors file is GloVe\n# 6B 50-d cut to MR's tokens (to carry it), so a is given as computed on the\n# whole GloVe file (1.1156).\nparams: {seed: 3435, epochs: 25}\nstages:\n  mr:\n    uses: source\n    matrix: {file: [rt-polarity.pos, rt-polarity.neg]}\n    with: {path: '${file}'}\n  vectors: {uses: source, with: {path: vectors.txt}}\n  tokenize: {uses: tokenize, inputs: {pos: mr.rt-polarity.pos.data, neg: mr.rt-polarity.neg.data}, with: {format: lines, order: [pos, neg], folds: 10, seed: '${seed}'}}\n  vocab: {uses: vocab, inputs: {tokens: tokenize.tokens}}\n  embed: {uses: embed, inputs: {vocab: vocab.vocab, vectors: vectors.data}, with: {unk_init: uniform, unk_a: 1.1156, seed: '${seed}'}}\n  train:\n    uses: train\n    matrix: {variant: [rand, static, non-static, multichannel], fold: range(10)}\n    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}\n    with: {dataset: mr, variant: '${variant}', fold: '${fold}', epochs: '${epochs}', seed: '${seed}'}\n  evaluate:\n    uses: evaluate\n    matrix: {variant: [rand, static, non-static, multichannel], fold: range(10)}\n    inputs: {model: 'train.${variant}.fold${fold}.model', tokens: tokenize.tokens, vocab: vocab.vocab}\n  results: {uses: aggregate, inputs: {metrics: 'evaluate.*.metrics'}}\n  # The origin project's study shape: fold 0, variant x pad, epoch budgets 2, 3,\n  # 4 and 6 (each point trains once, 6 epochs), grid; its trials share the GPU,\n  # `parallel` at once (bench/gpu.sh sets it).\n  study:\n    uses: study\n    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}\n    with:\n      base: {dataset: mr, fold: 0, seed: '${seed}'}\n      space:\n        variant: {choice: [rand, static, non-static, multichannel]}\n        pad: {choice: [kim, bucket]}\n        epochs: {choice: [2, 3, 4, 6]}\n      search: grid\n      parallel: 1\n"),
}


def tokens(files, label_first, lower, clean_str):
    """Every token (and its lower-cased form) the project's data tokenizes to."""
    words = set()
    for f in files:
        # The character filter drops every non-ASCII character, so the encoding does not matter.
        for line in (KIM / f).read_bytes().decode("latin-1").split("\n"):
            line = line.strip()
            if label_first:
                line = line.split(" ", 1)[1] if " " in line else ""
            for t in clean_str(line, lower=lower).split():
                words.add(t)
                words.add(t.lower())
    return words


def cut(words, out):
    """GloVe's lines whose word is in `words`, in GloVe's order; the words kept."""
    kept = set()
    with gzip.open(GLOVE, "rt", encoding="utf-8") as g, open(out, "w", encoding="utf-8") as o:
        for line in g:
            w = line.split(" ", 1)[0]
            if w in words:
                o.write(line)
                kept.add(w)
    return kept


def check_with_kimcnn(kimcnn, d, pipeline):
    """The project's embed stage(s) on the cut file and on the whole GloVe: the same words must be found."""
    full = pipeline.replace("  vectors: {uses: source, with: {path: vectors.txt}}",
                            "  vectors: {uses: source, with: {url: https://nlp.stanford.edu/data/glove.6B.zip, "
                            "member: glove.6B.50d.txt, mirror: glove.6B.50d.txt.gz}}")
    assert full != pipeline, "the pipeline's vectors stage is not where --check expects it"
    embeds = re.findall(r"^  (embed[\w.]*):", pipeline, re.M)
    env = dict(os.environ, KIMCNN_MIRROR=str(SHARED))
    found = {}
    with tempfile.TemporaryDirectory(prefix="gpu-prepare-check-") as tmp:
        for name, text in (("cut", pipeline), ("full", full)):
            w = Path(tmp) / name
            shutil.copytree(d, w, ignore=shutil.ignore_patterns("artifacts", "pipeline.lock"))
            (w / "pipeline.yaml").write_text(text)
            subprocess.run([kimcnn, "run", "--jobs", "2"] + embeds, cwd=w, env=env, check=True, stdout=subprocess.DEVNULL)
            found[name] = {e: json.loads((w / f"artifacts/out/{e}/coverage").read_text()) for e in embeds}
    for e in embeds:
        c, f = found["cut"][e], found["full"][e]
        same = {k: (c[k], f[k]) for k in ("words_found", "words_found_lowercased", "tokens_found")}
        assert all(x == y for x, y in same.values()), f"{d.name} {e}: cut file finds fewer words than GloVe: {same}"
        assert abs(c["unk_scale"] - f["unk_scale"]) < 1e-3, \
            f"{d.name} {e}: unknown-word scale {c['unk_scale']} from the cut file, {f['unk_scale']} from GloVe: give unk_a"
        print(f"{d.name} {e}: cut file finds what GloVe finds ({c['words_found']:,} of {c['vocab_words']:,} words, "
              f"{c['words_found_lowercased']:,} through their lower-cased form); unknown-word scale from the cut file "
              f"{c['unk_scale']:.4f}, from the whole file {f['unk_scale']:.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="also compare each project's embed coverage with the whole GloVe (needs --kimcnn)")
    ap.add_argument("--kimcnn", default=str(ROOT / "target/release/kimcnn"))
    a = ap.parse_args()
    clean_str = reference_clean_str()
    assert clean_str("It isn't they're, we've; I'll he'd it's") == "it is n't they 're , we 've i 'll he 'd it 's", \
        "the reference's clean_str does not split the clitics as expected"
    for name, (files, pipeline) in PROJECTS.items():
        d = OUT / name
        d.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(KIM / f, d / f)
        words = tokens(files, **TOKENIZE[name], clean_str=clean_str)
        kept = cut(words, d / "vectors.txt")
        (d / "pipeline.yaml").write_text(pipeline)
        # The self-check: every clitic the data has, and GloVe has (all six), survives the cut.
        for c in CLITICS:
            if c in words:
                assert c in kept, f"{name}: {c!r} is a token of the data but was cut from the vectors"
        print(f"{d}: {len(kept):,} vectors for {len(words):,} token forms; clitics kept: "
              f"{' '.join(c for c in CLITICS if c in kept) or 'none in the data'}")
        if a.check:
            check_with_kimcnn(a.kimcnn, d, pipeline)


if __name__ == "__main__":
    main()
