"""word2vec in torch: skip-gram and CBOW with negative sampling and frequent-word subsampling (Mikolov et al.
2013a/b; seed 004, "dense embeddings: word2vec CBOW and skip-gram").

    skip-gram:  maximise log σ(u_o · v_c) + Σ_{k ~ P_n} log σ(-u_k · v_c)   for each context word o of centre c
    CBOW:       the same with v_c replaced by the mean of the context words' input vectors, predicting c
    P_n(w) ∝ count(w)^0.75;  a word is kept with probability min(1, √(t / f(w)) + t / f(w)) (word2vec.c)

Each epoch draws a window size in [1, window] per position (nearer words count more often), builds all pairs at
once with NumPy and trains on batches with SGD whose rate decays linearly (word2vec.c's schedule). A batch sums
the per-pair gradients, as word2vec.c's per-pair updates do, but caps each word's row at 16 pairs' worth: a
frequent word (or noise word, drawn ∝ count^0.75) occurs tens or hundreds of times in a batch, and the summed
gradient, all computed at one point, would move it that many steps at once and diverge (it did at the default
rate on a small vocabulary). CBOW gives every context word the full error of the mean, as word2vec.c does.
``Embeddings`` holds the input vectors with the vocabulary: nearest neighbours, analogies (3CosAdd), save/load
(safetensors + JSON).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .data.vocab import Vocabulary

log = logging.getLogger("rnnkit.word2vec")


@dataclass
class Embeddings:
    """Word vectors (V, D) with their vocabulary."""

    vectors: np.ndarray
    vocab: Vocabulary

    def __post_init__(self):
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self._unit = self.vectors / np.maximum(norms, 1e-12)

    def vector(self, word: str) -> np.ndarray:
        if word not in self.vocab.index:
            raise ValueError(f"{word!r} is not in the vocabulary")
        return self.vectors[self.vocab.index[word]]

    def most_similar(self, query, topn: int = 10, exclude=()) -> list[tuple[str, float]]:
        """Words by cosine similarity to ``query`` (a word or a vector)."""
        if isinstance(query, str):
            exclude = {query, *exclude}
            query = self.vector(query)
        q = query / max(np.linalg.norm(query), 1e-12)
        sims = self._unit @ q
        order = np.argsort(-sims)
        out = []
        for i in order:
            word = self.vocab.tokens[i]
            if word not in exclude and word != self.vocab.unk:
                out.append((word, float(sims[i])))
                if len(out) == topn:
                    break
        return out

    def analogy(self, a: str, b: str, c: str, topn: int = 1) -> list[tuple[str, float]]:
        """a is to b as c is to ?: the nearest words to b - a + c on unit vectors (3CosAdd), a, b, c excluded."""
        unit = {w: self._unit[self.vocab.index[w]] for w in (a, b, c) if self.vector(w) is not None}  # checks all
        return self.most_similar(unit[b] - unit[a] + unit[c], topn, exclude={a, b, c})

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / ".vectors.safetensors.tmp"
        save_file({"vectors": torch.from_numpy(np.ascontiguousarray(self.vectors, dtype=np.float32))}, str(tmp))
        tmp.replace(directory / "vectors.safetensors")
        self.vocab.save(directory / "vocab.json")

    @classmethod
    def load(cls, directory: str | Path) -> Embeddings:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        try:
            vectors = load_file(str(directory / "vectors.safetensors"))["vectors"].numpy()
        except (SafetensorError, OSError, KeyError) as e:
            raise ValueError(f"{directory}: no readable vectors.safetensors ({e})") from None
        return cls(vectors, Vocabulary.load(directory / "vocab.json"))


class _SGNS(nn.Module):
    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.inp = nn.Embedding(vocab_size, dim)
        self.out = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.inp.weight, -1.0 / dim, 1.0 / dim)  # gensim 4's range (word2vec.c: ±0.5 / dim)
        nn.init.zeros_(self.out.weight)

    def forward(self, centre_vec: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        pos = (centre_vec * self.out(targets)).sum(-1)  # (B,)
        neg = torch.bmm(self.out(negatives), centre_vec.unsqueeze(-1)).squeeze(-1)  # (B, k)
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()


def _windows(ids: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2·window) context ids of every position, -1 where outside the sentence or beyond that position's
    random window size b ∈ [1, window] (word2vec.c's shrinking window: nearer words count more often)."""
    n = len(ids)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    idx = np.arange(n)[:, None] + offsets[None]
    span = rng.integers(1, window + 1, n)[:, None]
    valid = (np.abs(offsets)[None] <= span) & (idx >= 0) & (idx < n)
    return np.where(valid, ids[np.clip(idx, 0, n - 1)], -1)


