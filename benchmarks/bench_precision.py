"""fp32 against bf16 autocast (``--train.precision``), side by side in one process; the CPU model and its bf16
features are printed with every table.

``--mode throughput``: training updates (forward, backward, Adam) of language models on random tokens, timed
alternately in fp32 and bf16: the 2×512 char LSTM of tinyshakespeare (vocabulary 65, batch 64 × 128), the PTB
recipe's tied 2×400 LSTM (10,000 words, 32 × 35), a 2×512 GRU and two custom cells (MUT1, peephole LSTM; 1×512).

``--mode quality``: the tinyshakespeare char model (the bench_tinyshakespeare.py settings) and the PTB recipe trained
for ``--updates`` updates each in fp32 and in bf16 from the same seed; validation loss (nats/char) and perplexity.
Then generation from the fp32 char model: chars/s at batch 1 and 64 in both precisions, and the total-variation
distance between the fp32 and bf16 next-character distributions on 2,000 held-out characters (teacher-forced).

``--mode optimizer``: one optimizer step on the PTB recipe's model, torch's per-parameter loop against the fused
implementation rnnkit's Trainer takes.

``--mode loss``: the cross-entropy's forward and backward at the PTB recipe's shape (32 × 35 rows, 10,000 words) and
the char model's (64 × 128 rows, 65 characters), fp32 and bf16 logits: torch's F.cross_entropy against rnnkit's
(``rnnkit.models.output.cross_entropy``, one native pass). ``--torch-loss`` makes the throughput mode's models use
torch's, for the before/after of the whole update.

``--mode lstm-kernel``: a 2-layer LSTM's training step (forward + backward) under bf16 autocast at the PTB recipe's
and the char model's shapes, torch's fused kernel (oneDNN, AMX) against rnnkit's native LSTM kernel with bf16 products
(``RNN(..., use_native=False)``), alternately.

Usage: ``python benchmarks/bench_precision.py --mode throughput``
       ``python benchmarks/bench_precision.py --mode quality --updates 300``
       ``python benchmarks/bench_precision.py --mode loss``
       ``python benchmarks/bench_precision.py --mode quality --only ptb --updates 2500 --seed-spread``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from bench_cells import _maybe_reexec, time_alternately

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
PTB = ROOT.parent / "shared" / "data" / "ptb"


def cpu_line() -> str:
    from rnnkit.precision import cpu_bf16_flags, cpu_model

    return (f"CPU: {cpu_model()}; bf16 features: {', '.join(cpu_bf16_flags()) or 'none'}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


ADAM = SimpleNamespace(optimizer="adam", lr=1e-3, weight_decay=0.0, momentum=0.0)


def optimizer_speed(steps: int = 50) -> None:
    """Time of one optimizer step on the PTB recipe's model (tied 2×400 LSTM, 10,000 words): torch's per-parameter
    loop (its CPU default) against the fused implementation rnnkit's Trainer takes (``build_optimizer``)."""
    from rnnkit.models import LanguageModel

    print(cpu_line())
    print("\n| optimizer, PTB recipe's model | per-parameter loop, torch's CPU default (ms) | fused, rnnkit's Trainer "
          "(ms) | speed-up |\n|---|---:|---:|---:|")
    makers = {"Adam": lambda ps, f: torch.optim.Adam(ps, lr=1e-3, fused=f),
              "SGD, momentum 0.9": lambda ps, f: torch.optim.SGD(ps, lr=1.0, momentum=0.9, fused=f),
              "SGD": lambda ps, f: torch.optim.SGD(ps, lr=1.0, fused=f),
              "Adagrad": lambda ps, f: torch.optim.Adagrad(ps, lr=0.1, fused=f)}
    for name, make in makers.items():
        times = []
        for fused in (False, True):
            torch.manual_seed(0)
            model = LanguageModel(10_000, 400, 400, 2, cell="lstm", tie_weights=True)
            for p in model.parameters():
                p.grad = torch.randn_like(p)
            opt = make(list(model.parameters()), fused)
            for _ in range(5):
                opt.step()
            start = time.perf_counter()
            for _ in range(steps):
                opt.step()
            times.append((time.perf_counter() - start) / steps * 1e3)
        print(f"| {name} | {times[0]:.2f} | {times[1]:.2f} | {times[0] / times[1]:.2f}x |", flush=True)


def torch_loss(logits, targets, ignore_index=-100):
    return torch.nn.functional.cross_entropy(logits, targets, ignore_index=ignore_index)


