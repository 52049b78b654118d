"""Layer normalisation and zoneout on Penn Treebank characters (data: ../shared/data/ptb, ptb.char.*.txt), against
the plain LSTM and GRU with the same everything else.

``--mode train``: each variant trained for the same number of updates (one layer, embedding 64, batch 32 x 100
steps with the state carried, Adam 2e-3, clip 1), validation every ``--eval-every`` updates on ptb.char.valid.txt
(every character once); the table gives the best validation bits per character and the minutes each took, and
``curves.png`` the validation curves. The variant with the best validation bpc is then scored once on
ptb.char.test.txt.

``--mode throughput``: training characters per second of each variant against the plain LSTM, timed alternately in
one process (torch's fused LSTM kernel; a zoned-out or layer-normalised stack runs rnnkit's Python loop).

Usage: ``python benchmarks/bench_layernorm_zoneout.py --mode throughput``
       ``python benchmarks/bench_layernorm_zoneout.py --mode train --updates 3000 [--variants lstm ln-lstm]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from bench_cells import _maybe_reexec, time_alternately

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ptb"

#: name -> the options that make the variant (everything else is shared)
VARIANTS = {
    "lstm": {"model.cell": "lstm"},
    "lstm-zoneout": {"model.cell": "lstm", "model.zoneout": "0.05,0.5"},  # z_h, z_c: Krueger et al.'s char-PTB
    "ln-lstm": {"model.cell": "layernorm-lstm"},
    "ln-lstm-zoneout": {"model.cell": "layernorm-lstm", "model.zoneout": "0.05,0.5"},
    "gru": {"model.cell": "gru"},
    "ln-gru": {"model.cell": "layernorm-gru"},
}


def config_for(variant: str, data: Path, hidden: int, updates: int, eval_every: int, val_file: str = "valid"):
    from rnnkit.config import build_config

    return build_config(None, {
        "data.task": "word-lm", "data.path": str(data / "ptb.char.train.txt"),  # the symbols: c, o, _, <unk>
        "data.val_path": str(data / f"ptb.char.{val_file}.txt"), "data.tokenizer": "whitespace",
        "data.batch_size": "32", "data.seq_length": "100",
        "model.embedding_size": "64", "model.hidden_size": str(hidden), "model.num_layers": "1",
        "model.dropout": "0", "train.lr": "2e-3", "train.clip_norm": "1", "train.steps": str(updates),
        "train.eval_every": str(eval_every), "train.eval_batches": "0", "train.checkpoint_every": str(eval_every),
        "train.log_every": "100", **VARIANTS[variant]})


def bits(nats: float) -> float:
    return nats / math.log(2)


def train(data: Path, variants: list[str], hidden: int, updates: int, eval_every: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnkit.data.vocab import Vocabulary
    from rnnkit.precision import cpu_model
    from rnnkit.tasks import WordLMTask
    from rnnkit.training import Trainer
    from rnnkit.training.checkpoint import load_weights
    from rnnkit.training.trainer import evaluate

    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for variant in variants:
        config = config_for(variant, data, hidden, updates, eval_every)
        task = WordLMTask(config)
        run_dir = out / variant
        started = time.perf_counter()
        summary = Trainer(config, task, run_dir, progress=False).fit()
        minutes = (time.perf_counter() - started) / 60
        evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        curves[variant] = [(e["step"], bits(e["loss"])) for e in evals if e.get("split") == "val"]
        rows.append((variant, bits(summary["best_val_loss"]), summary["steps"], minutes))
        print(f"{variant}: best validation {rows[-1][1]:.4f} bpc after {summary['steps']} updates, "
              f"{minutes:.1f} min", flush=True)
    print(f"\n{cpu_model()}; PTB characters, 1 layer x {hidden}, batch 32 x 100, {updates} updates each\n")
    print("| variant | options | best validation bpc | updates | minutes |\n|---|---|---:|---:|---:|")
    for variant, bpc, steps, minutes in rows:
        options = ", ".join(f"`{k}={v}`" for k, v in VARIANTS[variant].items())
        print(f"| {variant} | {options} | {bpc:.4f} | {steps} | {minutes:.1f} |")
    best = min(rows, key=lambda r: r[1])[0]
    config = config_for(best, data, hidden, updates, eval_every, val_file="test")
    task = WordLMTask(config, Vocabulary.load(out / best / "vocab.json"))  # the run's own vocabulary
    model = task.build_model()
    load_weights(model, out / best / "model.safetensors")  # its best validation weights
    test = evaluate(model.eval(), task, 0)
    print(f"\nchosen on validation: {best}; ptb.char.test.txt, scored once: {bits(test['loss']):.4f} bpc")
    fig, ax = plt.subplots(figsize=(7, 4))
    for variant, points in curves.items():
        ax.plot(*zip(*points), marker=".", label=variant)
    ax.set(xlabel="update", ylabel="validation bits per character", title=f"PTB characters, 1 x {hidden}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    print(f"curves: {out / 'curves.png'}")


def throughput(data: Path, variants: list[str], hidden: int, steps: int, rounds: int) -> None:
    from rnnkit.precision import cpu_model
    from rnnkit.tasks import WordLMTask
    from rnnkit.training import Trainer

    def trainer(variant):
        config = config_for(variant, data, hidden, 10**6, 10**6)
        task = WordLMTask(config)
        return task, Trainer(config, task, Path(tempfile.mkdtemp()) / variant, progress=False)

    base_task, base = trainer("lstm")
    print(f"{cpu_model()}; PTB characters, 1 layer x {hidden}, batch 32 x 100; training characters per second "
          f"(median of {rounds} rounds of {steps} updates, each variant alternated with the plain LSTM)\n")
    print("| variant | chars/s | plain LSTM chars/s | ratio |\n|---|---:|---:|---:|")
    for variant in variants:
        if variant == "lstm":
            continue
        task, other = trainer(variant)
        ours, ref, ratio = time_alternately(lambda i: other._update(task.train.chunk(i)),
                                            lambda i: base._update(base_task.train.chunk(i)), steps, rounds, 32 * 100)
        print(f"| {variant} | {ours:,.0f} | {ref:,.0f} | {ratio:.2f}x |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["train", "throughput"], default="throughput")
    p.add_argument("--data", type=Path, default=DATA, help="directory with ptb.char.{train,valid,test}.txt")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--updates", type=int, default=3000, help="train mode: updates per variant")
    p.add_argument("--eval-every", type=int, default=500, help="train mode")
    p.add_argument("--out", type=Path, default=None, help="train mode: directory for the runs and curves.png")
    p.add_argument("--steps", type=int, default=5, help="throughput mode: updates per timed round")
    p.add_argument("--rounds", type=int, default=3, help="throughput mode: timed rounds")
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    if args.mode == "train":
        train(args.data, args.variants, args.hidden, args.updates, args.eval_every,
              args.out or Path(tempfile.mkdtemp()) / "layernorm_zoneout")
    else:
        throughput(args.data, args.variants, args.hidden, args.steps, args.rounds)


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
