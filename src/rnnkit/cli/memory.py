"""``rnnkit ntm RUN``: run a trained memory-task model (ntm-copy, ntm-repeat-copy, ntm-recall) on one generated
sequence, print its bit errors and draw what it did: outputs against targets, and for a neural Turing machine where
its heads wrote and read over time."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("ntm", help="show a trained ntm-* run on one generated sequence: bit errors and a PNG of its "
                       "outputs, head weightings and memory", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--length", type=int, default=0, help="sequence length (recall: items); 0: the longest trained")
    p.add_argument("--repeats", type=int, default=0, help="repeat copy: repeats; 0: the most trained")
    p.add_argument("--seed", type=int, default=0, help="which random sequence")
    p.add_argument("--png", help="where to write the picture (default: RUN/ntm-<length>.png)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..plots import plot_memory_trace
    from .train import _load_run

    run_dir = Path(args.run_dir)
    task, model = _load_run(run_dir, {"train.device": "cpu"}, with_data=False)
    if not task.name.startswith("ntm-"):
        raise ValueError(f"{run_dir} is a {task.name} run; rnnkit ntm shows ntm-copy, ntm-repeat-copy and "
                         "ntm-recall runs")
    if args.length < 0 or args.repeats < 0:
        raise ValueError("--length and --repeats must be >= 0 (0: the longest trained)")
    length = args.length or task.lengths[1]
    repeats = args.repeats or task.repeats[1]
    x, y = task.example(length, repeats, args.seed)
    probs, states = model.eval().trace(torch.from_numpy(x)[None])
    logits = torch.logit(probs[0].clamp(1e-7, 1 - 1e-7))
    from ..models.bits import bit_errors

    errors = int(bit_errors(logits[None], torch.from_numpy(y)[None])[0])
    trace = {}
    cell = model.rnn.cells[-1]
    if hasattr(states, "memory") and model.rnn.num_layers == 1:
        R = cell.read_heads
        trace = {"read_weights": states.weights[0, :, 0].T.numpy(), "memory": states.memory[0, -1].numpy()}
        if cell.write_heads:
            trace["write_weights"] = states.weights[0, :, R].T.numpy()
    outputs = probs[0].numpy().copy()
    outputs[~torch.isfinite(torch.from_numpy(y)).all(-1).numpy()] = float("nan")
    what = f"{length} items" if task.generator == "recall" else f"length {length}"
    if task.generator == "repeat-copy":
        what += f", {repeats} repeats"
    png = Path(args.png) if args.png else run_dir / f"ntm-{length}.png"
    plot_memory_trace(x.T, y.T, outputs.T, png, f"{task.generator}, {what}: {errors} bit errors", **trace)
    print(f"{task.generator}, {what}: {errors} bit errors of {int(torch.isfinite(torch.from_numpy(y)).sum())}")
    print(f"wrote {png}")
    return 0
