"""Neural Turing machine benchmarks (Graves et al. 2014 §4): copy, generalisation to longer sequences, associative
recall, repeat copy, and training speed against pytorch-ntm.

Every run trains through rnnkit's Trainer with the settings a user would pass to ``rnnkit train --data.task
ntm-copy --model.cell ntm ...`` (LSTM(100) controller, 128×20 memory, one read and one write head, shifts −1..1,
Adam with a cosine schedule over the budget, gradient norm clipped at 1, batches of 8), keeps the weights with the
best validation loss (256 generated sequences) and scores a test set drawn with another seed (1,000 sequences)
once. The recipe (``--lr 3e-2 --schedule cosine --clip 1``) was chosen on the validation sequences of the copy
sweep. Results go to ``--out`` as one JSON file per run; ``report`` prints the tables of docs/memory.md from them.

* ``copy --lrs 1e-3 3e-3 1e-2 3e-2 --seeds 0 1 2 [--schedule none --clip 10]``: per (learning rate, seed), the
  training sequences until the first validation with 0 bit errors, test bit errors per sequence on lengths 1-20,
  minutes. Budget ``--sequences`` (10,000) and ``--minutes`` (5).
* ``init``: the start state: heads on location 0 or softmax(learned) (Collier & Beel), memory constant 10^-6 or
  random; sequences to 0 validation bit errors and test bit errors, same budget.
* ``generalise``: the copy NTM against an LSTM of about the same parameter count (1×128), same data and budget,
  and with ``--lstm-budgets`` times the budget (1 and 4), at each of ``--lstm-lrs``; bit errors per sequence at
  lengths 10, 20, 40, 60, 80, 120.
* ``recall``: associative recall trained on 2-6 items, tested on 2 ... 12 items.
* ``repeat-copy``: trained on lengths 1-10 and 1-10 repeats, tested on unseen repeat counts and lengths.
* ``speed [--pytorch-ntm DIR]``: training sequences per second at batch 1 and 16 on copy sequences of lengths 1-20,
  alternately with pytorch-ntm (loudinthecloud; its ``ntm`` package in DIR, same sizes, its RMSprop step) when given.
* ``figures RUN``: the head weightings of a trained copy run at length 30 and 60, and learning curves of the runs in
  ``--out``.

Usage: ``python benchmarks/bench_ntm.py copy --lrs 1e-2 --seeds 0 1 2 --threads 1``
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import torch
from bench_cells import _maybe_reexec, time_alternately, train_best

DOCS = Path(__file__).resolve().parents[1] / "docs"
OUT = Path(__file__).resolve().parents[1] / "runs" / "bench_ntm"

NTM = {"model.cell": "ntm", "model.hidden_size": "100", "model.num_layers": "1", "model.dropout": "0",
       "model.cell_options": "memory_size = 128, memory_width = 20"}
TRAIN = {"data.batch_size": "8", "train.lr": "1e-2", "train.clip_norm": "1", "train.schedule": "cosine",
         "train.eval_every": "50", "train.checkpoint_every": "100000", "train.log_every": "50",
         "data.num_examples": "256"}
TEST_SEED = 1_000_003


def train(overrides: dict, sequences: int, minutes: float, run_dir: Path):
    """Train one setting for ``sequences`` training sequences or ``minutes``; the task, its best weights, the
    trainer's summary, seconds and the validation records."""
    merged = {**TRAIN, **overrides}
    steps = math.ceil(sequences / int(merged["data.batch_size"]))
    task, model, summary, seconds = train_best({**merged, "train.steps": str(steps),
                                                "train.time_limit": str(minutes)}, run_dir)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return task, model, summary, seconds, [r for r in records if r["split"] == "val"]


def test_errors(task, model, lengths: tuple[int, int], repeats: tuple[int, int] = (1, 1), count: int = 1000,
                seed: int = TEST_SEED) -> dict:
    """Bit errors per sequence and share of perfect sequences on ``count`` fresh sequences."""
    from rnnkit.data.algorithmic import draw_examples
    from rnnkit.data.batches import ExampleBatches
    from rnnkit.tasks.memory import BitErrors
    from rnnkit.training.trainer import evaluate

    examples = draw_examples(task.generator, count, seed, lengths, repeats, task.bits)
    batches = ExampleBatches([torch.from_numpy(x) for x, _ in examples], [torch.from_numpy(y) for _, y in examples],
                             min(64, count), target_pad=math.nan)
    metrics = evaluate(model, task, batches=batches, collector=BitErrors())
    return {"bit_errors": metrics["bit_errors"], "exact": metrics["exact"], "n": count}


