"""JapaneseVowels (UEA archive; 270 training / 370 test utterances, 12 LPC features, 9 speakers): sequence
classification with rnnkit's classify task.

``--mode select``: every candidate setting trained on a random 80% of the training set and scored on the other
20% (three splits, one per seed): the validation table the final setting is chosen from. The test set is not read.
``--mode test --setting NAME``: that setting trained on the whole training set (best weights by training loss, one
evaluation per epoch) for 5 seeds, each scored once on the test set: mean, min, max.
``--mode throughput``: seconds per epoch of rnnkit's engine and of a plain PyTorch script with the same model
(nn.LSTM(100) on packed sequences, last output, Adam 1e-2, clip 1, batch 27), timed alternately in one process.

Usage: ``python benchmarks/bench_japanese_vowels.py --mode select``
       ``python benchmarks/bench_japanese_vowels.py --mode test --setting bilstm-mean``
       ``python benchmarks/bench_japanese_vowels.py --mode throughput``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_cells import _maybe_reexec
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "japanese_vowels"
TRAIN, TEST = DATA / "JapaneseVowels_TRAIN.ts", DATA / "JapaneseVowels_TEST.ts"

BASE = {"data.task": "classify", "data.batch_size": "27", "model.num_layers": "1", "model.dropout": "0",
        "train.lr": "1e-2", "train.clip_norm": "1", "train.epochs": "100", "train.eval_every": "0",
        "train.checkpoint_every": "100000", "train.log_every": "1000"}
_BI = {"model.bidirectional": "true"}
SETTINGS = {
    "lstm-last": {"model.hidden_size": "100"},  # the plain script's model
    "bilstm-last": {"model.hidden_size": "100", **_BI},
    "bilstm-mean": {"model.hidden_size": "100", **_BI, "model.pooling": "mean"},
    "bilstm-attention": {"model.hidden_size": "100", **_BI, "model.pooling": "attention"},
    "bigru-mean": {"model.hidden_size": "100", **_BI, "model.pooling": "mean", "model.cell": "gru"},
    "bilstm-mean-cosine": {"model.hidden_size": "100", **_BI, "model.pooling": "mean", "train.schedule": "cosine",
                           "model.dropout": "0.3"},
    "lstm-last-cosine": {"model.hidden_size": "100", "train.schedule": "cosine"},
    "lstm-last-noise": {"model.hidden_size": "100", "train.schedule": "cosine", "model.input_noise": "0.2"},
    "bilstm-last-noise": {"model.hidden_size": "100", **_BI, "train.schedule": "cosine", "model.input_noise": "0.2"},
    "lstm-mean-noise": {"model.hidden_size": "100", "model.pooling": "mean", "train.schedule": "cosine",
                        "model.input_noise": "0.2"},
    "gru-last-noise": {"model.hidden_size": "100", "model.cell": "gru", "train.schedule": "cosine",
                       "model.input_noise": "0.2"},
    "lstm-last-noise-200": {"model.hidden_size": "100", "train.schedule": "cosine", "model.input_noise": "0.2",
                            "train.epochs": "200"},
}
_BILSTM_NOISE = {"model.hidden_size": "100", **_BI, "train.schedule": "cosine", "model.input_noise": "0.2"}
SETTINGS.update({
    "bilstm-last-noise0.1": {**_BILSTM_NOISE, "model.input_noise": "0.1"},
    "bilstm-last-noise0.3": {**_BILSTM_NOISE, "model.input_noise": "0.3"},
    "bilstm-last-noise0.4": {**_BILSTM_NOISE, "model.input_noise": "0.4"},
    "bilstm-last-noise0.5": {**_BILSTM_NOISE, "model.input_noise": "0.5"},
    "bilstm-last-noise0.7": {**_BILSTM_NOISE, "model.input_noise": "0.7"},
    "bilstm-last-noise1.0": {**_BILSTM_NOISE, "model.input_noise": "1.0"},
    "bilstm-last-noise1.5": {**_BILSTM_NOISE, "model.input_noise": "1.5"},
    "bilstm-last-noise2.0": {**_BILSTM_NOISE, "model.input_noise": "2.0"},
    "bilstm-last-noise-h64": {**_BILSTM_NOISE, "model.hidden_size": "64"},
    "bilstm-last-noise-dropout": {**_BILSTM_NOISE, "model.dropout": "0.3"},
    "bilstm-attention-noise": {**_BILSTM_NOISE, "model.pooling": "attention"},
})


def run(overrides: dict, test: bool = False) -> dict:
    """Train one setting; returns the validation metrics (select) or the test metrics (test)."""
    from rnnkit.config import build_config
    from rnnkit.tasks import ClassifyTask
    from rnnkit.training import Trainer
    from rnnkit.training.checkpoint import load_weights
    from rnnkit.training.trainer import evaluate

    config = build_config(None, overrides)
    task = ClassifyTask(config)
    run_dir = Path(tempfile.mkdtemp()) / "run"
    summary = Trainer(config, task, run_dir, progress=False).fit()
    if not test:
        return {k[len("best_val_"):]: v for k, v in summary.items() if k.startswith("best_val_")}
    model = task.build_model()
    load_weights(model, run_dir / "model.safetensors")
    return evaluate(model, task, batches=task.file_batches(str(TEST)))


def select(names: list[str], seeds: int) -> None:
    print("| setting (80/20 splits of the training set) | val accuracy (mean of splits) | val loss |")
    print("|---|---:|---:|")
    for name in names:
        results = [run({**BASE, **SETTINGS[name], "data.path": str(TRAIN), "data.val_fraction": "0.2",
                        "train.seed": str(seed)}) for seed in range(seeds)]
        acc = statistics.mean(r["accuracy"] for r in results)
        loss = statistics.mean(r["loss"] for r in results)
        print(f"| {name} | {100 * acc:.2f}% | {loss:.4f} |", flush=True)


def test(name: str, seeds: int) -> None:
    accs = []
    for seed in range(seeds):
        # the whole training set trains; "validation" is the training set itself, so the kept weights are those
        # of the lowest training loss: nothing is chosen on test data
        r = run({**BASE, **SETTINGS[name], "data.path": str(TRAIN), "data.val_path": str(TRAIN),
                 "train.seed": str(seed)}, test=True)
        accs.append(100 * r["accuracy"])
        print(f"seed {seed}: test accuracy {accs[-1]:.2f}%", flush=True)
    print(f"\n| {name} | test accuracy, mean of {seeds} seeds | min | max |\n|---|---:|---:|---:|")
    print(f"| {name} | {statistics.mean(accs):.2f}% | {min(accs):.2f}% | {max(accs):.2f}% |")


class PlainLSTMClassifier(nn.Module):
    """The reference script's model: nn.LSTM over packed sequences, the last output → linear."""

    def __init__(self, features: int, classes: int, hidden: int = 100):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x, lengths):
        _, (h, _) = self.lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return self.head(h[-1])


