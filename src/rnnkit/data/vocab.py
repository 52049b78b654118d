"""Vocabularies: tokens ↔ ids, built from training data only, saved as JSON beside a model."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..io import write_json_atomic


class Vocabulary:
    """An ordered token list with an optional unknown token.

    ``encode`` maps tokens missing from the vocabulary to ``unk`` when there is one, and raises a ValueError
    naming them otherwise.
    """

    def __init__(self, tokens: Iterable[str], unk: str | None = None):
        self.tokens = list(tokens)
        if unk is not None and unk not in self.tokens:
            self.tokens.insert(0, unk)
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.unk = unk
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def from_text(cls, text: str, unk: str | None = None) -> Vocabulary:
        """Characters of ``text`` in sorted order (a character-level vocabulary)."""
        if not text:
            raise ValueError("the training text is empty")
        return cls(sorted(set(text)), unk=unk)

    @classmethod
    def from_counts(cls, tokens: Iterable[str], max_size: int | None = None, min_count: int = 1,
                    unk: str | None = "<unk>", specials: tuple[str, ...] = ()) -> Vocabulary:
        """``specials`` first (e.g. ``<pad>``, ``<bos>``, ``<eos>``), then ``unk``, then the most frequent tokens
        (ties in first-seen order) seen at least ``min_count`` times, at most ``max_size`` entries in all."""
        counts = Counter(tokens)
        reserved = [*specials, *([unk] if unk is not None and unk not in specials else [])]
        kept = [t for t, c in counts.most_common() if c >= min_count and t not in reserved]
        room = None if max_size is None else max(0, max_size - len(reserved))
        return cls(reserved + kept[:room], unk=unk)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens and self.unk == other.unk

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        if self.unk is None:
            try:
                return np.array([self.index[t] for t in tokens], dtype=np.int64)
            except KeyError:
                unknown = sorted(set(tokens) - set(self.index))
                raise ValueError(f"tokens not in the vocabulary: {unknown[:10]}") from None
        unk_id = self.index[self.unk]
        return np.array([self.index.get(t, unk_id) for t in tokens], dtype=np.int64)

    def decode(self, ids, sep: str = "") -> str:
        return sep.join(self.tokens[int(i)] for i in ids)

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, {"tokens": self.tokens, "unk": self.unk})

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data["tokens"], unk=data.get("unk"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a readable vocabulary file ({e})") from None


def pad_batch(sequences: list, pad_id: int = 0):
    """Sequences of ids of different lengths → (N, T_max) int64 tensor padded with ``pad_id``, and lengths (N,).
    The lengths go straight to ``RNN(..., lengths=lengths)``."""
    import torch

    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("pad_batch needs at least one sequence and no empty sequences")
    lengths = torch.tensor([len(s) for s in sequences])
    out = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths
