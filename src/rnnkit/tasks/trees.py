"""``tree-classify``: a label for every node of a tree (node-level) and for the whole tree (its root), with the
recursive compositions of :mod:`rnnkit.trees` (seed 003's recursive networks; Socher et al. 2013's sentiment
treebank setting).

Reads bracketed (SST) or JSON trees (``rnnkit.trees.tree``); the vocabulary and label set come from the training
trees and are saved in the run. ``data.phrases true`` trains on every labelled node, else on the roots only;
validation scores the roots (sentence level), a file given to ``rnnkit evaluate`` every labelled node too
(``node_accuracy``). Binary compositions get the trees binarized (``Tree.binarized``); ``data.sst_labels binary``
maps SST's 0-1 / 3-4 to negative / positive, leaves neutral nodes unlabelled and drops trees with a neutral root.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import RunConfig
from ..data.batches import IGNORE_INDEX, ExampleBatches
from ..data.examples import SST_BINARY
from ..data.vocab import Vocabulary
from ..io import write_json_atomic
from ..metrics import confusion_matrix, macro_f1
from ..trees.compositions import COMPOSITIONS
from ..trees.model import TreeClassifier
from ..trees.tree import Tree, node_table, read_trees
from .base import Task, hold_out
from .sequences import PAD, UNK, _read_json, _sorted_labels

FORMS = {"auto": "auto", "sst": "bracketed", "jsonl": "json"}


class _TreeCounts:
    """Root (sentence-level) confusion, and correct / total over every labelled node."""

    def __init__(self, num_classes: int):
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.nodes = np.zeros(2, dtype=np.int64)

    def add(self, prediction, batch, model=None) -> None:
        predicted, actual = prediction.argmax(-1).cpu(), batch.targets.cpu()
        B, N = actual.shape
        roots = (batch.lengths - 1) if batch.lengths is not None else torch.full((B,), N - 1)
        root_actual, root_predicted = actual[torch.arange(B), roots], predicted[torch.arange(B), roots]
        keep = root_actual != IGNORE_INDEX
        self.confusion += confusion_matrix(root_actual[keep].numpy(), root_predicted[keep].numpy(),
                                           len(self.confusion))
        labelled = actual != IGNORE_INDEX
        self.nodes += [int((predicted[labelled] == actual[labelled]).sum()), int(labelled.sum())]

    def metrics(self) -> dict:
        c = self.confusion
        return {"accuracy": float(np.trace(c) / max(c.sum(), 1)), "macro_f1": macro_f1(c),
                "node_accuracy": float(self.nodes[0] / max(self.nodes[1], 1))}


class TreeClassifyTask(Task):
    """Trees → a class per node (see the module). Metrics: loss, root accuracy and macro-F1, node accuracy."""

    name = "tree-classify"

    def __init__(self, config: RunConfig, run_dir: Path | None = None, with_data: bool = True):
        self.config = config
        m, d = config.model, config.data
        if d.format not in FORMS:
            raise ValueError(f"data.format={d.format} does not fit data.task tree-classify; expected sst (bracketed "
                             "trees), jsonl (JSON trees, one a line) or auto")
        self.binary = COMPOSITIONS[m.composition].binary
        self.vocab, self.labels = None, None
        if run_dir is not None:
            saved = _read_json(Path(run_dir) / "labels.json", "label set")
            if not isinstance(saved.get("labels"), list):
                raise ValueError(f"{run_dir}/labels.json: expected {{\"labels\": [...]}}")
            self.labels = saved["labels"]
            self.vocab = Vocabulary.load(Path(run_dir) / "vocab.json")
        if not with_data:
            self.description = f"{len(self.labels)} labels"
            return
        if not d.path:
            raise ValueError("data.task tree-classify needs data.path: a file of trees, bracketed (SST) or JSON lines")
        train = self.read(d.path)
        if d.val_path:
            val = self.read(d.val_path)
        else:
            train, val = hold_out(train, d.val_fraction, config.train.seed, d.path)
        if self.labels is None:
            self.labels = _sorted_labels(n.label for t in train for n in t.nodes() if n.label is not None)
            if len(self.labels) < 2:
                raise ValueError(f"{d.path}: the training trees have only the labels {self.labels}; need two or more")
            self.vocab = Vocabulary.from_counts((w for t in train for w in t.words()), min_count=d.min_count,
                                                max_size=d.max_vocab or None, unk=UNK, specials=(PAD,))
        self.train = self.batches(train, d.batch_size, seed=config.train.seed, every_node=d.phrases, path=d.path)
        self.val = self.batches(val, min(d.batch_size, len(val)), every_node=False, path=d.val_path or d.path)
        nodes = sum(len(t.nodes()) for t in train)
        self.description = (f"{len(train):,} training trees ({nodes:,} nodes) and {len(val):,} validation trees, "
                            f"{len(self.labels)} classes, vocabulary {len(self.vocab)}, composition {m.composition}")

    # ---- reading and encoding ----------------------------------------------------------------------------
    def read(self, path: str) -> list[Tree]:
        """The file's trees with the run's preprocessing: lower-casing, SST binary labels, binarizing."""
        d = self.config.data
        trees = read_trees(path, FORMS[d.format])
        if d.lower:
            trees = [t.map(word=str.lower) for t in trees]
        if d.sst_labels == "binary":
            trees = [t.map(label=lambda lab: SST_BINARY.get(lab)) for t in trees]
            trees = [t for t in trees if t.label is not None]
            if not trees:
                raise ValueError(f"{path}: no tree has a non-neutral root label; data.sst_labels binary needs SST's "
                                 "0-4 labels")
        inner_words = any(n.word is not None and n.children for t in trees[:1000] for n in t.nodes())
        if self.binary and (inner_words or max(t.arity() for t in trees) > 2):
            logging.getLogger("rnnkit").info("%s: nodes with more than two children or words; binarized for %s",
                                             path, self.config.model.composition)
            trees = [t.binarized() for t in trees]
        return trees

    def encode(self, trees: list[Tree], every_node: bool = True, path: str = "") -> tuple[list, list]:
        """Node tables (N_i, 2 + K) and node targets (N_i,) (IGNORE_INDEX: unlabelled, or not the root when
        ``every_node`` is False)."""
        index = {label: i for i, label in enumerate(self.labels)}
        arity = max(2 if self.binary else 1, max(t.arity() for t in trees))
        ids, unk = self.vocab.index, self.vocab.index[UNK]
        inputs, targets = [], []
        for n, tree in enumerate(trees, 1):
            rows = node_table(tree, lambda w: 0 if w is None else ids.get(w, unk), arity)
            labels = []
            for node in tree.nodes():
                if node.label is not None and node.label not in index:
                    raise ValueError(f"{path}: tree {n} has the label {node.label!r}, not seen in training; known "
                                     f"labels: {self.labels}")
                labels.append(IGNORE_INDEX if node.label is None else index[node.label])
            if not every_node:
                labels = [IGNORE_INDEX] * (len(labels) - 1) + labels[-1:]
            inputs.append(torch.tensor(rows, dtype=torch.long))
            targets.append(torch.tensor(labels, dtype=torch.long))
        return inputs, targets

    def batches(self, trees: list[Tree], batch_size: int, seed: int = 0, every_node: bool = True,
                path: str = "") -> ExampleBatches:
        inputs, targets = self.encode(trees, every_node, path)
        batches = ExampleBatches(inputs, targets, batch_size, seed=seed, pad_id=0)
        batches.trees = trees
        return batches

    def file_batches(self, path: str) -> ExampleBatches:
        trees = self.read(path)
        return self.batches(trees, min(self.config.data.batch_size, len(trees)), every_node=True, path=path)

    # ---- artifacts and model -------------------------------------------------------------------------------
    def save_artifacts(self, run_dir: Path) -> list[str]:
        write_json_atomic(run_dir / "labels.json", {"labels": self.labels})
        self.vocab.save(run_dir / "vocab.json")
        return ["labels.json", "vocab.json"]

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path, with_data: bool = True) -> TreeClassifyTask:
        return cls(config, run_dir, with_data=with_data)

    def build_model(self) -> nn.Module:
        m = self.config.model
        return TreeClassifier(len(self.labels), len(self.vocab), m.composition, m.embedding_size, m.hidden_size,
                              m.dropout)

    def collector(self) -> _TreeCounts:
        return _TreeCounts(len(self.labels))

    @torch.no_grad()
    def predict(self, model: nn.Module, batches: ExampleBatches) -> list[dict]:
        """One dict per tree in file order: the root's label and class probabilities, the true root label when the
        file has one, and the tree with every node's predicted label (bracketed)."""
        rows = {}
        for batch in batches.sequential():
            probs = model(batch.inputs, None, None, **batch.model_inputs()).prediction.softmax(-1)
            for r, i in enumerate(batch.index.tolist()):
                tree = batches.trees[i]
                nodes = tree.nodes()
                labels = iter(self.labels[int(k)] for k in probs[r, : len(nodes)].argmax(-1))
                predicted = {id(node): next(labels) for node in nodes}
                root = probs[r, len(nodes) - 1]
                row = {"index": i, "label": self.labels[int(root.argmax())],
                       "probabilities": {lab: round(float(p), 6) for lab, p in zip(self.labels, root)},
                       "tree": _written(_relabel(tree, predicted))}
                if tree.label is not None:
                    row["true"] = tree.label
                rows[i] = row
        return [rows[i] for i in sorted(rows)]


def _written(tree: Tree):
    """The bracketed string, or the JSON object for a tree with words at inner nodes."""
    try:
        return tree.to_bracketed()
    except ValueError:
        return tree.to_json()


def _relabel(tree: Tree, labels: dict) -> Tree:
    return Tree(labels[id(tree)], [_relabel(c, labels) for c in tree.children], tree.word)