# At most this many per-pair steps' worth of movement for one word's row in one batch (see the module docstring)
MAX_STEPS_PER_BATCH = 16.0


def _cap_occurrences_(grad: torch.Tensor, ids: torch.Tensor) -> None:
    """Scale each row of an embedding's summed gradient by min(1, 16 / n), n the row's occurrences in ``ids``: a
    word seen up to 16 times in the batch takes the sum of its per-pair steps; a more frequent one their mean
    times 16."""
    counts = torch.bincount(ids.reshape(-1), minlength=grad.shape[0]).to(grad.dtype)
    grad.mul_((MAX_STEPS_PER_BATCH / counts.clamp_min(MAX_STEPS_PER_BATCH)).unsqueeze(1))


def train_word2vec(sentences: list[list[str]], dim: int = 100, window: int = 5, negative: int = 5,
                   min_count: int = 5, sample: float = 1e-3, epochs: int = 5, mode: str = "skipgram",
                   batch_size: int = 1024, lr: float = 0.025, seed: int = 0, backend: str = "auto") -> Embeddings:
    """Train word vectors on tokenized sentences (a sentence boundary is not crossed by any window).

    ``backend``: ``"compiled"`` runs word2vec.c's per-pair loop (numba, two hogwild threads; ``batch_size`` unused),
    ``"torch"`` the batched autograd version below; ``"auto"``: compiled when numba is installed."""
    if backend not in ("auto", "compiled", "torch"):
        raise ValueError(f"backend must be 'auto', 'compiled' or 'torch'; got {backend!r}")
    if mode not in ("skipgram", "cbow"):
        raise ValueError(f"mode must be 'skipgram' or 'cbow'; got {mode!r}")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    vocab = Vocabulary.from_counts((w for s in sentences for w in s), min_count=min_count, unk=None)
    if len(vocab) < 2:
        raise ValueError(f"fewer than 2 words occur at least min_count={min_count} times")
    counts = np.zeros(len(vocab))
    for s in sentences:
        for w in s:
            if w in vocab.index:
                counts[vocab.index[w]] += 1
    freq = counts / counts.sum()
    keep_prob = np.minimum(1.0, np.sqrt(sample / freq) + sample / freq) if sample > 0 else np.ones(len(vocab))
    noise = torch.from_numpy(counts ** 0.75 / (counts ** 0.75).sum())
    encoded = [np.array([vocab.index[w] for w in s if w in vocab.index], dtype=np.int64) for s in sentences]
    from .baselines import _compiled

    if backend == "compiled" and not _compiled.AVAILABLE:
        raise ValueError("backend='compiled' needs numba: pip install rnnkit[fast]")
    if backend != "torch" and _compiled.AVAILABLE:
        return Embeddings(_train_compiled(encoded, counts, keep_prob, len(vocab), dim, window, negative, epochs,
                                          mode == "cbow", lr, rng, seed), vocab)
    model = _SGNS(len(vocab), dim)
    # word2vec.c's schedule: plain SGD on the summed loss, the rate decaying linearly to 0.01% of ``lr``
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for epoch in range(epochs):
        centres, contexts = [], []
        for ids in encoded:  # subsample, then take windows within the sentence
            ids = ids[rng.random(len(ids)) < keep_prob[ids]]
            if len(ids) > 1:
                centres.append(ids)
                contexts.append(_windows(ids, window, rng))
        centres, contexts = np.concatenate(centres), np.concatenate(contexts)
        if mode == "skipgram":  # one (centre, context) pair per valid window slot
            rows, cols = np.nonzero(contexts >= 0)
            centres, contexts = centres[rows], contexts[rows, cols]
        order = rng.permutation(len(centres))
        centres, contexts = torch.from_numpy(centres[order]), torch.from_numpy(contexts[order])
        total = 0.0
        for start in range(0, len(centres), batch_size):
            progress = (epoch + start / len(centres)) / epochs
            opt.param_groups[0]["lr"] = lr * max(1e-4, 1.0 - progress)
            c, o = centres[start:start + batch_size], contexts[start:start + batch_size]
            neg = torch.multinomial(noise, len(c) * negative, replacement=True).view(len(c), negative)
            if mode == "skipgram":  # the centre's vector predicts the context word
                loss = model(model.inp(c), o, neg)
            else:  # CBOW: the mean of the context words' vectors predicts the centre
                mask = (o >= 0).unsqueeze(-1).float()
                summed = (model.inp(o.clamp(min=0)) * mask).sum(1)
                # the mean's value, the sum's gradient: every context word takes the full error (word2vec.c)
                mean = (summed / mask.sum(1).clamp(min=1)).detach() + summed - summed.detach()
                loss = model(mean, c, neg)
            opt.zero_grad()
            (loss * len(c)).backward()  # per-pair updates, as word2vec.c, not their mean ...
            inputs, outputs = (c, o) if mode == "skipgram" else (o[o >= 0], c)
            _cap_occurrences_(model.inp.weight.grad, inputs)  # ... but a bounded step for frequent words
            _cap_occurrences_(model.out.weight.grad, torch.cat([outputs, neg.view(-1)]))
            opt.step()
            total += loss.item() * len(c)
        log.info("epoch %d: loss %.4f over %d examples", epoch + 1, total / len(centres), len(centres))
    return Embeddings(model.inp.weight.detach().numpy().copy(), vocab)