def first_zero(records: list[dict], batch_size: int):
    """Training sequences at the first validation with 0 bit errors (None if never)."""
    return next((r["step"] * batch_size for r in records if r.get("bit_errors", 1) == 0), None)


def _save(out: Path, name: str, result: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}), flush=True)


def _curve(records, batch_size):
    return [(r["step"] * batch_size, r["bit_errors"]) for r in records]


def _recipe(args) -> dict:
    return {"data.batch_size": str(args.batch), "train.schedule": args.schedule, "train.clip_norm": args.clip}


def run_copy(args) -> None:
    for lr in args.lrs:
        for seed in args.seeds:
            name = f"copy-{args.schedule}-clip{args.clip}-lr{lr}-seed{seed}"
            over = {**NTM, **_recipe(args), "data.task": "ntm-copy", "train.lr": lr, "train.seed": str(seed)}
            task, model, summary, seconds, records = train(over, args.sequences, args.minutes, args.out / name)
            _save(args.out, name, {"task": "copy", "lr": float(lr), "seed": seed, "batch": args.batch,
                                   "schedule": args.schedule, "clip": float(args.clip),
                                   "first_zero_sequences": first_zero(records, args.batch), "minutes": seconds / 60,
                                   "updates": summary["steps"], "test_1_20": test_errors(task, model, (1, 20)),
                                   "curve": _curve(records, args.batch)})


START_STATES = [("first", "constant"), ("first", "random"), ("learned", "constant"), ("learned", "random")]


def run_init(args) -> None:
    for weights, memory in START_STATES:
        for seed in args.seeds:
            name = f"init-{weights}-{memory}-seed{seed}"
            options = f"memory_size = 128, memory_width = 20, initial_weights = '{weights}', memory_init = '{memory}'"
            over = {**NTM, **_recipe(args), "model.cell_options": options, "data.task": "ntm-copy",
                    "train.lr": args.lr, "train.seed": str(seed)}
            task, model, summary, seconds, records = train(over, args.sequences, args.minutes, args.out / name)
            _save(args.out, name, {"task": "init", "initial_weights": weights, "memory_init": memory, "seed": seed,
                                   "lr": float(args.lr), "first_zero_sequences": first_zero(records, args.batch),
                                   "minutes": seconds / 60, "test_1_20": test_errors(task, model, (1, 20)),
                                   "curve": _curve(records, args.batch)})


GENERALISE_LENGTHS = (10, 20, 40, 60, 80, 120)


def run_generalise(args) -> None:
    lstm = {"model.cell": "lstm", "model.hidden_size": "128", "model.num_layers": "1", "model.dropout": "0"}
    runs = [("ntm", NTM, 1, args.lr)] if "ntm" in args.models else []
    if "lstm" in args.models:
        runs += [(f"lstm-{budget}x-lr{lr}", lstm, budget, lr) for budget in args.lstm_budgets for lr in args.lstm_lrs]
    for label, over, budget, lr in runs:
        for seed in args.seeds:
            name = f"generalise-{label}-seed{seed}"
            o = {**over, **_recipe(args), "data.task": "ntm-copy", "train.lr": lr, "train.seed": str(seed)}
            task, model, summary, seconds, records = train(o, args.sequences * budget, args.minutes * budget,
                                                           args.out / name)
            params = sum(p.numel() for p in model.parameters())
            by_length = {L: test_errors(task, model, (L, L), count=200) for L in GENERALISE_LENGTHS}
            _save(args.out, name, {"task": "generalise", "model": label, "seed": seed, "params": params,
                                   "lr": float(lr), "val_bit_errors": summary.get("best_val_bit_errors"),
                                   "minutes": seconds / 60, "sequences": summary["steps"] * args.batch,
                                   "by_length": by_length, "curve": _curve(records, args.batch)})


