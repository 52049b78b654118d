"""word2vec learns planted structure; neighbours, analogies, save/load, and initialising a language model."""

import numpy as np
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.data.vocab import Vocabulary
from rnnkit.word2vec import Embeddings, load_embeddings_, train_word2vec


def topic_corpus(seed=0, n=3000):
    """Sentences drawn from one of three disjoint topics: words of a topic share contexts."""
    rng = np.random.default_rng(seed)
    topics = [[f"{t}{i}" for i in range(8)] for t in "abc"]
    return [list(rng.choice(topics[rng.integers(3)], size=8)) for _ in range(n)], topics


@pytest.mark.parametrize("backend", ["torch", "compiled"])
@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_neighbours_come_from_the_same_topic(mode, backend):
    """At the default rate and batch: 24 words, each ~40 times a batch as a centre and ~200 times as noise, which
    summed per-pair updates would send to inf (they did)."""
    from rnnkit.baselines import _compiled

    if backend == "compiled" and not _compiled.AVAILABLE:
        pytest.skip("numba is not installed")
    sentences, topics = topic_corpus()
    vectors = train_word2vec(sentences, dim=16, window=3, min_count=1, epochs=5, mode=mode, sample=0, backend=backend)
    assert np.isfinite(vectors.vectors).all() and np.abs(vectors.vectors).max() < 10
    same = 0
    for topic in topics:
        for word in topic:
            same += sum(w[0] == word[0] for w, _ in vectors.most_similar(word, 5))
    assert same / (24 * 5) > 0.9


def test_a_word_moves_at_most_sixteen_pair_steps_a_batch():
    from rnnkit.word2vec import _cap_occurrences_

    grad = torch.ones(4, 2)  # summed per-pair gradients of 4 rows
    _cap_occurrences_(grad, torch.tensor([0] * 64 + [1] * 16 + [2] * 3))
    torch.testing.assert_close(grad[:, 0], torch.tensor([16 / 64, 1.0, 1.0, 1.0]))


def test_analogy_is_3cosadd():
    vocab = Vocabulary(["man", "woman", "king", "queen", "apple"])
    vec = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 1], [0.3, 0.3, -1]], dtype=float)
    emb = Embeddings(vec, vocab)
    assert emb.analogy("man", "king", "woman")[0][0] == "queen"
    assert emb.most_similar("king", 1)[0][0] in ("man", "queen")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        emb.vector("prince")


def test_save_load_and_language_model_initialisation(tmp_path):
    sentences, _ = topic_corpus(n=300)
    vectors = train_word2vec(sentences, dim=8, min_count=1, epochs=1)
    vectors.save(tmp_path / "vec")
    loaded = Embeddings.load(tmp_path / "vec")
    np.testing.assert_allclose(loaded.vectors, vectors.vectors, rtol=1e-6)
    lm_vocab = Vocabulary(["<unk>", "a0", "b3", "zzz"])
    emb = torch.nn.Embedding(4, 8)
    assert load_embeddings_(emb, loaded, lm_vocab) == 2
    np.testing.assert_allclose(emb.weight[1].detach().numpy(), loaded.vector("a0"), rtol=1e-6)
    with pytest.raises(ValueError, match="embedding size 5 differs"):
        load_embeddings_(torch.nn.Embedding(4, 5), loaded, lm_vocab)


def test_cli_word2vec_then_language_model(tmp_path, capsys):
    sentences, _ = topic_corpus(n=1500)
    (tmp_path / "text.txt").write_text("\n".join(" ".join(s) for s in sentences))
    assert main(["word2vec", "--data", str(tmp_path / "text.txt"), "--out", str(tmp_path / "vec"), "--dim", "16",
                 "--epochs", "5", "--min-count", "1", "--sample", "0", "--neighbours", "a1,zzz"]) == 0
    out = capsys.readouterr().out
    assert "a1: a" in out and "zzz: not in the vocabulary" in out
    assert main(["-q", "train", "--run-dir", str(tmp_path / "lm"), "--data.task", "word-lm", "--data.path",
                 str(tmp_path / "text.txt"), "--model.embeddings", str(tmp_path / "vec"), "--model.embedding_size",
                 "16", "--model.hidden_size", "16", "--model.num_layers", "1", "--data.seq_length", "16",
                 "--data.batch_size", "4", "--train.steps", "5", "--train.eval_every", "5"]) == 0


def test_sigmoid_table_is_word2vec_c_s():
    """word2vec.c's (and gensim's) table: expTable[i] = e / (e + 1), e = exp((i / 1000 · 2 − 1) · 6), read at
    int((f + 6) · 1000 / 12); it stays within one step's slope of the exact σ."""
    from rnnkit.baselines._compiled import EXP_TABLE_SIZE, MAX_EXP, SIGMOID_TABLE

    i = np.arange(EXP_TABLE_SIZE)
    e = np.exp((i / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP)
    np.testing.assert_allclose(SIGMOID_TABLE, e / (e + 1), rtol=1e-6)
    f = np.linspace(-5.999, 5.999, 10_001)
    looked_up = SIGMOID_TABLE[((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2)).astype(int)]
    exact = 1 / (1 + np.exp(-f))
    assert np.all(looked_up <= exact + 1e-6) and np.max(exact - looked_up) < 0.25 * 2 * MAX_EXP / EXP_TABLE_SIZE


def test_initial_vectors_take_gensims_range():
    """Before any update (0 epochs) the input vectors are uniform on [-1/dim, 1/dim), as gensim 4's."""
    for backend in ("torch", "compiled"):
        from rnnkit.baselines import _compiled
        if backend == "compiled" and not _compiled.AVAILABLE:
            continue
        vectors = train_word2vec([["a", "b", "c", "d"] * 50], dim=20, min_count=1, epochs=0, backend=backend).vectors
        assert np.abs(vectors).max() <= 1 / 20 and np.abs(vectors).max() > 0.9 / 20
