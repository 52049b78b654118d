"""Tagging on real text: restore the word boundaries of Penn Treebank characters (``ptb.char.*``, where ``_`` marks
a word end). The markers are removed and every character is tagged "a boundary follows" (B) or not (O); the line
ends are given, so only boundaries inside a line are scored. Boundary F1 on the test file, side by side:

* a unidirectional and a bidirectional LSTM tagger (rnnkit's ``tag`` task, ``--data.format segment``), each trained
  for the same wall-clock budget with the best weights chosen on the validation file;
* rnnkit's own n-gram language model (modified Kneser-Ney over characters and markers) as a Viterbi segmenter,
  its order chosen on the validation file.

Usage: ``python benchmarks/bench_ptb_segmentation.py [--budget 8] [--orders 4 5 6 7]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_cells import _maybe_reexec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb"
TRAIN, VALID, TEST = (DATA / f"ptb.char.{s}.txt" for s in ("train", "valid", "test"))


def boundary_counts(actual: list[list[str]], predicted: list[list[bool]]) -> tuple[int, int, int]:
    correct = found = true = 0
    for tags, guess in zip(actual, predicted):
        for t, g in zip(tags, guess):
            b = t == "B"
            correct += b and g
            found += g
            true += b
    return correct, found, true


def ngram_segmenter(orders: list[int], beam: int, max_val_lines: int) -> dict:
    from rnnkit.baselines.ngram import NGramModel
    from rnnkit.data.examples import read_segmentation
    from rnnkit.metrics import f1_from_counts

    def marked(path):  # the training lines with their markers (line-edge markers dropped, as the tagger sees them)
        lines = []
        for line in path.read_text().splitlines():
            symbols = line.split()
            while symbols and symbols[0] == "_":
                symbols.pop(0)
            while symbols and symbols[-1] == "_":
                symbols.pop()
            if symbols:
                lines.append(symbols)
        return lines

    def f1(model, examples):
        guesses = [model.segment(ex.steps, "_", beam) for ex in examples]
        return f1_from_counts(*boundary_counts([ex.label for ex in examples], guesses))

    train = marked(TRAIN)
    val = read_segmentation(VALID, "_")[:max_val_lines]
    scores = {}
    for order in orders:
        start = time.perf_counter()
        model = NGramModel(order, "mkn").fit(train)
        scores[order] = f1(model, val)
        print(f"n-gram order {order}: validation boundary F1 {scores[order]:.4f} on {len(val)} lines "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    best = max(scores, key=scores.get)
    start = time.perf_counter()
    test_f1 = f1(NGramModel(best, "mkn").fit(train), read_segmentation(TEST, "_"))
    return {"name": f"n-gram LM ({best}-gram, modified Kneser-Ney) + Viterbi", "val": scores[best], "test": test_f1,
            "seconds": time.perf_counter() - start}


def tagger(bidirectional: bool, budget: float, hidden: int, layers: int) -> dict:
    from rnnkit.config import build_config
    from rnnkit.tasks import TagTask
    from rnnkit.training import Trainer
    from rnnkit.training.checkpoint import load_weights
    from rnnkit.training.trainer import evaluate

    config = build_config(None, {
        "data.task": "tag", "data.format": "segment", "data.tokenizer": "whitespace", "data.boundary": "_",
        "data.path": str(TRAIN), "data.val_path": str(VALID), "data.batch_size": "32",
        "model.cell": "lstm", "model.embedding_size": "32", "model.hidden_size": str(hidden),
        "model.num_layers": str(layers), "model.dropout": "0.1",
        "model.bidirectional": "true" if bidirectional else "false",
        "train.lr": "3e-3", "train.clip_norm": "5", "train.steps": "1000000", "train.time_limit": str(budget),
        "train.eval_every": "300", "train.checkpoint_every": "1000000", "train.log_every": "100",
        "train.schedule": "cosine"})
    task = TagTask(config)
    run_dir = Path(tempfile.mkdtemp()) / "run"
    summary = Trainer(config, task, run_dir, progress=False).fit()
    model = task.build_model()
    load_weights(model, run_dir / "model.safetensors")
    test = evaluate(model, task, batches=task.file_batches(str(TEST)))
    kind = "bidirectional" if bidirectional else "unidirectional"
    return {"name": f"{kind} LSTM tagger ({layers}x{hidden}, {budget:g} min)", "val": summary["best_val_boundary_f1"],
            "test": test["boundary_f1"], "accuracy": test["accuracy"], "steps": summary["steps"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=8.0, help="minutes of training per tagger")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--orders", type=int, nargs="+", default=[4, 5, 6, 7], help="n-gram orders tried on validation")
    p.add_argument("--beam", type=int, default=8, help="Viterbi histories kept per position")
    p.add_argument("--val-lines", type=int, default=1000, help="validation lines for choosing the n-gram order")
    p.add_argument("--skip", nargs="*", default=[], choices=["ngram", "uni", "bi"])
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    rows = []
    if "ngram" not in args.skip:
        rows.append(ngram_segmenter(args.orders, args.beam, args.val_lines))
    for bidirectional, key in ((False, "uni"), (True, "bi")):
        if key not in args.skip:
            rows.append(tagger(bidirectional, args.budget, args.hidden, args.layers))
            print(rows[-1], flush=True)
    print("\n| model | validation boundary F1 | test boundary F1 |\n|---|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['val']:.4f} | {r['test']:.4f} |")


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