def _run_generated(args, kind: str, name: str, key: str, cases: dict, count: int) -> None:
    """Train the NTM recipe on the generated task ``kind`` per seed, then score each case ``(lengths[, repeats])``
    of ``cases`` on ``count`` fresh sequences; the scores go under ``key``."""
    for seed in args.seeds:
        run = f"{name}-seed{seed}"
        over = {**NTM, **_recipe(args), "data.task": f"ntm-{kind}", "train.lr": args.lr, "train.seed": str(seed)}
        task, model, summary, seconds, records = train(over, args.sequences, args.minutes, args.out / run)
        scores = {label: test_errors(task, model, *case, count=count) for label, case in cases.items()}
        _save(args.out, run, {"task": kind, "seed": seed, "lr": float(args.lr), "batch": args.batch,
                              "minutes": seconds / 60, "sequences": summary["steps"] * args.batch,
                              "first_zero_sequences": first_zero(records, args.batch), key: scores,
                              "curve": _curve(records, args.batch)})


def run_recall(args) -> None:
    _run_generated(args, "recall", f"recall-b{args.batch}-lr{args.lr}-n{args.sequences}", "by_items",
                   {n: ((n, n),) for n in range(2, 13)}, count=200)


def run_repeat_copy(args) -> None:
    _run_generated(args, "repeat-copy", f"repeat-copy-b{args.batch}-lr{args.lr}", "grid",
                   {f"L{L}-R{R}": ((L, L), (R, R)) for L in (5, 10, 15) for R in (5, 10, 15, 20)}, count=100)


