"""Trees with per-node labels, their readers and writers, and their flat node table (what the batched encoder eats).

A :class:`Tree` is n-ary; a node has an optional label, an optional word and its children (a leaf has a word and no
children). Two file forms, one tree a line:

* bracketed (PTB style, the Stanford Sentiment Treebank): ``(3 (2 The) (4 (3 rock) (2 rules)))`` — a node is
  ``(label word)`` or ``(label child child ...)``;
* JSON lines: ``{"label": "3", "children": [{"label": "2", "word": "The"}, {"word": "rocks"}]}`` — ``label`` may
  be missing or null (an unlabelled node), ``word`` and ``children`` may both be given (a word at an inner node,
  as in dependency trees).

:func:`node_table` lists a tree's nodes in post-order (children before parents, the root last) as rows
``[token id, height, child_1 + 1, ..., child_K + 1]`` (0: no child), the form that pads into batches like any
sequence; its heights give the levels the encoder computes together (Looks et al. 2017's dynamic batching).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..data.examples import parse_tree
from ..data.text import read_text


@dataclass
class Tree:
    label: str | None = None
    children: list[Tree] = field(default_factory=list)
    word: str | None = None

    def __post_init__(self):
        if self.word is None and not self.children:
            raise ValueError("a tree node needs a word or children; got neither")

    # ---- views ---------------------------------------------------------------------------------------------
    def nodes(self) -> list[Tree]:
        """Every node in post-order: children before their parent, the root last."""
        out = []
        for child in self.children:
            out.extend(child.nodes())
        out.append(self)
        return out

    def words(self) -> list[str]:
        """The words in reading order (a word at an inner node comes before its children's)."""
        own = [] if self.word is None else [self.word]
        return own + [w for child in self.children for w in child.words()]

    def height(self) -> int:
        return 0 if not self.children else 1 + max(child.height() for child in self.children)

    def arity(self) -> int:
        """The largest number of children of any node."""
        return max([len(self.children)] + [child.arity() for child in self.children])

    def map(self, word=lambda w: w, label=lambda lab: lab) -> Tree:
        """A copy with every word and label passed through the given functions (None stays None)."""
        return Tree(None if self.label is None else label(self.label), [c.map(word, label) for c in self.children],
                    None if self.word is None else word(self.word))

    def binarized(self) -> Tree:
        """Left-factored binary form for the binary compositions (RNN, RNTN, N-ary Tree-LSTM): a word at an inner
        node becomes its first child (a leaf), then children c1 … cn (n > 2) become (((c1 c2) c3) … cn), the
        inserted nodes unlabelled — the children are read in order, one at a time (as Nangia & Bowman's
        Tree-LSTM reads ListOps)."""
        kids = [c.binarized() for c in self.children]
        if self.word is not None and kids:
            kids = [Tree(None, word=self.word)] + kids
        while len(kids) > 2:
            kids = [Tree(None, kids[:2])] + kids[2:]
        return Tree(self.label, kids, None if kids else self.word)

    # ---- writing -------------------------------------------------------------------------------------------
    def to_bracketed(self) -> str:
        """The PTB-style string (inverse of :func:`parse_bracketed`; needs a label at every node and a word or
        children, not both)."""
        if self.label is None or (self.word is not None and self.children):
            raise ValueError("the bracketed form needs a label at every node and a word or children, not both; "
                             "write JSON instead")
        inner = self.word if self.word is not None else " ".join(c.to_bracketed() for c in self.children)
        return f"({self.label} {inner})"

    def to_json(self) -> dict:
        out: dict = {}
        if self.label is not None:
            out["label"] = self.label
        if self.word is not None:
            out["word"] = self.word
        if self.children:
            out["children"] = [c.to_json() for c in self.children]
        return out


def parse_bracketed(line: str) -> Tree:
    """``(3 (2 The) (4 rock))`` → :class:`Tree`; a ValueError names the character position of bad brackets."""
    def build(node):
        label, rest = node
        return Tree(label, word=rest) if isinstance(rest, str) else Tree(label, [build(c) for c in rest])

    return build(parse_tree(line))


def tree_from_json(obj, where: str = "root") -> Tree:
    """A JSON object (see the module docstring) → :class:`Tree`; errors name the node's path (root.children[1])."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object with 'label', 'word' and/or 'children'; got "
                         f"{type(obj).__name__}")
    unknown = set(obj) - {"label", "word", "children"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; expected 'label', 'word', 'children'")
    label, word, children = obj.get("label"), obj.get("word"), obj.get("children", [])
    if label is not None and not isinstance(label, (str, int)):
        raise ValueError(f"{where}: 'label' must be a string or integer; got {label!r}")
    if word is not None and not isinstance(word, str):
        raise ValueError(f"{where}: 'word' must be a string; got {word!r}")
    if not isinstance(children, list):
        raise ValueError(f"{where}: 'children' must be a list of nodes")
    if word is None and not children:
        raise ValueError(f"{where}: an empty node (no word, no children); every node needs one or both")
    kids = [tree_from_json(c, f"{where}.children[{i}]") for i, c in enumerate(children)]
    return Tree(None if label is None else str(label), kids, word)


def detect_format(path: str | Path) -> str:
    """``bracketed`` when the first non-blank line starts with '(', ``json`` when with '{'."""
    for line in read_text(path).splitlines():
        if line.strip():
            first = line.lstrip()[0]
            if first in "({":
                return "bracketed" if first == "(" else "json"
            break
    raise ValueError(f"{path}: expected one tree a line, bracketed '(label ...)' or JSON '{{\"label\": ...}}'")


def read_trees(path: str | Path, form: str = "auto") -> list[Tree]:
    """Every tree of a file (one a line, blank lines skipped), bracketed or JSON; errors name the line."""
    form = detect_format(path) if form == "auto" else form
    if form not in ("bracketed", "json"):
        raise ValueError(f"tree files are 'bracketed' or 'json'; got {form!r}")
    trees = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            if form == "bracketed":
                trees.append(parse_bracketed(line))
            else:
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    raise ValueError(f"not JSON ({e})") from None
                trees.append(tree_from_json(obj))
        except ValueError as e:
            example = "(3 (2 The) (4 rock))" if form == "bracketed" else '{"label": "1", "children": [...]}'
            raise ValueError(f"{path}, line {n}: {e}; expected a tree such as {example}") from None
    if not trees:
        raise ValueError(f"{path}: no trees found")
    return trees


def write_trees(trees: list[Tree], path: str | Path, form: str = "bracketed") -> None:
    """One tree a line, bracketed or JSON, written atomically."""
    from ..io import write_bytes_atomic

    lines = [t.to_bracketed() if form == "bracketed" else json.dumps(t.to_json()) for t in trees]
    write_bytes_atomic(Path(path), ("\n".join(lines) + "\n").encode("utf-8"))


def node_table(tree: Tree, token_id, arity: int) -> list[list[int]]:
    """The post-order rows ``[token id, height, child_1 + 1, ..., child_arity + 1]`` (0: no child / no token is
    ``token_id(None)``); a node with more than ``arity`` children is an error."""
    rows: list[list[int]] = []

    def visit(node: Tree) -> tuple[int, int]:
        if len(node.children) > arity:
            raise ValueError(f"a node has {len(node.children)} children; this model takes at most {arity} (binarize "
                             "the trees for binary compositions)")
        kids = [visit(c) for c in node.children]
        height = 1 + max(h for _, h in kids) if kids else 0
        rows.append([token_id(node.word), height] + [i + 1 for i, _ in kids] + [0] * (arity - len(kids)))
        return len(rows) - 1, height

    visit(tree)
    return rows
