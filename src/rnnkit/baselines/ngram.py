"""n-gram language models: maximum likelihood, add-k (Lidstone; k = 1 is Laplace), interpolated Kneser-Ney and
interpolated modified Kneser-Ney (seed 004, "n-gram language models and their limits"; Kneser & Ney 1995;
Chen & Goodman 1998), any order.

Sentences are padded with ``order - 1`` start symbols ``<s>`` and closed by ``</s>`` (predicted, as a word; ``<s>``
never is). The vocabulary is the training words plus ``</s>`` and ``<unk>``; unknown test words are ``<unk>``.

Kneser-Ney: the highest order uses counts c(h, w); every lower order uses continuation counts N1+(• h w), the
number of distinct words seen before h w. Each order discounts and hands the mass to the next lower order:

    P(w | h) = max(c(h w) - D(c(h w)), 0) / c(h) + γ(h) P(w | h'),   γ(h) = Σ_j D_j N_j(h •) / c(h)

down to the uniform distribution over the vocabulary. ``kn`` has one discount per order, D = n1 / (n1 + 2 n2);
``mkn`` three (for counts 1, 2 and 3+), D_j = j - (j + 1) Y n_{j+1} / n_j with Y = n1 / (n1 + 2 n2), estimated from
the counts of counts of each order.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SMOOTHINGS = ("mle", "add-k", "kn", "mkn")


class NGramModel:
    """``NGramModel(order, smoothing="mkn").fit(sentences)``; ``prob(word, context)``, ``perplexity(sentences)``.

    ``sentences`` are lists of word tokens. ``k`` is the add-k constant.
    """

    def __init__(self, order: int = 3, smoothing: str = "mkn", k: float = 1.0):
        if order < 1:
            raise ValueError(f"order must be >= 1; got {order}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {list(SMOOTHINGS)}; got {smoothing!r}")
        if smoothing == "add-k" and k <= 0:
            raise ValueError(f"add-k needs k > 0; got {k}")
        self.order, self.smoothing, self.k = order, smoothing, k
        self.vocab: set[str] = set()

    # ---- training ---------------------------------------------------------------------------------
    def _pad(self, sentence: list[str]) -> list[str]:
        return [BOS] * (self.order - 1) + [w if w in self.vocab else UNK for w in sentence] + [EOS]

    def fit(self, sentences: Iterable[list[str]]) -> NGramModel:
        sentences = [list(s) for s in sentences]
        if not sentences:
            raise ValueError("fit needs at least one sentence")
        self.vocab = {w for s in sentences for w in s} | {EOS, UNK}
        n = self.order
        # counts[m][(context, word)] for m-grams, m = 1..n (context is a tuple of m-1 words)
        self.counts: list[Counter] = [Counter() for _ in range(n + 1)]
        for s in sentences:
            padded = self._pad(s)
            for i in range(n - 1, len(padded)):
                for m in range(1, n + 1):
                    self.counts[m][tuple(padded[i - m + 1:i + 1])] += 1
        if self.smoothing in ("kn", "mkn"):
            self._prepare_kneser_ney()
        else:
            self._context_totals = [Counter() for _ in range(n + 1)]
            for m in range(1, n + 1):
                for gram, c in self.counts[m].items():
                    self._context_totals[m][gram[:-1]] += c
        return self

    def _prepare_kneser_ney(self) -> None:
        n = self.order
        # the counts each order uses: raw counts at the top, continuation counts N1+(• h w) below
        self.kn_counts: list[Counter] = [Counter() for _ in range(n + 1)]
        self.kn_counts[n] = self.counts[n]
        for m in range(n - 1, 0, -1):
            cont = Counter()
            for gram in self.counts[m + 1]:
                if gram[0] != BOS or m + 1 < n:  # distinct real left neighbours (padding is not a word)
                    cont[gram[1:]] += 1
            # an m-gram seen only at the start of sentences has no left neighbour: keep its raw count
            for gram, c in self.counts[m].items():
                if gram not in cont:
                    cont[gram] = c
            self.kn_counts[m] = cont
        self.discounts: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * (n + 1)
        self.context_stats: list[dict] = [{} for _ in range(n + 1)]
        for m in range(1, n + 1):
            cc = Counter(self.kn_counts[m].values())
            n1, n2, n3, n4 = (cc.get(i, 0) for i in (1, 2, 3, 4))
            y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5
            if self.smoothing == "kn":
                self.discounts[m] = (y, y, y)
            else:
                d1 = 1 - 2 * y * n2 / n1 if n1 else 0.5
                d2 = 2 - 3 * y * n3 / n2 if n2 else d1
                d3 = 3 - 4 * y * n4 / n3 if n3 else d2
                self.discounts[m] = (max(d1, 0.0), max(d2, 0.0), max(d3, 0.0))
            stats: dict = defaultdict(lambda: [0, 0, 0, 0])  # context -> [total, N1, N2, N3+]
            for gram, c in self.kn_counts[m].items():
                st = stats[gram[:-1]]
                st[0] += c
                st[min(c, 3)] += 1
            self.context_stats[m] = dict(stats)

    # ---- probabilities ----------------------------------------------------------------------------
    def _kn_prob(self, word: str, context: tuple) -> float:
        m = len(context) + 1
        if m == 0 or m > self.order:
            return 1.0 / len(self.vocab)
        lower = self._kn_prob(word, context[1:]) if m > 1 else 1.0 / len(self.vocab)
        st = self.context_stats[m].get(context)
        if st is None:
            return lower
        total, n1, n2, n3 = st
        d1, d2, d3 = self.discounts[m]
        c = self.kn_counts[m].get(context + (word,), 0)
        d = 0.0 if c == 0 else (d1, d2, d3)[min(c, 3) - 1]
        gamma = (d1 * n1 + d2 * n2 + d3 * n3) / total
        return max(c - d, 0.0) / total + gamma * lower

    def prob(self, word: str, context: Iterable[str] = ()) -> float:
        """P(word | the last order-1 words of context); unknown words are ``<unk>``."""
        word = word if word in self.vocab else UNK
        context = tuple(w if w in self.vocab or w == BOS else UNK for w in context)
        context = ((BOS,) * (self.order - 1) + context)[len(context):] if self.order > 1 else ()
        if self.smoothing in ("kn", "mkn"):
            return self._kn_prob(word, context)
        m = self.order
        c = self.counts[m].get(context + (word,), 0)
        total = self._context_totals[m].get(context, 0)
        if self.smoothing == "mle":
            return c / total if total else 0.0
        return (c + self.k) / (total + self.k * len(self.vocab))

    def log_prob(self, sentence: list[str]) -> float:
        """Natural-log probability of a sentence and its ``</s>``."""
        padded = self._pad(sentence)
        total = 0.0
        for i in range(self.order - 1, len(padded)):
            p = self.prob(padded[i], padded[i - self.order + 1:i])
            total += math.log(p) if p > 0 else -math.inf
        return total

    def perplexity(self, sentences: Iterable[list[str]]) -> float:
        """exp(-Σ log p / N), N the number of predicted tokens (words and ``</s>``)."""
        total, count = 0.0, 0
        for s in sentences:
            total += self.log_prob(s)
            count += len(s) + 1
        return math.exp(-total / count)

    # ---- segmentation -----------------------------------------------------------------------------
    def segment(self, symbols: list[str], marker: str = "_", beam: int = 16) -> list[bool]:
        """Restore boundaries: the most probable way to insert ``marker`` between ``symbols`` under this model
        (trained on sequences that contain the markers), by a Viterbi search over the last ``order - 1`` symbols,
        keeping the ``beam`` best histories per position. Returns, per symbol, whether a marker follows it (the
        last symbol: False; the line end is given)."""
        if not symbols:
            return []
        cache: dict = {}

        def logp(word, context):
            key = (word, context)
            if key not in cache:
                p = self.prob(word, context)
                cache[key] = math.log(p) if p > 0 else -math.inf
            return cache[key]

        k = max(self.order - 1, 0)

        def shorten(context):
            return context[-k:] if k else ()

        # hypotheses: context → (log prob, boundary decisions so far)
        hyps = {shorten((symbols[0],)): (logp(symbols[0], ()), [])}
        for s in symbols[1:]:
            nxt: dict = {}
            for context, (score, decisions) in hyps.items():
                for split in (False, True):
                    ctx, sc = context, score
                    if split:
                        sc += logp(marker, ctx)
                        ctx = shorten(ctx + (marker,))
                    sc += logp(s, ctx)
                    ctx = shorten(ctx + (s,))
                    if ctx not in nxt or sc > nxt[ctx][0]:
                        nxt[ctx] = (sc, decisions + [split])
            hyps = dict(sorted(nxt.items(), key=lambda kv: -kv[1][0])[:beam])
        best = max(hyps.items(), key=lambda kv: kv[1][0] + logp(EOS, kv[0]))
        return best[1][1] + [False]