def run_speed(args) -> None:
    """Training sequences/s, rnnkit's NTM against pytorch-ntm's, on the same copy batches (one length per batch,
    since pytorch-ntm takes no padding), alternately in one process."""
    from torch.nn import functional as F

    from rnnkit.data.algorithmic import draw_examples
    from rnnkit.models.bits import BitSequenceModel

    def batch_of(i: int, B: int):
        L = 1 + (i * 7919) % 20  # lengths 1..20, the same sequence of lengths for both
        ex = draw_examples("copy", B, [11, i], (L, L))
        x = torch.stack([torch.from_numpy(a) for a, _ in ex])
        return x, torch.stack([torch.from_numpy(b) for _, b in ex]), L

    results = {"task": "speed", "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": _cpu()}
    for B in args.batches:
        ours = BitSequenceModel(9, 8, 100, 1, cell="ntm", memory_size=128, memory_width=20)
        opt = torch.optim.Adam(ours.parameters(), 1e-4)
        data = [batch_of(i, B) for i in range(args.steps * (args.rounds + 1) * 2)]

        def step_ours(i):
            x, y, _ = data[i % len(data)]
            opt.zero_grad()
            ours(x, y).loss.backward()
            torch.nn.utils.clip_grad_norm_(ours.parameters(), 10)
            opt.step()

        row = {"batch": B}
        if args.pytorch_ntm:
            sys.path.insert(0, str(args.pytorch_ntm))
            from ntm.aio import EncapsulatedNTM

            ref = EncapsulatedNTM(9, 8, 100, 1, 1, 128, 20)
            ref_opt = torch.optim.RMSprop(ref.parameters(), momentum=0.9, alpha=0.95, lr=1e-4)

            def step_ref(i):  # pytorch-ntm's train_batch: read the input, then emit the outputs with no input
                x, y, L = data[i % len(data)]
                xs, ys = x.transpose(0, 1)[:L + 1], y.transpose(0, 1)[L + 1:]
                ref_opt.zero_grad()
                ref.init_sequence(B)
                for t in range(L + 1):
                    ref(xs[t])
                out = torch.stack([ref()[0] for _ in range(L)])
                F.binary_cross_entropy(out, ys).backward()
                for p in ref.parameters():
                    if p.grad is not None:
                        p.grad.data.clamp_(-10, 10)
                ref_opt.step()

            o, r, ratio = time_alternately(step_ours, step_ref, args.steps, args.rounds, B)
            row.update(rnnkit_seq_s=o, pytorch_ntm_seq_s=r, ratio=ratio, rnnkit_ms_per_seq=1000 / o,
                       pytorch_ntm_ms_per_seq=1000 / r)
        else:
            o, _, _ = time_alternately(step_ours, step_ours, args.steps, args.rounds, B)
            row.update(rnnkit_seq_s=o, rnnkit_ms_per_seq=1000 / o)
        results[f"batch{B}"] = row
        print(json.dumps(row), flush=True)
    _save(args.out, "speed", results)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def run_figures(args) -> None:
    """Head weightings of a trained copy run, and learning curves (bit errors against training sequences)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnkit.cli.main import main as cli

    if args.run:
        for length in (30, 60):
            cli(["ntm", str(args.run), "--length", str(length), "--png", str(DOCS / f"ntm_copy_{length}.png")])
    fig, ax = plt.subplots(figsize=(7, 4))
    copies = [json.loads(p.read_text()) for p in sorted(args.out.glob("copy-*.json"))]
    lstms = [json.loads(p.read_text()) for p in sorted(args.out.glob("generalise-lstm-*-seed0.json"))]
    best_lstm = {}  # per budget, the learning rate best on validation
    for r in lstms:
        budget = r["model"].split("-")[1]
        if budget not in best_lstm or r["val_bit_errors"] < best_lstm[budget]["val_bit_errors"]:
            best_lstm[budget] = r
    for r in [c for c in copies if c["lr"] == float(args.lr)] + list(best_lstm.values()):
        if not r.get("curve"):
            continue
        seqs, errors = zip(*r["curve"])
        if r.get("task") == "copy":
            label = f"NTM, {r['schedule']} schedule, clip {r['clip']:g}, seed {r['seed']}"
        else:
            label = f"LSTM 1×128, {r['model'].split('-')[1]} budget, lr {r['lr']:g}"
        ax.plot(seqs, errors, "-" if r.get("task") == "copy" and r["schedule"] != "none" else "--", lw=1, label=label)
    ax.set(xlabel="training sequences", ylabel="bit errors per sequence (validation)", yscale="symlog", xscale="log",
           title=f"Copy task, lengths 1-20 (NTM lr {float(args.lr):g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(DOCS / "ntm_copy_curves.png", dpi=110)
    print(f"wrote {DOCS / 'ntm_copy_curves.png'}")


def run_report(args) -> None:
    results = [json.loads(p.read_text()) for p in sorted(args.out.glob("*.json"))]
    copy = [r for r in results if r.get("task") == "copy"]
    if copy:
        print("| schedule | clip | lr | seeds | sequences to 0 validation bit errors (each seed) | median | test bit "
              "errors / seq, lengths 1-20 (each seed) | minutes (median) |\n|---|---|---|---|---|---|---|---|")
        for schedule, clip, lr in sorted({(r["schedule"], r["clip"], r["lr"]) for r in copy}):
            rs = sorted((r for r in copy if (r["schedule"], r["clip"], r["lr"]) == (schedule, clip, lr)),
                        key=lambda r: r["seed"])
            firsts = [r["first_zero_sequences"] for r in rs]
            known = sorted(f if f is not None else math.inf for f in firsts)
            med = known[len(known) // 2]
            each = ", ".join("-" if f is None else f"{f:,}" for f in firsts)
            tests = ", ".join(f"{r['test_1_20']['bit_errors']:.3f}" for r in rs)
            median = "-" if med == math.inf else f"{med:,}"
            print(f"| {schedule} | {clip:g} | {lr:g} | {len(rs)} | {each} | {median} | {tests} | "
                  f"{statistics.median(r['minutes'] for r in rs):.1f} |")
    init = [r for r in results if r.get("task") == "init"]
    if init:
        print("\n| initial weightings | initial memory | seeds at 0 | sequences to 0 validation bit errors (each seed) "
              "| test bit errors / seq (each seed) |\n|---|---|---|---|---|")
        for weights, memory in START_STATES:
            rs = sorted((r for r in init if (r["initial_weights"], r["memory_init"]) == (weights, memory)),
                        key=lambda r: r["seed"])
            if not rs:
                continue
            firsts = [r["first_zero_sequences"] for r in rs]
            each = ", ".join("-" if f is None else f"{f:,}" for f in firsts)
            tests = ", ".join(f"{r['test_1_20']['bit_errors']:.3f}" for r in rs)
            reached = sum(f is not None for f in firsts)
            print(f"| {weights} | {memory} | {reached} of {len(rs)} | {each} | {tests} |")
    gen = [r for r in results if r.get("task") == "generalise"]
    if gen:
        print("\n| model | lr | params | training sequences | validation bit errors | "
              + " | ".join(f"L={L}" for L in GENERALISE_LENGTHS) + " |\n|---|---|---|---|---|"
              + "---|" * len(GENERALISE_LENGTHS))
        for r in gen:
            cells = " | ".join(f"{r['by_length'][str(L)]['bit_errors']:.2f} ({r['by_length'][str(L)]['exact']:.1%})"
                               for L in GENERALISE_LENGTHS)
            val = r.get("val_bit_errors")
            print(f"| {r['model']} (seed {r['seed']}) | {r['lr']:g} | {r['params']:,} | {r['sequences']:,} | "
                  f"{'-' if val is None else f'{val:.2f}'} | {cells} |")
    recall = [r for r in results if r.get("task") == "recall"]
    if recall:
        items = list(recall[0]["by_items"])
        print("\n| batch | lr | training sequences | minutes | " + " | ".join(f"{n} items" for n in items)
              + " |\n|---|---|---|---|" + "---|" * len(items))
        for r in recall:
            cells = " | ".join(f"{v['bit_errors']:.2f}" for v in r["by_items"].values())
            print(f"| {r['batch']} | {r['lr']:g} | {r['sequences']:,} | {r['minutes']:.1f} | {cells} |")
    for r in results:
        if r.get("task") == "repeat-copy":
            lengths = sorted({int(k.split("-")[0][1:]) for k in r["grid"]})
            repeats = sorted({int(k.split("-")[1][1:]) for k in r["grid"]})
            print(f"\nrepeat copy, seed {r['seed']}, lr {r['lr']:g}, batch {r['batch']}: {r['sequences']:,} sequences, "
                  f"{r['minutes']:.1f} min, first 0 validation bit errors at {r['first_zero_sequences']}\n\n"
                  "| length | " + " | ".join(f"R={R}" for R in repeats) + " |\n|---|" + "---|" * len(repeats))
            for L in lengths:
                cells = [r["grid"][f"L{L}-R{R}"] for R in repeats]
                print(f"| L={L} | " + " | ".join(f"{c['bit_errors']:.2f} ({c['exact']:.0%})" for c in cells) + " |")
    speed = next((r for r in results if r.get("task") == "speed"), None)
    if speed:
        print(f"\nspeed ({speed['cpu']}, torch {speed['torch']}, {speed['threads']} threads)\n\n| batch | rnnkit "
              "sequences/s (ms each) | pytorch-ntm sequences/s (ms each) | ratio |\n|---|---|---|---|")
        for k, row in speed.items():
            if k.startswith("batch"):
                ref = (f"{row['pytorch_ntm_seq_s']:.1f} ({row['pytorch_ntm_ms_per_seq']:.1f})"
                       if "pytorch_ntm_seq_s" in row else "-")
                ratio = f"{row['ratio']:.2f}x" if "ratio" in row else "-"
                print(f"| {row['batch']} | {row['rnnkit_seq_s']:.1f} ({row['rnnkit_ms_per_seq']:.1f}) | {ref} | "
                      f"{ratio} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["copy", "init", "generalise", "recall", "repeat-copy", "speed", "figures",
                                    "report"])
    p.add_argument("run", nargs="?", type=Path, help="figures: a trained copy run directory")
    p.add_argument("--lrs", nargs="+", default=["1e-3", "3e-3", "1e-2", "3e-2"])
    p.add_argument("--lr", default="3e-2")
    p.add_argument("--models", nargs="+", default=["ntm", "lstm"], help="generalise: which models")
    p.add_argument("--lstm-lrs", nargs="+", default=["1e-3", "3e-3", "1e-2"], help="generalise: the LSTM's rates "
                   "(its best on validation is reported)")
    p.add_argument("--lstm-budgets", nargs="+", type=int, default=[1, 4], help="generalise: the LSTM's budgets as "
                   "multiples of --sequences and --minutes")
    p.add_argument("--schedule", default="cosine", help="learning-rate schedule over the budget (train.schedule)")
    p.add_argument("--clip", default="1", help="gradient norm clipping (train.clip_norm)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--sequences", type=int, default=10_000, help="training sequences per run")
    p.add_argument("--minutes", type=float, default=5.0, help="and at most this many minutes per run")
    p.add_argument("--batches", nargs="+", type=int, default=[1, 16], help="speed: batch sizes")
    p.add_argument("--steps", type=int, default=10, help="speed: updates per timed round")
    p.add_argument("--rounds", type=int, default=3, help="speed: timed rounds (median)")
    p.add_argument("--pytorch-ntm", type=Path, help="speed: a directory holding pytorch-ntm's ntm package")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    commands = {"copy": run_copy, "init": run_init, "generalise": run_generalise, "recall": run_recall,
                "repeat-copy": run_repeat_copy, "speed": run_speed, "figures": run_figures, "report": run_report}
    commands[args.what](args)


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