def loss_speed(rounds: int) -> None:
    from rnnkit.models.output import cross_entropy

    print(cpu_line())
    print("\n| loss, forward + backward | logits | torch F.cross_entropy (ms) | rnnkit cross_entropy (ms) | speed-up |"
          "\n|---|---|---:|---:|---:|")
    for name, (N, V) in {"PTB recipe, 32 × 35 rows, 10,000 words": (1120, 10_000),
                         "char model, 64 × 128 rows, 65 characters": (8192, 65)}.items():
        for dtype in (torch.float32, torch.bfloat16):
            torch.manual_seed(0)
            logits = (torch.randn(N, V) * 3).to(dtype)
            targets = torch.randint(0, V, (N,))

            def run(fn):
                def call(i):
                    x = logits.detach().requires_grad_()
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                        loss = fn(x, targets)
                    loss.backward()
                return call

            ours, ref, ratio = time_alternately(run(cross_entropy), run(torch_loss), 10, rounds, 1)
            print(f"| {name} | {'bf16' if dtype == torch.bfloat16 else 'fp32'} | {1e3 / ref:.2f} | {1e3 / ours:.2f} | "
                  f"{ratio:.2f}x |", flush=True)


def lstm_kernel_speed(rounds: int) -> None:
    from rnnkit import RNN

    print(cpu_line())
    print("\n| 2-layer LSTM, bf16 autocast, B × T × H | torch's kernel tokens/s | rnnkit's kernel tokens/s "
          "| rnnkit / torch |\n|---|---:|---:|---:|")
    for B, T, H in ((32, 35, 400), (64, 64, 512), (64, 128, 512)):
        torch.manual_seed(0)
        torch_kernel = RNN(H, H, 2, cell="lstm")
        own_kernel = RNN(H, H, 2, cell="lstm", use_native=False)
        own_kernel.load_state_dict(torch_kernel.state_dict())
        x = torch.randn(B, T, H)

        def run(model):
            def call(i):
                model.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    out, _ = model(x)
                out.float().square().mean().backward()
            return call

        ours, ref, ratio = time_alternately(run(own_kernel), run(torch_kernel), 5, rounds, B * T)
        print(f"| {B} × {T} × {H} | {ref:,.0f} | {ours:,.0f} | {ratio:.2f}x |", flush=True)


def throughput(rounds: int, use_torch_loss: bool = False) -> None:
    from unittest import mock

    from rnnkit.models import LanguageModel
    from rnnkit.precision import autocast
    from rnnkit.training.trainer import build_optimizer

    if use_torch_loss:
        mock.patch("rnnkit.models.language_model.cross_entropy", torch_loss).start()
        print("loss: torch's F.cross_entropy")

    models = {  # name: (vocab, embedding, hidden, layers, cell, options, batch, steps)
        "char LSTM 2×512 (tinyshakespeare)": (65, 128, 512, 2, "lstm", {}, 64, 128),
        "PTB recipe, tied LSTM 2×400": (10_000, 400, 400, 2, "lstm", {"tie_weights": True}, 32, 35),
        "char GRU 2×512": (65, 128, 512, 2, "gru", {}, 64, 128),
        "char MUT1 1×512": (65, 128, 512, 1, "mut1", {}, 64, 128),
        "char peephole LSTM 1×512": (65, 128, 512, 1, "peephole-lstm", {}, 64, 128),
    }
    print(cpu_line())
    print("\n| model | fp32 tokens/s | bf16 tokens/s | bf16 / fp32 |\n|---|---:|---:|---:|")
    for name, (V, E, H, L, cell, options, B, T) in models.items():
        torch.manual_seed(0)
        model = LanguageModel(V, E, H, L, cell=cell, **options)
        opt = build_optimizer(model.parameters(), ADAM)  # as rnnkit's Trainer builds it
        data = [torch.randint(0, V, (B, T + 1)) for _ in range(4)]

        def step(precision):
            def run(i):
                x = data[i % len(data)]
                opt.zero_grad(set_to_none=True)
                with autocast(precision, "cpu"):
                    out = model(x[:, :-1], x[:, 1:])
                out.loss.float().backward()
                opt.step()
            return run

        fp32, bf16, ratio = time_alternately(step("fp32"), step("bf16"), 2, rounds, B * T)
        print(f"| {name} | {fp32:,.0f} | {bf16:,.0f} | {1 / ratio:.2f}x |", flush=True)


def train(overrides: dict, precision: str, updates: int):
    from rnnkit.config import build_config, load_toml
    from rnnkit.tasks import TASKS
    from rnnkit.training import Trainer
    from rnnkit.training.trainer import evaluate

    recipe = overrides.pop("recipe", None)
    config = build_config(load_toml(recipe) if recipe else None,
                          {**overrides, "train.precision": precision, "train.steps": str(updates),
                           "train.time_limit": "0", "train.eval_every": str(updates),
                           "train.checkpoint_every": str(updates), "train.schedule": "none"})
    task = TASKS[config.data.task](config)
    trainer = Trainer(config, task, Path(tempfile.mkdtemp()) / "run", progress=False)
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    model = trainer.module.eval()
    loss = evaluate(model, task, config.train.eval_batches, precision=trainer.precision)["loss"]
    return task, model, loss, seconds


