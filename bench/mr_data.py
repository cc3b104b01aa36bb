"""The data stages the MR benchmarks share: MR (by its canonical URL, or the
mirror), the reference implementation's split 0, GloVe 6B 50-d, tokenized
as the reference does, its vocabulary and embedding matrix. Used by
bench/train.py, bench/study.py and bench/search_quality.py."""

# Inputs for a `train` or `study` stage on these data stages.
INPUTS = "{tokens: tokenize.tokens, vocab: vocab.vocab, embeddings: embed.embeddings, tokenizer: tokenize.summary}"


def split0_stages(shared):
    """The stages, as the first lines of a `stages:` block (`shared`: the data mirror)."""
    return f"""  mr:
    uses: source
    matrix: {{file: [rt-polarity.pos, rt-polarity.neg]}}
    with: {{url: 'https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data/${{file}}'}}
  split: {{uses: source, with: {{path: {shared}/bench/splits/mr_split0.json}}}}
  glove: {{uses: source, with: {{url: https://nlp.stanford.edu/data/glove.6B.zip, member: glove.6B.50d.txt, mirror: glove.6B.50d.txt.gz}}}}
  tokenize: {{uses: tokenize, inputs: {{pos: mr.rt-polarity.pos.data, neg: mr.rt-polarity.neg.data, splits: split.data}}, with: {{format: lines, order: [pos, neg]}}}}
  vocab: {{uses: vocab, inputs: {{tokens: tokenize.tokens}}}}
  embed: {{uses: embed, inputs: {{vocab: vocab.vocab, vectors: glove.data}}, with: {{seed: 1}}}}
"""
