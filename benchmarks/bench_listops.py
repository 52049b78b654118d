"""ListOps-style expressions (Nangia & Bowman 2018, generated here with seeds by ``rnnkit.data.listops``): the
Child-Sum Tree-LSTM on the given trees (``tree-classify``, the root's value), the binary N-ary Tree-LSTM on the
same trees left-binarized (``Tree.binarized``: the operator, then one argument at a time), against a sequential
LSTM on the
bracketed string (``classify``, whitespace tokens). Both train on depths 1-5 and keep the weights with the best
validation loss (depths 1-5); the test set has equal numbers of expressions of every depth 1-8, so depths 6-8 are
deeper than anything seen in training. Reports accuracy by depth.

Usage: ``python benchmarks/bench_listops.py --budget 6``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from bench_cells import _maybe_reexec, train_best

from rnnkit.data.listops import depth, generate, write_listops

COMMON = {"data.batch_size": "64", "model.embedding_size": "128", "model.hidden_size": "128", "model.dropout": "0.0",
          "train.lr": "2e-3", "train.clip_norm": "5", "train.steps": "1000000", "train.eval_every": "300",
          "train.checkpoint_every": "1000000", "train.log_every": "100", "train.schedule": "cosine"}
MODELS = {
    "tree-lstm": {"data.task": "tree-classify", "data.format": "jsonl", "model.composition": "child-sum-lstm"},
    # the binary N-ary Tree-LSTM over left-binarized trees: operator first, then the arguments one at a time
    "nary-tree-lstm": {"data.task": "tree-classify", "data.format": "jsonl", "model.composition": "nary-lstm"},
    "lstm": {"data.task": "classify", "data.format": "text", "data.tokenizer": "whitespace", "model.cell": "lstm",
             "model.num_layers": "1", "model.bidirectional": "false"},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["tree-lstm", "lstm"], choices=list(MODELS))
    p.add_argument("--train", type=int, default=20_000, help="training expressions (depths 1-5)")
    p.add_argument("--per-depth", type=int, default=250, help="test expressions of each depth 1-8")
    p.add_argument("--budget", type=float, default=6.0, help="minutes of training per model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp())
    splits = {"train": generate(args.train, range(1, 6), seed=args.seed),
              "val": generate(2_000, range(1, 6), seed=args.seed + 1),
              "test": generate(8 * args.per_depth, range(1, 9), seed=args.seed + 2)}
    files = {name: write_listops(trees, folder / name) for name, trees in splits.items()}  # (jsonl, txt)
    depths = [depth(t) for t in splits["test"]]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.train:,} training expressions "
          f"(depths 1-5), {len(depths):,} test expressions (depths 1-8); {args.budget:g} minutes a model\n")
    results = {}
    for name in args.models:
        column = 0 if MODELS[name]["data.task"] == "tree-classify" else 1
        overrides = {**COMMON, **MODELS[name], "data.path": str(files["train"][column]),
                     "data.val_path": str(files["val"][column]), "train.time_limit": str(args.budget),
                     "train.seed": str(args.seed)}
        task, model, summary, seconds = train_best(overrides, Path(tempfile.mkdtemp()) / "run")
        rows = task.predict(model, task.file_batches(str(files["test"][column])))
        by_depth = defaultdict(list)
        for row, d in zip(rows, depths):
            by_depth[d].append(row["label"] == row["true"])
        results[name] = ({d: sum(v) / len(v) for d, v in sorted(by_depth.items())}, summary, seconds)
        print(f"{name}: {summary['steps']} updates in {seconds / 60:.1f} min, best validation accuracy "
              f"{100 * summary['best_val_accuracy']:.2f}%", flush=True)
    print("\n| model | updates | " + " | ".join(f"depth {d}" for d in range(1, 9)) + " | depths 1-5 | depths 6-8 |")
    print("|---|---:|" + "---:|" * 10)
    for name, (acc, summary, _) in results.items():
        seen = sum(acc[d] for d in range(1, 6)) / 5
        unseen = sum(acc[d] for d in range(6, 9)) / 3
        print(f"| {name} | {summary['steps']} | " + " | ".join(f"{100 * acc[d]:.1f}" for d in range(1, 9))
              + f" | {100 * seen:.1f} | {100 * unseen:.1f} |")


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
