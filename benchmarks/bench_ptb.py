"""Penn Treebank word-level language models with rnnkit (data: ../shared/data/ptb, Mikolov's split).

``--mode throughput``: training tokens per second of rnnkit's engine against a plain PyTorch script of
Zaremba et al.'s "small" configuration (nn.LSTM 2x200, 20 steps, batch 20, SGD on the loss summed over the
steps, clip 5), timed alternately in one process.

``--mode train --config examples/ptb_small.toml [--set train.time_limit=60 ...]``: train with rnnkit on
ptb.train.txt, select on ptb.valid.txt (the best validation weights are kept), then score those weights once
on ptb.test.txt. Prints a table row and writes ``result.json`` into the run directory.

Usage: ``python benchmarks/bench_ptb.py --mode throughput``
       ``python benchmarks/bench_ptb.py --mode train --config examples/ptb_small.toml``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_cells import _maybe_reexec, time_alternately
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ptb"


def ptb_config(data: Path, config: str, settings: list[str]):
    from rnnkit.config import build_config, load_toml

    overrides = {"data.path": str(data / "ptb.train.txt"), "data.val_path": str(data / "ptb.valid.txt")}
    for item in settings:
        key, _, value = item.partition("=")
        overrides[key] = value
    return build_config(load_toml(config), overrides)


class PlainSmallLSTM(nn.Module):
    """The reference configuration written directly against torch.nn (uniform(-0.1, 0.1) initialisation)."""

    def __init__(self, vocab: int, size: int = 200):
        super().__init__()
        self.emb = nn.Embedding(vocab, size)
        self.lstm = nn.LSTM(size, size, num_layers=2, batch_first=True)
        self.head = nn.Linear(size, vocab)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, x, state=None):
        h, state = self.lstm(self.emb(x), state)
        return self.head(h), state


def plain_step(model, opt, chunk, state):
    logits, state = model(chunk.inputs, state)
    # summed over the steps, averaged over the batch (the reference code's loss)
    loss = F.cross_entropy(logits.flatten(0, 1), chunk.targets.flatten(), reduction="sum") / chunk.inputs.shape[0]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return tuple(s.detach() for s in state)


def throughput(data: Path, steps: int, rounds: int) -> None:
    from rnnkit.tasks import WordLMTask
    from rnnkit.training import Trainer

    config = ptb_config(data, str(ROOT / "examples" / "ptb_small.toml"), [])
    task = WordLMTask(config)
    trainer = Trainer(config, task, Path(tempfile.mkdtemp()) / "run", progress=False)
    torch.manual_seed(0)
    model = PlainSmallLSTM(len(task.vocab))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    plain_state = None

    def plain(i):
        nonlocal plain_state
        plain_state = plain_step(model, opt, task.train.chunk(i), plain_state)

    tokens = config.data.batch_size * config.data.seq_length
    ours, ref, ratio = time_alternately(lambda i: trainer._update(task.train.chunk(i)), plain, steps, rounds, tokens)
    print("| training, Zaremba small (2x200 LSTM, batch 20 x 20) | tokens/s (median) |")
    print("|---|---:|")
    print(f"| plain PyTorch script | {ref:,.0f} |")
    print(f"| rnnkit (engine update: TBPTT, clipping, NaN guard) | {ours:,.0f} |")
    print(f"\nrnnkit / plain, measured alternately over {rounds} rounds of {steps} updates: {ratio:.3f}x")


def train(data: Path, config_path: str, settings: list[str], run_dir: Path | None) -> None:
    from rnnkit.tasks import WordLMTask
    from rnnkit.training import Trainer
    from rnnkit.training.checkpoint import load_weights
    from rnnkit.training.trainer import evaluate

    config = ptb_config(data, config_path, settings)
    task = WordLMTask(config)
    run_dir = run_dir or Path(tempfile.mkdtemp()) / "ptb"
    started = time.perf_counter()
    summary = Trainer(config, task, run_dir, progress=False).fit()
    minutes = (time.perf_counter() - started) / 60
    model = task.build_model()
    load_weights(model, run_dir / "model.safetensors")  # the best validation weights
    test_config = ptb_config(data, config_path, [*settings, f"data.val_path={data / 'ptb.test.txt'}"])
    test = evaluate(model, WordLMTask(test_config, task.vocab))
    params = sum(p.numel() for p in model.parameters())
    m = config.model
    result = {"config": Path(config_path).name, "settings": settings, "cell": m.cell, "parameters": params,
              "updates": summary["steps"], "minutes": round(minutes, 1), "stopped": summary["stopped"],
              "best_val_ppl": math.exp(summary["best_val_loss"]), "test_ppl": test["ppl"]}
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    print("| config | cell | parameters | updates | minutes | best valid ppl | test ppl |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print(f"| {result['config']} {' '.join(settings)} | {m.cell} {m.num_layers}x{m.hidden_size} | {params:,} | "
          f"{summary['steps']} | {minutes:.1f} | {result['best_val_ppl']:.1f} | {test['ppl']:.1f} |")
    print(f"\nrun directory: {run_dir}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["throughput", "train"], default="throughput")
    p.add_argument("--data", type=Path, default=DATA, help="directory with ptb.{train,valid,test}.txt")
    p.add_argument("--config", default=str(ROOT / "examples" / "ptb_small.toml"), help="train mode: TOML config")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="train mode: config overrides")
    p.add_argument("--run-dir", type=Path, default=None, help="train mode: where to write the run")
    p.add_argument("--steps", type=int, default=50, help="throughput mode: updates per timed round")
    p.add_argument("--rounds", type=int, default=5, help="throughput mode: timed rounds per side")
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    if args.mode == "throughput":
        throughput(args.data, args.steps, args.rounds)
    else:
        train(args.data, args.config, args.set, args.run_dir)


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
