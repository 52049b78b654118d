"""Tokenizers (seed 004, "tokenization"): characters, and words with punctuation split off.

``word_tokenize("He left!")`` → ``["He", "left", "!"]``. A word is a run of letters/digits/underscores (any
script), with inner apostrophes or hyphens kept (``don't``, ``state-of-the-art``); every other non-space
character is a token of its own, except that a marker in angle brackets (``<unk>``, ``<eos>``) stays one token.
Whitespace (spaces, tabs, newlines) only separates.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"<[^\s<>]+>|\w+(?:['’\-]\w+)*|[^\w\s]", re.UNICODE)

EOS = "<eos>"


def char_tokenize(text: str) -> list[str]:
    return list(text)


def word_tokenize(text: str, lower: bool = False) -> list[str]:
    """Words and punctuation marks of ``text`` (lower-cased when ``lower``)."""
    return _WORD.findall(text.lower() if lower else text)


def whitespace_tokenize(text: str, lower: bool = False) -> list[str]:
    """Tokens separated by whitespace only: for text that is tokenized already (Penn Treebank)."""
    return (text.lower() if lower else text).split()


def word_tokenize_lines(text: str, lower: bool = False, eos: str = EOS, whitespace: bool = False) -> list[str]:
    """Word tokens line by line, each non-empty line closed by ``eos`` (the Penn Treebank convention).
    ``whitespace=True`` splits on whitespace only (pre-tokenized text)."""
    split = whitespace_tokenize if whitespace else word_tokenize
    out: list[str] = []
    for line in text.splitlines():
        words = split(line, lower)
        if words:
            out += words + [eos]
    return out
