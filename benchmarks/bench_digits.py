"""scikit-learn's 8×8 digits (``image-classify``, the fixed split: 1,438 training images, of which 10% validation,
and 359 test images): the 2-D recurrent network (ReNet: four sweeps a layer) against a row-by-row RNN and a small
CNN, each trained the same way (Adam 2e-3, cosine schedule, batch 32, ``--epochs`` passes, the weights with the
best validation loss).

``--mode select``: every candidate setting on the validation part (seed 0); ``--mode test --settings NAME ...``:
each setting for ``--seeds`` seeds, validation and test accuracy and the means.

Usage: ``python benchmarks/bench_digits.py --mode select``
       ``python benchmarks/bench_digits.py --mode test --settings renet-2x64 rows-gru cnn --seeds 3``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from bench_cells import _maybe_reexec, train_best

BASE = {"data.task": "image-classify", "data.path": "digits", "data.batch_size": "32", "train.lr": "2e-3",
        "train.schedule": "cosine", "train.clip_norm": "5", "model.dropout": "0.3", "model.cell": "gru",
        "train.log_every": "200", "train.checkpoint_every": "1000000"}
SETTINGS = {
    "renet-1x64-patch2": {"model.image_model": "renet", "model.num_layers": "1", "model.hidden_size": "64",
                          "model.patch": "2"},
    "renet-2x64": {"model.image_model": "renet", "model.num_layers": "2", "model.hidden_size": "64",
                   "model.patch": "2"},
    "renet-1x64-pixels": {"model.image_model": "renet", "model.num_layers": "1", "model.hidden_size": "64",
                          "model.patch": "1"},
    "rows-gru": {"model.image_model": "rows", "model.num_layers": "1", "model.hidden_size": "128"},
    "rows-lstm-2x": {"model.image_model": "rows", "model.num_layers": "2", "model.hidden_size": "128",
                     "model.cell": "lstm"},
    "cnn": {"model.image_model": "cnn", "model.cnn_channels": "32,64"},
    "cnn-3": {"model.image_model": "cnn", "model.cnn_channels": "32,64,128"},
}


def run(setting: str, seed: int, epochs: int, test: bool) -> dict:
    from rnnkit.training.trainer import evaluate

    overrides = {**BASE, **SETTINGS[setting], "train.seed": str(seed), "train.epochs": str(epochs),
                 "train.eval_every": "40"}
    task, model, summary, seconds = train_best(overrides, Path(tempfile.mkdtemp()) / "run")
    out = {"val": summary["best_val_accuracy"], "steps": summary["steps"], "seconds": seconds,
           "parameters": sum(p.numel() for p in model.parameters())}
    if test:
        out["test"] = evaluate(model, task, batches=task.file_batches("digits-test"),
                               collector=task.collector())["accuracy"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["select", "test"], default="select")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.epochs} epochs a run\n")
    if args.mode == "select":
        print("| setting | parameters | validation accuracy | seconds |\n|---|---:|---:|---:|")
        for name in args.settings:
            r = run(name, 0, args.epochs, test=False)
            print(f"| {name} | {r['parameters']:,} | {100 * r['val']:.2f}% | {r['seconds']:.0f} |", flush=True)
        return
    print("| setting | seed | validation | test | seconds |\n|---|---:|---:|---:|---:|")
    means = {}
    for name in args.settings:
        rows = [run(name, seed, args.epochs, test=True) for seed in range(args.seeds)]
        for seed, r in enumerate(rows):
            print(f"| {name} | {seed} | {100 * r['val']:.2f}% | {100 * r['test']:.2f}% | {r['seconds']:.0f} |",
                  flush=True)
        means[name] = (statistics.mean(r["val"] for r in rows), statistics.mean(r["test"] for r in rows),
                       [r["test"] for r in rows], rows[0]["parameters"])
    print("\n| setting | parameters | validation (mean) | test (mean) | test, each seed |\n|---|---:|---:|---:|---|")
    for name, (val, test, each, params) in means.items():
        print(f"| {name} | {params:,} | {100 * val:.2f}% | {100 * test:.2f}% | "
              f"{', '.join(f'{100 * t:.2f}' for t in each)} |")


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
