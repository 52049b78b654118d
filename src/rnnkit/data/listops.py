"""ListOps-style expressions (Nangia & Bowman 2018), generated with a seed: nested lists of the operators MAX, MIN,
MED (median, rounded down) and SM (sum modulo 10) over the digits 0-9, each with 2-5 arguments; the label is the
expression's value (0-9). The task needs the tree's structure: a sequence model must learn the nesting from brackets.

An expression is a :class:`rnnkit.trees.Tree` whose node for a list has the operator as its word (``[MAX``; a
Child-Sum Tree-LSTM reads it as the node's input x) and its arguments as children; every node carries its value as
its label. Its
depth is the nesting depth of the lists (``[MAX 3 [MIN 1 9 ] ]`` has depth 2). :func:`write_listops` writes a
split as JSON trees (``tree-classify``) and as ``value<TAB>bracketed string`` lines (``classify``, whitespace
tokens: ``[MAX 3 [MIN 1 9 ] ]``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..io import write_bytes_atomic
from ..trees.tree import Tree

OPERATORS = {
    "MAX": max,
    "MIN": min,
    "MED": lambda xs: sorted(xs)[(len(xs) - 1) // 2] if len(xs) % 2 else (sorted(xs)[len(xs) // 2 - 1]
                                                                          + sorted(xs)[len(xs) // 2]) // 2,
    "SM": lambda xs: sum(xs) % 10,
}


def expression(depth: int, rng: random.Random, branch: float = 0.25) -> Tree:
    """A random expression of exactly ``depth`` nesting levels: one argument is an expression of depth − 1, each
    other argument a digit or (with probability ``branch``) a shallower expression."""
    if depth < 1:
        raise ValueError(f"an expression has depth >= 1; got {depth}")
    op = rng.choice(list(OPERATORS))
    k = rng.randint(2, 5)
    deep = rng.randrange(k)
    args = []
    for i in range(k):
        if depth > 1 and i == deep:
            args.append(expression(depth - 1, rng, branch))
        elif depth > 2 and rng.random() < branch:
            args.append(expression(rng.randint(1, depth - 2), rng, branch))
        else:
            d = rng.randrange(10)
            args.append(Tree(str(d), word=str(d)))
    value = OPERATORS[op]([int(a.label) for a in args])
    return Tree(str(value), args, word=f"[{op}")


def to_string(tree: Tree) -> str:
    """``[MAX 3 [MIN 1 9 ] ]``: the expression as Nangia & Bowman write it."""
    if not tree.children:
        return tree.word
    return " ".join([tree.word] + [to_string(c) for c in tree.children]) + " ]"


def depth(tree: Tree) -> int:
    return 0 if not tree.children else 1 + max(depth(c) for c in tree.children)


def generate(n: int, depths: range | list[int], seed: int) -> list[Tree]:
    """``n`` expressions, depths cycling through ``depths`` (equal counts per depth), drawn with ``seed``."""
    rng, depths = random.Random(seed), list(depths)
    return [expression(depths[i % len(depths)], rng) for i in range(n)]


def write_listops(trees: list[Tree], stem: str | Path) -> tuple[Path, Path]:
    """``stem.jsonl`` (JSON trees) and ``stem.txt`` (``value<TAB>string`` lines), written atomically."""
    stem = Path(stem)
    trees_path, text_path = stem.with_suffix(".jsonl"), stem.with_suffix(".txt")
    write_bytes_atomic(trees_path, "".join(json.dumps(t.to_json()) + "\n" for t in trees).encode())
    write_bytes_atomic(text_path, "".join(f"{t.label}\t{to_string(t)}\n" for t in trees).encode())
    return trees_path, text_path