def throughput(epochs: int, rounds: int) -> None:
    from rnnkit.config import build_config
    from rnnkit.tasks import ClassifyTask
    from rnnkit.training import Trainer

    config = build_config(None, {**BASE, **SETTINGS["lstm-last"], "data.path": str(TRAIN)})
    task = ClassifyTask(config)
    trainer = Trainer(config, task, Path(tempfile.mkdtemp()) / "run", progress=False)
    torch.manual_seed(0)
    plain = PlainLSTMClassifier(task.num_features, len(task.labels))
    opt = torch.optim.Adam(plain.parameters(), lr=1e-2)
    per_epoch = task.train.chunks_per_epoch

    def plain_update(batch):
        lengths = batch.lengths if batch.lengths is not None else torch.full((len(batch.inputs),),
                                                                               batch.inputs.shape[1])
        loss = F.cross_entropy(plain(batch.inputs, lengths), batch.targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(plain.parameters(), 1.0)
        opt.step()

    def epoch_seconds(update, epoch):
        start = time.perf_counter()
        for i in range(per_epoch):
            update(task.train.chunk(epoch * per_epoch + i))
        return time.perf_counter() - start

    ours, ref = [], []
    for r in range(rounds + 1):  # round 0 warms up
        o = sum(epoch_seconds(trainer._update, r * epochs + e) for e in range(epochs)) / epochs
        p = sum(epoch_seconds(plain_update, r * epochs + e) for e in range(epochs)) / epochs
        if r:
            ours.append(o)
            ref.append(p)
    ratio = statistics.median(p / o for o, p in zip(ours, ref))
    print(f"| one epoch ({per_epoch} batches of 27), LSTM(100) | seconds (median of {rounds} rounds) |")
    print("|---|---:|")
    print(f"| plain PyTorch script (packed sequences) | {statistics.median(ref):.4f} |")
    print(f"| rnnkit (engine update: lengths, clipping, NaN guard) | {statistics.median(ours):.4f} |")
    print(f"\nrnnkit throughput / plain script's: {ratio:.3f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["select", "test", "throughput"], default="select")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), help="select mode: the candidates")
    p.add_argument("--setting", default="bilstm-mean", help="test mode: the chosen setting")
    p.add_argument("--seeds", type=int, default=0, help="splits (select; default 3) or seeds (test; default 5)")
    p.add_argument("--epochs", type=int, default=5, help="throughput mode: epochs per timed round")
    p.add_argument("--rounds", type=int, default=5, help="throughput mode: timed rounds per side")
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    print(f"CPU: {_cpu()}; torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    if args.mode == "select":
        select(args.settings, args.seeds or 3)
    elif args.mode == "test":
        test(args.setting, args.seeds or 5)
    else:
        throughput(args.epochs, args.rounds)


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
