"""Prepares the projects the GPU scripts run (bench/gpu.sh: TREC;
bench/gpu_mr.sh: MR or Subj) under bench/out/, small enough to carry to the
GPU machine: the data files from ../shared, GloVe 6B 50-d cut to each data
set's words, and a pipeline.yaml. Usage: python3 bench/gpu_prepare.py
"""
import gzip
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
KIM = SHARED / "datasets" / "kim"

PROJECTS = {
    "gpu": (["TREC.train", "TREC.test"], "params: {seed: 3435, variants: [rand, static, non-static, multichannel], epochs: 25}\nstages:\n  trec.train: {uses: source, with: {path: TREC.train}}\n  trec.test: {uses: source, with: {path: TREC.test}}\n  vectors: {uses: source, with: {path: vectors.txt}}\n  tokenize: {uses: tokenize, inputs: {train: trec.train.data, test: trec.test.data}, with: {format: trec, lower: false, seed: '${seed}'}}\n  vocab: {uses: vocab, inputs: {tokens: tokenize.tokens}}\n  embed: {uses: embed, inputs: {vocab: vocab.vocab, vectors: vectors.data}, with: {lower_lookup: true, seed: '${seed}'}}\n  train:\n    uses: train\n    matrix: {variant: '${variants}'}\n    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}\n    with: {dataset: trec, variant: '${variant}', epochs: '${epochs}', seed: '${seed}'}\n  evaluate:\n    uses: evaluate\n    matrix: {variant: '${variants}'}\n    inputs: {model: 'train.${variant}.model', tokens: tokenize.tokens, vocab: vocab.vocab}\n  results: {uses: aggregate, inputs: {metrics: 'evaluate.*.metrics'}}\n"),
    "gpu-mr": (["rt-polarity.pos", "rt-polarity.neg"], "# MR, Kim's protocol (10-fold CV, 25 epochs), on a GPU. The vectors file is\n# GloVe 6B 50-d cut to MR's words (to carry it), so the variance-matched\n# unknown range is given as computed on the whole GloVe file (a = 1.1156).\nparams: {seed: 3435, epochs: 25}\nstages:\n  mr:\n    uses: source\n    matrix: {file: [rt-polarity.pos, rt-polarity.neg]}\n    with: {path: '${file}'}\n  vectors: {uses: source, with: {path: vectors.txt}}\n  tokenize: {uses: tokenize, inputs: {pos: mr.rt-polarity.pos.data, neg: mr.rt-polarity.neg.data}, with: {format: lines, order: [pos, neg], folds: 10, seed: '${seed}'}}\n  vocab: {uses: vocab, inputs: {tokens: tokenize.tokens}}\n  embed.matched: {uses: embed, inputs: {vocab: vocab.vocab, vectors: vectors.data}, with: {unk_a: 1.1156, seed: '${seed}'}}\n  embed.kim: {uses: embed, inputs: {vocab: vocab.vocab, vectors: vectors.data}, with: {unk_a: 0.25, seed: '${seed}'}}\n  train.matched:\n    uses: train\n    matrix: {variant: [rand, static, non-static, multichannel], fold: range(10)}\n    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.matched.embeddings, tokenizer: tokenize.summary}\n    with: {dataset: mr, variant: '${variant}', fold: '${fold}', epochs: '${epochs}', seed: '${seed}', rand_a: matched}\n  evaluate.matched:\n    uses: evaluate\n    matrix: {variant: [rand, static, non-static, multichannel], fold: range(10)}\n    inputs: {model: 'train.matched.${variant}.fold${fold}.model', tokens: tokenize.tokens, vocab: vocab.vocab}\n  train.kim:\n    uses: train\n    matrix: {variant: [rand, non-static], fold: range(10)}\n    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.kim.embeddings, tokenizer: tokenize.summary}\n    with: {dataset: mr, variant: '${variant}', fold: '${fold}', epochs: '${epochs}', seed: '${seed}'}\n  evaluate.kim:\n    uses: evaluate\n    matrix: {variant: [rand, non-static], fold: range(10)}\n    inputs: {model: 'train.kim.${variant}.fold${fold}.model', tokens: tokenize.tokens, vocab: vocab.vocab}\n  results: {uses: aggregate, inputs: {metrics: 'evaluate.*.metrics'}}\n"),
    "gpu-subj": (["subj.subjective", "subj.objective"], "# Subj, Kim's protocol (10-fold CV, 25 epochs), on a GPU. The vectors file is\n# GloVe 6B 50-d cut to MR's words (to carry it), so the variance-matched\n# unknown range is given as computed on the whole GloVe file (a = 1.1156).\nparams: {seed: 3435, epochs: 25}\nstages:\n  mr:\n    uses: source\n    matrix: {file: [subj.subjective, subj.objective]}\n    with: {path: '${file}'}\n  vectors: {uses: source, with: {path: vectors.txt}}\n  tokenize: {uses: tokenize, inputs: {subj: mr.subj.subjective.data, obj: mr.subj.objective.data}, with: {format: lines, order: [subj, obj], folds: 10, seed: '${seed}'}}\n  vocab: {uses: vocab, inputs: {tokens: tokenize.tokens}}\n  embed.matched: {uses: embed, inputs: {vocab: vocab.vocab, vectors: vectors.data}, with: {unk_a: 1.1156, seed: '${seed}'}}\n  train.matched:\n    uses: train\n    matrix: {variant: [rand, static, non-static, multichannel], fold: range(10)}\n    inputs: {tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.matched.embeddings, tokenizer: tokenize.summary}\n    with: {dataset: subj, variant: '${variant}', fold: '${fold}', epochs: '${epochs}', seed: '${seed}', rand_a: matched}\n  evaluate.matched:\n    uses: evaluate\n    matrix: {variant: [rand, static, non-static, multichannel], fold: range(10)}\n    inputs: {model: 'train.matched.${variant}.fold${fold}.model', tokens: tokenize.tokens, vocab: vocab.vocab}\n  results: {uses: aggregate, inputs: {metrics: 'evaluate.*.metrics'}}\n"),
}


def main():
    glove = SHARED / "vectors" / "glove.6B.50d.txt.gz"
    for name, (files, pipeline) in PROJECTS.items():
        d = ROOT / "bench" / "out" / name
        d.mkdir(parents=True, exist_ok=True)
        words = set()
        for f in files:
            shutil.copy(KIM / f, d / f)
            for line in (KIM / f).read_bytes().decode("latin-1").splitlines():
                words.update(re.sub(r"[^A-Za-z0-9(),!?'`]", " ", line).lower().split())
        n = 0
        with gzip.open(glove, "rt", encoding="utf-8") as g, open(d / "vectors.txt", "w") as o:
            for line in g:
                if line.split(" ", 1)[0] in words:
                    o.write(line)
                    n += 1
        (d / "pipeline.yaml").write_text(pipeline)
        print(f"{d}: {n} vectors")


if __name__ == "__main__":
    main()
