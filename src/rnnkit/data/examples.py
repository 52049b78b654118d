"""Readers for datasets of labelled sequences, each a list of :class:`LabeledSequence` with clear errors that name
the file and line.

Classification (one label per sequence):

* ``ts``: the UEA/UCR archive's ``.ts`` text format as sktime/aeon write it: ``@`` header lines, ``@data``, then
  one case a line, dimensions separated by ``:``, values by ``,``, the class label last.
* ``csv``: one row per time step with columns ``id``, ``label`` and the features; the rows of one ``id`` in time
  order (the label is read from the first row of each id).
* ``jsonl``: one object a line, ``{"sequence": [[f1, f2, ...], ...], "label": "..."}`` (steps × features; a flat
  list is one feature).
* ``text``: ``label<TAB>sentence`` lines.
* ``sst``: PTB-style bracketed trees (the Stanford Sentiment Treebank), reduced to the sentence and its root label;
  optionally every labelled phrase as an example too.

Tagging (one label per step):

* ``conll``: two whitespace-separated columns ``token tag``, a blank line between sequences.
* ``segment``: text with a boundary marker (PTB's character files mark word ends with ``_``): the marker is
  removed and each symbol tagged ``B`` ("a boundary follows") or ``O``; the markers at the line ends are dropped
  (those boundaries are given, not guessed). Symbols are characters, or whitespace-separated (PTB's files).

Sequence to sequence: ``read_parallel``, ``source<TAB>target`` lines or SCAN's ``IN: ... OUT: ...`` lines.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .text import read_text


@dataclass
class LabeledSequence:
    steps: list | np.ndarray  # tokens (text tasks) or a (T, D) float array (numeric tasks)
    label: str | list[str]  # one label (classify) or one per step (tag)


def _error(path, line: int | None, what: str) -> ValueError:
    where = f"{path}" + (f", line {line}" if line else "")
    return ValueError(f"{where}: {what}")


def _finite(values: np.ndarray, path, line: int) -> np.ndarray:
    """``values`` when every entry is a finite number; otherwise an error naming the line (NaN or inf would
    poison the scaler and every loss)."""
    if not np.isfinite(values).all():
        bad = values[~np.isfinite(values)].flat[0]
        raise _error(path, line, f"values must be finite numbers; got {bad} (fill or drop missing values first)")
    return values


def read_ts(path: str | Path) -> list[LabeledSequence]:
    """A UEA/UCR ``.ts`` file with class labels (multivariate, unequal lengths allowed)."""
    text = read_text(path)
    examples, in_data, dims = [], False, None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if line.lower().startswith("@data"):
                in_data = True
            elif line.lower().startswith("@classlabel") and line.split()[1:2] == ["false"]:
                raise _error(path, n, "the file has no class labels (@classLabel false); classify needs them")
            continue
        *channels, label = line.split(":")
        if not channels:
            raise _error(path, n, "expected dimensions separated by ':' and the class label last")
        try:
            values = [np.array([float(v) for v in c.split(",")]) for c in channels]
        except ValueError:
            raise _error(path, n, "values must be numbers separated by ','") from None
        if dims is None:
            dims = len(values)
        if len(values) != dims or len({len(v) for v in values}) != 1:
            raise _error(path, n, f"expected {dims} dimensions of equal length; got lengths {[len(v) for v in values]}")
        examples.append(LabeledSequence(_finite(np.stack(values, 1), path, n), label.strip()))
    if not in_data:
        raise _error(path, None, "no @data line; expected the .ts format (header lines, @data, one case a line)")
    return _nonempty(examples, path)


def read_csv_sequences(path: str | Path) -> list[LabeledSequence]:
    """Rows ``id, label, feature...``, one per time step; the rows of an id are its sequence in order."""
    read_text(path)  # the same checks as every text input (exists, not binary, UTF-8)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0]]
    if "id" not in header or "label" not in header:
        raise _error(path, 1, f"expected a header with columns id, label and the features; got {header}")
    i_id, i_label = header.index("id"), header.index("label")
    features = [i for i in range(len(header)) if i not in (i_id, i_label)]
    if not features:
        raise _error(path, 1, "no feature columns besides id and label")
    order, steps, labels = [], {}, {}
    for n, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != len(header):
            raise _error(path, n, f"expected {len(header)} columns; got {len(row)}")
        key = row[i_id]
        if key not in steps:
            order.append(key)
            steps[key], labels[key] = [], row[i_label].strip()
        try:
            steps[key].append(_finite(np.array([float(row[i]) for i in features]), path, n))
        except ValueError as e:
            if "finite" in str(e):
                raise
            raise _error(path, n, f"feature values must be numbers; got {[row[i] for i in features]}") from None
    return _nonempty([LabeledSequence(np.array(steps[k]), labels[k]) for k in order], path)


def read_jsonl_sequences(path: str | Path) -> list[LabeledSequence]:
    """``{"sequence": [[...], ...], "label": ...}`` a line."""
    examples = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            seq, label = np.asarray(obj["sequence"], dtype=float), obj["label"]
        except (ValueError, KeyError, TypeError) as e:
            raise _error(path, n, f"expected {{\"sequence\": [[numbers]], \"label\": ...}} ({e})") from None
        seq = seq[:, None] if seq.ndim == 1 else seq
        if seq.ndim != 2 or len(seq) == 0:
            raise _error(path, n, f"sequence must be a non-empty list of steps (of feature lists); got shape "
                                  f"{seq.shape}")
        examples.append(LabeledSequence(_finite(seq, path, n), str(label)))
    return _nonempty(examples, path)


def read_labeled_text(path: str | Path, tokenize) -> list[LabeledSequence]:
    """``label<TAB>sentence`` lines, the sentence split by ``tokenize``."""
    examples = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        label, tab, sentence = line.partition("\t")
        tokens = tokenize(sentence)
        if not tab or not label.strip() or not tokens:
            raise _error(path, n, "expected label<TAB>sentence")
        examples.append(LabeledSequence(tokens, label.strip()))
    return _nonempty(examples, path)


# ---- bracketed trees (SST) ----------------------------------------------------------------------------------
def parse_tree(line: str):
    """``(3 (2 The) (4 rock))`` → nested ``(label, children | token)``; raises ValueError on bad brackets. A leaf
    is everything up to its closing bracket (SST has a few leaves with a space inside, such as ``8 1\\/2``)."""
    pos, n = 0, len(line)

    def skip():
        nonlocal pos
        while pos < n and line[pos] == " ":
            pos += 1

    def node():
        nonlocal pos
        skip()
        if pos >= n or line[pos] != "(":
            raise ValueError(f"expected '(' at character {pos}")
        pos += 1
        end = line.find(" ", pos)
        if end < 0:
            raise ValueError(f"expected a label at character {pos}")
        label, pos = line[pos:end], end
        skip()
        if pos < n and line[pos] == "(":
            children = []
            while pos < n and line[pos] == "(":
                children.append(node())
                skip()
            out = (label, children)
        else:
            end = line.find(")", pos)
            if end <= pos:
                raise ValueError(f"expected a word at character {pos}")
            out, pos = (label, line[pos:end].strip()), end
        if pos >= n or line[pos] != ")":
            raise ValueError(f"expected ')' at character {pos}")
        pos += 1
        return out

    tree = node()
    skip()
    if pos != len(line.rstrip()):
        raise ValueError("text after the closing bracket")
    return tree


def tree_leaves(tree) -> list[str]:
    label, rest = tree
    return [rest] if isinstance(rest, str) else [w for child in rest for w in tree_leaves(child)]


def tree_phrases(tree):
    """Every node as (label, its words), root first."""
    label, rest = tree
    yield label, tree_leaves(tree)
    if not isinstance(rest, str):
        for child in rest:
            yield from tree_phrases(child)


SST_BINARY = {"0": "negative", "1": "negative", "3": "positive", "4": "positive"}  # neutral (2) is dropped


def read_sst(path: str | Path, labels: str = "fine", phrases: bool = False,
             lower: bool = False) -> list[LabeledSequence]:
    """Sentences of bracketed trees with their root labels (``labels="fine"``: 0-4; ``"binary"``: negative /
    positive, neutral sentences dropped, as Socher et al. 2013). ``phrases=True`` adds every labelled phrase of
    every tree (once per distinct phrase and label), the training set of the RNTN's and Tai et al.'s models."""
    if labels not in ("fine", "binary"):
        raise ValueError(f"SST labels must be 'fine' or 'binary'; got {labels!r}")
    examples, seen = [], set()
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            tree = parse_tree(line)
        except ValueError as e:
            raise _error(path, n, f"not a bracketed tree ({e}); expected e.g. (3 (2 The) (4 rock))") from None
        nodes = tree_phrases(tree) if phrases else [(tree[0], tree_leaves(tree))]
        for label, words in nodes:
            if labels == "binary":
                if label not in SST_BINARY:
                    continue
                label = SST_BINARY[label]
            words = [w.lower() for w in words] if lower else words
            key = (label, tuple(words))
            if phrases and key in seen:
                continue
            seen.add(key)
            examples.append(LabeledSequence(words, label))
    return _nonempty(examples, path)


# ---- tagging --------------------------------------------------------------------------------------------------
def read_conll(path: str | Path) -> list[LabeledSequence]:
    """``token tag`` lines (the first and last columns), sequences separated by blank lines."""
    examples, tokens, tags = [], [], []
    for n, line in enumerate(read_text(path).splitlines() + [""], 1):
        cols = line.split()
        if not cols:
            if tokens:
                examples.append(LabeledSequence(tokens, tags))
                tokens, tags = [], []
            continue
        if not 2 <= len(cols) <= 6:
            raise _error(path, n, f"expected 'token tag' (a token and its tag a line, CoNLL style); got {len(cols)} "
                                  "columns (text with boundary markers: data.format segment)")
        tokens.append(cols[0])
        tags.append(cols[-1])
    return _nonempty(examples, path)


BOUNDARY, INSIDE = "B", "O"


def segment_line(symbols: list[str], marker: str) -> LabeledSequence | None:
    """Symbols with boundary markers → the symbols without them, each tagged B when a marker followed it."""
    out, tags = [], []
    for s in symbols:
        if s == marker:
            if tags:
                tags[-1] = BOUNDARY
        else:
            out.append(s)
            tags.append(INSIDE)
    if not out:
        return None
    tags[-1] = INSIDE  # the line end is a given boundary, not a decision
    return LabeledSequence(out, tags)


def read_segmentation(path: str | Path, marker: str = "_", whitespace: bool = True) -> list[LabeledSequence]:
    """Lines of symbols with boundary markers (see the module docstring); ``whitespace``: symbols are separated by
    whitespace (PTB's character files), else every character is a symbol (and a marker " " restores spaces)."""
    examples = []
    for line in read_text(path).splitlines():
        symbols = line.split() if whitespace else list(line.strip())
        ex = segment_line(symbols, marker)
        if ex is not None:
            examples.append(ex)
    if not examples or all(BOUNDARY not in ex.label for ex in examples[:1000]):
        raise _error(path, None, f"no boundary marker {marker!r} between symbols; set data.boundary to the marker")
    return examples


def _nonempty(examples: list, path) -> list:
    if not examples:
        raise _error(path, None, "no examples found")
    return examples


# ---- parallel text (sequence-to-sequence) ---------------------------------------------------------------------
def read_parallel(path: str | Path) -> list[tuple[str, str]]:
    """(source, target) pairs, one a line: ``source<TAB>target``, or SCAN's ``IN: <command> OUT: <actions>``
    (Lake & Baroni 2018). Blank lines are skipped; a line with an empty side is an error naming it."""
    pairs = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("IN:") and " OUT:" in line:
            source, _, target = line[3:].partition(" OUT:")
        else:
            source, tab, target = line.partition("\t")
            if not tab:
                raise _error(path, n, "expected source<TAB>target (or SCAN's 'IN: ... OUT: ...'); found no tab")
        source, target = source.strip(), target.strip()
        if not source or not target:
            raise _error(path, n, f"empty {'source' if not source else 'target'}; every pair needs both sides")
        pairs.append((source, target))
    return _nonempty(pairs, path)
