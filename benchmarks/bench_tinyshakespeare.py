"""tinyshakespeare (nanoGPT split: first 90% train, last 10% validation), rnnkit against a plain PyTorch script
with the same model (embedding 128 → nn.LSTM 2x512, dropout 0.2 → linear; Adam 2e-3; batch 64 x 128 steps;
state carried).

``--mode throughput``: training characters per second of both, timed alternately in one process (the ratio
is what the target ≥ 0.97x refers to). ``--mode train --budget 30``: each trained for the same wall-clock
budget with evaluations along the way; best validation loss in nats/char, and a sample from rnnkit's model.
``--config examples/tinyshakespeare_30min.toml`` trains rnnkit with that recipe (its own time limit is
replaced by ``--budget``) instead of the script's settings; ``--skip-plain`` leaves the plain script out.

Usage: ``python benchmarks/bench_tinyshakespeare.py --mode throughput``
       ``python benchmarks/bench_tinyshakespeare.py --mode train --budget 30``
       ``python benchmarks/bench_tinyshakespeare.py --mode train --budget 30 --skip-plain \
             --config examples/tinyshakespeare_30min.toml [--precision bf16] [--set model.dropout=0.5 ...]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_cells import _maybe_reexec, time_alternately
from torch import nn
from torch.nn import functional as F

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"


class PlainCharLSTM(nn.Module):
    """The reference script's model, written directly against torch.nn."""

    def __init__(self, vocab: int):
        super().__init__()
        self.emb = nn.Embedding(vocab, 128)
        self.lstm = nn.LSTM(128, 512, num_layers=2, dropout=0.2, batch_first=True)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(512, vocab)

    def forward(self, x, state=None):
        h, state = self.lstm(self.drop(self.emb(x)), state)
        return self.head(self.drop(h)), state


def rnnkit_config(path: str, budget: float = 0.0, steps: int = 1_000_000, recipe: str | None = None,
                  precision: str = "fp32", overrides: dict | None = None):
    from rnnkit.config import build_config, load_toml

    if recipe:
        return build_config(load_toml(recipe), {**(overrides or {}), "data.path": path,
                                                "train.time_limit": str(budget), "train.precision": precision})
    return build_config(None, {
        "data.path": path, "data.val_fraction": "0.1", "data.batch_size": "64", "data.seq_length": "128",
        "model.cell": "lstm", "model.embedding_size": "128", "model.hidden_size": "512", "model.num_layers": "2",
        "model.dropout": "0.2", "train.lr": "2e-3", "train.clip_norm": "5", "train.steps": str(steps),
        "train.eval_every": "250", "train.eval_batches": "0", "train.time_limit": str(budget),
        "train.checkpoint_every": "1000", "train.log_every": "50", "train.precision": precision})


def plain_setup(task, seed=0):
    torch.manual_seed(seed)
    model = PlainCharLSTM(len(task.vocab))
    return model, torch.optim.Adam(model.parameters(), lr=2e-3)


def plain_step(model, opt, chunk, state):
    model.train()
    logits, state = model(chunk.inputs, state)
    loss = F.cross_entropy(logits.flatten(0, 1), chunk.targets.flatten())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return tuple(s.detach() for s in state)


@torch.no_grad()
def plain_eval(model, task):
    model.eval()
    total, count, state = 0.0, 0, None
    for chunk in task.val.sequential():
        logits, state = model(chunk.inputs, state)
        n = chunk.targets.numel()
        total += F.cross_entropy(logits.flatten(0, 1), chunk.targets.flatten()).item() * n
        count += n
    return total / count


def throughput(path: str, steps: int, rounds: int) -> None:
    from rnnkit.tasks import CharLMTask
    from rnnkit.training import Trainer

    config = rnnkit_config(path)
    task = CharLMTask(config)
    trainer = Trainer(config, task, Path(tempfile.mkdtemp()) / "run", progress=False)
    model, opt = plain_setup(task)
    plain_state = None

    def plain(i):
        nonlocal plain_state
        plain_state = plain_step(model, opt, task.train.chunk(i), plain_state)

    ours, ref, ratio = time_alternately(lambda i: trainer._update(task.train.chunk(i)), plain, steps, rounds, 64 * 128)
    print("| training, batch 64 x 128, 2x512 LSTM | chars/s (median) |")
    print("|---|---:|")
    print(f"| plain PyTorch script | {ref:,.0f} |")
    print(f"| rnnkit (engine update: TBPTT, clipping, NaN guard) | {ours:,.0f} |")
    print(f"\nrnnkit / plain, measured alternately over {rounds} rounds of {steps} updates: {ratio:.3f}x")