def quality(updates: int, only: str | None = None, seed_spread: bool = False) -> None:
    from rnnkit.generation import generate
    from rnnkit.precision import autocast

    print(cpu_line())
    char = {"data.path": str(SHAKESPEARE), "data.val_fraction": "0.1", "data.batch_size": "64",
            "data.seq_length": "128", "model.cell": "lstm", "model.embedding_size": "128",
            "model.hidden_size": "512", "model.num_layers": "2", "model.dropout": "0.2", "train.lr": "2e-3",
            "train.clip_norm": "5", "train.eval_batches": "0"}
    ptb = {"recipe": str(ROOT / "examples" / "ptb_recipe.toml"), "data.path": str(PTB / "ptb.train.txt"),
           "data.val_path": str(PTB / "ptb.valid.txt"), "train.eval_batches": "0"}
    print(f"\n| {updates} updates, same seed | fp32 | bf16 | bf16 − fp32 | time fp32 / bf16 |")
    print("|---|---:|---:|---:|---:|")
    results, spread = {}, []
    models = {"char": ("tinyshakespeare char LSTM 2×512, validation nats/char", char),
              "ptb": ("PTB recipe, validation perplexity", ptb)}

    def difference(name, a, b):
        if "perplexity" in name:
            a, b = 2.718281828 ** a, 2.718281828 ** b
            return a, b, f"{100 * (b - a) / a:+.2f}%"
        return a, b, f"{b - a:+.4f}"

    for key, (name, overrides) in models.items():
        if only and key != only:
            continue
        runs = {p: train(dict(overrides), p, updates) for p in ("fp32", "bf16")}
        results[name] = runs
        a, b, diff = difference(name, runs["fp32"][2], runs["bf16"][2])
        print(f"| {name} | {a:.4f} | {b:.4f} | {diff} | {runs['fp32'][3] / runs['bf16'][3]:.2f}x |", flush=True)
        if seed_spread:  # the same model in fp32 from another seed: how far apart two fp32 runs end
            other = train({**overrides, "train.seed": "1"}, "fp32", updates)[2]
            spread.append((name, *difference(name, runs["fp32"][2], other)))
    for name, a, b, diff in spread:
        print(f"\nfp32 seed 0 against fp32 seed 1, {name}: {a:.4f} vs {b:.4f} ({diff})")
    if "tinyshakespeare char LSTM 2×512, validation nats/char" not in results:
        return

    task, model, _, _ = results["tinyshakespeare char LSTM 2×512, validation nats/char"]["fp32"]
    text = task.encode(SHAKESPEARE.read_text()[-2001:])
    with torch.no_grad():
        probs = {}
        for p in ("fp32", "bf16"):
            with autocast(p, "cpu"):
                probs[p] = model(text[None, :-1]).prediction.float().softmax(-1)[0]
        tv = 0.5 * (probs["fp32"] - probs["bf16"]).abs().sum(-1)
    print(f"\nTotal-variation distance of the next-character distributions, fp32 vs bf16, on the last 2,000 "
          f"characters: mean {float(tv.mean()):.4f}, max {float(tv.max()):.4f}")
    print("\n| generation, 300 characters | fp32 chars/s | bf16 chars/s | bf16 / fp32 |\n|---|---:|---:|---:|")
    prompt = text[:1]
    for batch in (1, 64):
        speeds = []
        for p in ("fp32", "bf16"):
            def run(p=p):
                with autocast(p, "cpu"):
                    generate(model, prompt, 300, num_samples=batch)
            run()
            times = []
            for _ in range(3):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            speeds.append(batch * 300 / statistics.median(times))
        print(f"| batch {batch} | {speeds[0]:,.0f} | {speeds[1]:,.0f} | {speeds[1] / speeds[0]:.2f}x |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["throughput", "quality", "optimizer", "loss", "lstm-kernel"],
                   default="throughput")
    p.add_argument("--torch-loss", action="store_true", help="throughput mode: the models use torch's cross-entropy")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--updates", type=int, default=300)
    p.add_argument("--only", choices=["char", "ptb"], default=None, help="quality mode: one of the two models")
    p.add_argument("--seed-spread", action="store_true",
                   help="quality mode: also train each model in fp32 from seed 1 (the gap between two fp32 runs)")
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    if args.mode == "throughput":
        throughput(args.rounds, args.torch_loss)
    elif args.mode == "loss":
        loss_speed(args.rounds)
    elif args.mode == "lstm-kernel":
        lstm_kernel_speed(args.rounds)
    elif args.mode == "optimizer":
        optimizer_speed()
    else:
        quality(args.updates, args.only, args.seed_spread)


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
