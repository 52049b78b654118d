"""Stanford Sentiment Treebank, sentence level (roots only at evaluation; fine-grained 5 classes and binary):
LSTM and BiLSTM classifiers with embeddings learned here (no pretrained vectors offline), trained with rnnkit's
classify task on the SST trees (``--data.format sst``), every labelled phrase of the training trees as an
example (``--data.phrases true``), the best weights chosen on the dev sentences; test scored once per run.

``--mode select``: the candidate settings on dev (one seed); ``--mode test --setting NAME``: that setting for
``--seeds`` seeds on both label sets, dev and test accuracy of each, and the mean.

Usage: ``python benchmarks/bench_sst.py --mode select``
       ``python benchmarks/bench_sst.py --mode test --setting bilstm --seeds 3``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_cells import _maybe_reexec, print_selection

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst"

BASE = {"data.task": "classify", "data.format": "sst", "data.phrases": "true", "data.lower": "true",
        "data.batch_size": "64", "model.embedding_size": "300", "model.num_layers": "1", "model.dropout": "0.5",
        "model.hidden_size": "168", "train.lr": "2e-3", "train.clip_norm": "5", "train.weight_decay": "0",
        "train.steps": "1000000", "train.eval_every": "500", "train.checkpoint_every": "1000000",
        "train.log_every": "200", "train.schedule": "cosine"}
SETTINGS = {
    "lstm": {},
    "bilstm": {"model.bidirectional": "true", "model.hidden_size": "150"},
    "bilstm-max": {"model.bidirectional": "true", "model.hidden_size": "150", "model.pooling": "max"},
    "bilstm-sentences": {"model.bidirectional": "true", "model.hidden_size": "150", "data.phrases": "false",
                         "data.batch_size": "25", "train.eval_every": "100"},
}


def run(setting: str, labels: str, seed: int, budget: float, test: bool) -> dict:
    from rnnkit.config import build_config
    from rnnkit.tasks import ClassifyTask
    from rnnkit.training import Trainer
    from rnnkit.training.checkpoint import load_weights
    from rnnkit.training.trainer import evaluate

    config = build_config(None, {**BASE, **SETTINGS[setting], "data.sst_labels": labels, "train.seed": str(seed),
                                 "data.path": str(DATA / "train.txt"), "data.val_path": str(DATA / "dev.txt"),
                                 "train.time_limit": str(budget)})
    task = ClassifyTask(config)
    run_dir = Path(tempfile.mkdtemp()) / "run"
    start = time.perf_counter()
    summary = Trainer(config, task, run_dir, progress=False).fit()
    minutes = (time.perf_counter() - start) / 60
    out = {"dev": summary["best_val_accuracy"], "steps": summary["steps"], "minutes": minutes}
    if test:
        model = task.build_model()
        load_weights(model, run_dir / "model.safetensors")
        out["test"] = evaluate(model, task, batches=task.file_batches(str(DATA / "test.txt")))["accuracy"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["select", "test"], default="select")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), help="select mode: the candidates")
    p.add_argument("--setting", default="bilstm", help="test mode: the chosen setting")
    p.add_argument("--labels", nargs="+", default=["fine", "binary"], choices=["fine", "binary"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budget", type=float, default=10.0, help="minutes of training per run")
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.budget:g} minutes a run\n")
    if args.mode == "select":
        print_selection(run, args.settings, args.labels, args.budget)
        return
    print("| setting | labels | seed | dev accuracy | test accuracy | minutes |\n|---|---|---:|---:|---:|---:|")
    means = {}
    for labels in args.labels:
        rows = [run(args.setting, labels, seed, args.budget, test=True) for seed in range(args.seeds)]
        for seed, r in enumerate(rows):
            print(f"| {args.setting} | {labels} | {seed} | {100 * r['dev']:.2f}% | {100 * r['test']:.2f}% | "
                  f"{r['minutes']:.1f} |", flush=True)
        means[labels] = (statistics.mean(r["dev"] for r in rows), statistics.mean(r["test"] for r in rows))
    for labels, (dev, test) in means.items():
        print(f"\n{args.setting} {labels}: mean of {args.seeds} seeds: dev {100 * dev:.2f}%, test {100 * test:.2f}%")


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