def _train_compiled(encoded, counts, keep_prob, vocab_size, dim, window, negative, epochs, cbow, lr, rng, seed):
    """word2vec.c's loop (``rnnkit.baselines._compiled.sgns_epoch``): the same initialisation, subsampling,
    windows, noise distribution and linear rate decay as the torch version, one SGD step per pair."""
    from .baselines import _compiled

    syn0 = ((2.0 * rng.random((vocab_size, dim)) - 1.0) / dim).astype(np.float32)  # gensim 4: U[-1/dim, 1/dim)
    syn1 = np.zeros((vocab_size, dim), np.float32)
    noise = counts ** 0.75
    table_size = max(1_000_000, 100 * vocab_size)  # word2vec.c: 1e8 entries; this resolves every word of PTB
    table = np.searchsorted(np.cumsum(noise / noise.sum()), (np.arange(table_size) + 0.5) / table_size)
    table = np.minimum(table, vocab_size - 1).astype(np.int64)
    for epoch in range(epochs):
        kept = [ids[rng.random(len(ids)) < keep_prob[ids]] for ids in encoded]
        kept = [ids for ids in kept if len(ids) > 1]
        lengths = np.array([len(ids) for ids in kept])
        words = np.concatenate(kept)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        bounds = np.stack([starts, starts + np.repeat(lengths, lengths)], 1).astype(np.int64)
        _compiled.sgns_epoch(words, bounds, table, syn0, syn1, window, negative, cbow, float(lr), epoch, epochs,
                             seed, 2)
        log.info("epoch %d: %d words after subsampling", epoch + 1, len(words))
    return syn0


def load_embeddings_(embedding: nn.Embedding, vectors: Embeddings, vocab: Vocabulary) -> int:
    """Copy the vectors of words that ``vocab`` (a language model's) shares with ``vectors`` into ``embedding``;
    returns how many rows were set. Sizes must match."""
    if embedding.embedding_dim != vectors.vectors.shape[1]:
        raise ValueError(f"embedding size {embedding.embedding_dim} differs from the vectors' "
                         f"{vectors.vectors.shape[1]}; set model.embedding_size to match")
    rows = [(i, vectors.vocab.index[w]) for i, w in enumerate(vocab.tokens) if w in vectors.vocab.index]
    with torch.no_grad():
        for i, j in rows:
            embedding.weight[i] = torch.from_numpy(vectors.vectors[j])
    return len(rows)