def train(path: str, budget: float, recipe: str | None, skip_plain: bool, run_dir: Path | None,
          precision: str = "fp32", overrides: dict | None = None) -> None:
    from rnnkit.generation import generate
    from rnnkit.tasks import CharLMTask
    from rnnkit.training import Trainer
    from rnnkit.training.checkpoint import load_weights

    config = rnnkit_config(path, budget, recipe=recipe, precision=precision, overrides=overrides)
    task = CharLMTask(config)
    run_dir = run_dir or Path(tempfile.mkdtemp()) / "rnnkit"
    summary = Trainer(config, task, run_dir, progress=False).fit()
    changes = "".join(f", {key}={value}" for key, value in (overrides or {}).items())
    name = ("rnnkit" + (f" ({Path(recipe).name}{changes})" if recipe else "")
            + (f", {precision}" if precision != "fp32" else ""))
    rows = [(name, summary["best_val_loss"], summary["steps"])]
    if not skip_plain:
        model, opt = plain_setup(task)
        best, step, state, start = float("inf"), 0, None, time.perf_counter()
        while time.perf_counter() - start < 60 * budget:
            chunk = task.train.chunk(step)
            state = None if chunk.starts_epoch else state
            state = plain_step(model, opt, chunk, state)
            step += 1
            if step % 250 == 0:
                best = min(best, plain_eval(model, task))
        rows.insert(0, ("plain PyTorch script", min(best, plain_eval(model, task)), step))
    print(f"| {budget:g}-minute budget | best validation loss (nats/char) | updates |")
    print("|---|---:|---:|")
    for name, loss, steps in rows:
        print(f"| {name} | {loss:.4f} | {steps} |")
    model = task.build_model()
    load_weights(model, run_dir / "model.safetensors")  # the best validation weights
    if precision != "fp32":
        from rnnkit.training.trainer import evaluate

        print(f"\nbest weights ({precision} run) scored in fp32: "
              f"{evaluate(model.eval(), task, config.train.eval_batches, precision='fp32')['loss']:.4f} nats/char")
    torch.manual_seed(0)
    ids = generate(model, task.encode("ROMEO:\n"), 400, temperature=0.8, banned=task.banned_ids())[0]
    print(f"\nsample (temperature 0.8, prompt 'ROMEO:\\n'):\n\nROMEO:\n{task.decode(ids)}")
    print(f"\nrun directory: {run_dir}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["throughput", "train"], default="throughput")
    p.add_argument("--data", default=str(DATA), help="tinyshakespeare input.txt")
    p.add_argument("--budget", type=float, default=30.0, help="train mode: minutes per model")
    p.add_argument("--steps", type=int, default=10, help="throughput mode: updates per timed round")
    p.add_argument("--rounds", type=int, default=5, help="throughput mode: timed rounds per side")
    p.add_argument("--config", default=None, help="train mode: rnnkit's recipe as a TOML file")
    p.add_argument("--skip-plain", action="store_true", help="train mode: train rnnkit only")
    p.add_argument("--run-dir", type=Path, default=None, help="train mode: rnnkit's run directory")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"],
                   help="train mode: rnnkit's --train.precision")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="train mode with --config: change one of the recipe's options (model.hidden_size=768)")
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    if args.set and not args.config:
        p.error("--set changes a --config recipe; give --config too")
    if any("=" not in item for item in args.set):
        p.error("--set expects KEY=VALUE, e.g. --set model.dropout=0.5")
    overrides = dict(item.split("=", 1) for item in args.set)
    if args.mode == "throughput":
        throughput(args.data, args.steps, args.rounds)
    else:
        train(args.data, args.budget, args.config, args.skip_plain, args.run_dir, args.precision, overrides)


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
