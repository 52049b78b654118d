"""Stanford Sentiment Treebank with recursive networks (``--data.task tree-classify``): the recursive network, the
RNTN and the binary (constituency) Tree-LSTM, word vectors learned here, trained on every labelled node of the
training trees, the best weights chosen by the dev roots' loss, test scored once per run: sentence-level (root)
accuracy and all-nodes accuracy, fine-grained (5 classes) and binary (neutral nodes unlabelled, neutral
sentences dropped). The sequential LSTM / BiLSTM on the same sentences and budget: ``bench_sst.py``.

``--mode select``: the candidate settings on dev (seed 0); ``--mode test --settings NAME ...``: each setting for
``--seeds`` seeds on the label sets, dev, test and all-nodes test accuracy of each run and the means.
``--mode speed``: training trees per second, level-batched against node-by-node, on the same batches.

Usage: ``python benchmarks/bench_trees_sst.py --mode select``
       ``python benchmarks/bench_trees_sst.py --mode test --settings tree-lstm --seeds 3``
       ``python benchmarks/bench_trees_sst.py --mode speed``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from bench_cells import _maybe_reexec, print_selection, train_best

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst"

BASE = {"data.task": "tree-classify", "data.format": "sst", "data.phrases": "true", "data.lower": "true",
        "data.batch_size": "25", "model.composition": "nary-lstm", "model.embedding_size": "300",
        "model.hidden_size": "150", "model.dropout": "0.5", "train.lr": "2e-3", "train.clip_norm": "5",
        "train.steps": "1000000", "train.eval_every": "200", "train.checkpoint_every": "1000000",
        "train.log_every": "100", "train.schedule": "cosine"}
SETTINGS = {
    "tree-lstm": {},
    "tree-lstm-drop0.3": {"model.dropout": "0.3"},
    **{f"{name}{suffix}": {"model.composition": name, "model.embedding_size": "30", "model.hidden_size": "30",
                           "model.dropout": "0.0", "train.weight_decay": "1e-5", **extra}
       for name in ("rntn", "tree-rnn")
       for suffix, extra in (("", {}), ("-wd1e-4", {"train.weight_decay": "1e-4"}),
                             ("-drop0.2", {"model.dropout": "0.2"}))},
}
# the chosen settings with the weights picked by dev accuracy instead of dev loss
SETTINGS.update({f"{name}-by-accuracy": {**SETTINGS[name], "train.monitor": "accuracy"}
                 for name in ("tree-lstm-drop0.3", "rntn-drop0.2")})


def run(setting: str, labels: str, seed: int, budget: float, test: bool) -> dict:
    from rnnkit.training.trainer import evaluate

    overrides = {**BASE, **SETTINGS[setting], "data.sst_labels": labels, "train.seed": str(seed),
                 "data.path": str(DATA / "train.txt"), "data.val_path": str(DATA / "dev.txt"),
                 "train.time_limit": str(budget)}
    task, model, summary, seconds = train_best(overrides, Path(tempfile.mkdtemp()) / "run")
    out = {"dev": summary["best_val_accuracy"], "steps": summary["steps"], "minutes": seconds / 60}
    if test:
        scores = evaluate(model, task, batches=task.file_batches(str(DATA / "test.txt")), collector=task.collector())
        out["test"], out["test_nodes"] = scores["accuracy"], scores["node_accuracy"]
    return out


def speed(batches: int, rounds: int, hidden: int) -> None:
    """Forward + backward + Adam step of the Tree-LSTM classifier on SST training batches of 25 trees: level
    batching against one composition per node (the same model, the same batches), timed alternately."""
    from bench_cells import time_alternately

    from rnnkit.config import build_config
    from rnnkit.tasks import TASKS

    config = build_config(None, {**BASE, "data.path": str(DATA / "train.txt"), "data.val_path": str(DATA / "dev.txt"),
                                 "model.hidden_size": str(hidden)})
    task = TASKS["tree-classify"](config)
    model = task.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = [task.train.chunk(i) for i in range(batches * (rounds + 1))]

    def step(node_by_node: bool):
        def fn(i: int):
            model.node_by_node = node_by_node
            b = data[i % len(data)]
            optimizer.zero_grad()
            model(b.inputs, b.targets, None, **b.model_inputs()).loss.backward()
            optimizer.step()
        return fn

    trees = config.data.batch_size
    ours, ref, ratio = time_alternately(step(False), step(True), batches, rounds, trees)
    epoch = len(task.train) / ours
    print(f"| Tree-LSTM {hidden}, batches of {trees} trees | level-batched | node-by-node | speed-up |\n"
          "|---|---:|---:|---:|")
    print(f"| training trees per second (median of {rounds} rounds of {batches} batches) | {ours:,.0f} | {ref:,.0f} | "
          f"**{ratio:.1f}x** |")
    print(f"\none epoch of the {len(task.train):,} training trees, level-batched: {epoch:.0f} s "
          f"({epoch * ratio / 60:.0f} min node-by-node)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["select", "test", "speed"], default="select")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS))
    p.add_argument("--labels", nargs="+", default=["fine", "binary"], choices=["fine", "binary"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="test mode: seeds first-seed … first-seed + seeds − 1 "
                   "(to spread the seeds over processes)")
    p.add_argument("--budget", type=float, default=8.0, help="minutes of training per run")
    p.add_argument("--batches", type=int, default=10, help="speed mode: batches per round")
    p.add_argument("--rounds", type=int, default=3, help="speed mode: timed rounds")
    p.add_argument("--hidden", type=int, default=150, help="speed mode: Tree-LSTM hidden size")
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    if args.mode == "speed":
        speed(args.batches, args.rounds, args.hidden)
        return
    print(f"{args.budget:g} minutes a run\n")
    if args.mode == "select":
        print_selection(run, args.settings, args.labels, args.budget)
        return
    print("| setting | labels | seed | dev | test (roots) | test (all nodes) | updates |\n"
          "|---|---|---:|---:|---:|---:|---:|")
    means = {}
    for name in args.settings:
        for labels in args.labels:
            rows = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                r = run(name, labels, seed, args.budget, test=True)
                rows.append(r)
                print(f"| {name} | {labels} | {seed} | {100 * r['dev']:.2f}% | {100 * r['test']:.2f}% | "
                      f"{100 * r['test_nodes']:.2f}% | {r['steps']} |", flush=True)
            means[name, labels] = [statistics.mean(r[k] for r in rows) for k in ("dev", "test", "test_nodes")]
    for (name, labels), (dev, test, nodes) in means.items():
        print(f"\n{name} {labels}: mean of {args.seeds} seeds: dev {100 * dev:.2f}%, test {100 * test:.2f}%, "
              f"all nodes {100 * nodes:.2f}%")


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
