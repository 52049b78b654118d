"""n-gram language models: the same probabilities as nltk.lm for MLE and add-k, proper distributions for
Kneser-Ney, and the classic Penn Treebank figure."""

import math
from pathlib import Path

import pytest
from nltk.lm import MLE, Laplace, Lidstone
from nltk.util import everygrams

from rnnkit.baselines.ngram import BOS, EOS, NGramModel
from rnnkit.data import default_text, read_text
from rnnkit.data.tokenizers import word_tokenize

PTB = Path(__file__).resolve().parents[3] / "shared" / "data" / "ptb"


def corpus(n_lines=400):
    lines = [word_tokenize(line, lower=True) for line in default_text().splitlines()]
    return [s for s in lines if s][:n_lines]


def nltk_model(cls, order, sentences, **kw):
    """nltk fitted on exactly rnnkit's padding (order-1 <s>, one </s>) and vocabulary (words, </s>, unknown)."""
    lm = cls(order=order, **kw) if kw else cls(order)
    padded = [[BOS] * (order - 1) + s + [EOS] for s in sentences]
    lm.fit([list(everygrams(p, max_len=order)) for p in padded], [w for s in sentences for w in s + [EOS]])
    return lm


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("smoothing,cls,kw", [("mle", MLE, {}), ("add-k", Laplace, {}),
                                               ("add-k", Lidstone, {"gamma": 0.3})])
def test_probabilities_equal_nltk(order, smoothing, cls, kw):
    sents = corpus()
    ours = NGramModel(order, smoothing, k=kw.get("gamma", 1.0)).fit(sents)
    ref = nltk_model(cls, order, sents, **kw)
    assert len(ours.vocab) == len(ref.vocab)
    probes = [(s[i], s[max(0, i - order + 1):i]) for s in corpus(60)[::7] for i in range(len(s))]
    for word, context in probes:
        ctx = ([BOS] * (order - 1) + context)[-(order - 1):] if order > 1 else []
        assert ours.prob(word, context) == pytest.approx(ref.score(word, ctx), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("smoothing", ["kn", "mkn", "add-k"])
@pytest.mark.parametrize("order", [1, 2, 4])
def test_kneser_ney_is_a_distribution(smoothing, order):
    model = NGramModel(order, smoothing).fit(corpus(300))
    outcomes = sorted(model.vocab)
    for context in ([], ["the"], ["of", "the"], ["zzz", "unseen", "the"], [BOS]):
        assert math.fsum(model.prob(w, context) for w in outcomes) == pytest.approx(1.0, abs=1e-12)


def test_smoothing_beats_mle_on_held_out_text():
    train, held_out = corpus(600)[:500], corpus(600)[500:]
    mle = NGramModel(3, "mle").fit(train)
    assert math.isinf(mle.perplexity(held_out))  # unseen trigrams: zero probability
    ppl = {s: NGramModel(3, s).fit(train).perplexity(held_out) for s in ("add-k", "kn", "mkn")}
    assert ppl["mkn"] <= ppl["kn"] < ppl["add-k"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="smoothing must be one of"):
        NGramModel(3, "katz")
    with pytest.raises(ValueError, match="order must be >= 1"):
        NGramModel(0)


@pytest.mark.slow
@pytest.mark.skipif(not PTB.is_dir(), reason="../shared/data/ptb is not beside this checkout")
def test_penn_treebank_kn5_within_two_percent_of_mikolov():
    def sentences(name):
        return [line.split() for line in read_text(PTB / name).splitlines() if line.strip()]

    model = NGramModel(5, "mkn").fit(sentences("ptb.train.txt"))
    assert model.perplexity(sentences("ptb.test.txt")) == pytest.approx(141.2, rel=0.02)


def test_segmenter_finds_the_most_probable_segmentation():
    """The Viterbi search against every possible placement of the markers, scored by log_prob."""
    import itertools

    words = "the cat sat on a mat the dog ran to a cat".split()
    corpus = [list("_".join(words[i:i + 4])) for i in range(len(words) - 3)] * 3
    model = NGramModel(3, "mkn").fit(corpus)
    for text in ["thecat", "adogsat", "amatran"]:
        symbols = list(text)
        best = max(itertools.product([False, True], repeat=len(symbols) - 1),
                   key=lambda cut: model.log_prob([c for s, b in zip(symbols, (*cut, False))
                                                   for c in ([s, "_"] if b else [s])]))
        assert model.segment(symbols, "_", beam=64) == [*best, False]
    assert model.segment(list("thecatsat")) == [False, False, True, False, False, True, False, False, False]
