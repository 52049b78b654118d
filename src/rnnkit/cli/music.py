"""``rnnkit music RUN``: piano rolls of held-out music against samples of a trained music run (the RNN with
Bernoulli outputs or the deep Markov model), above its validation curves (for the DMM: the negative ELBO, its KL
and reconstruction parts, and the importance-sampled NLL when it was computed)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("music", help="draw a music run: held-out piano rolls against its samples, and its ELBO / KL "
                       "or NLL curves", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--data.path", dest="path", default="", help="music file with the rolls to show (default: the "
                   "run's data.path)")
    p.add_argument("--part", default="test", choices=("train", "valid", "test"), help="which part of the file")
    p.add_argument("--samples", type=int, default=2, help="sampled rolls to draw")
    p.add_argument("--length", type=int, default=0, help="steps per roll (0: the shown data roll's length)")
    p.add_argument("--seed", type=int, default=0, help="which data roll and which samples")
    p.add_argument("--png", help="where to write the picture (default: RUN/music.png)")
    p.set_defaults(run=run)


CURVES = {"loss": "validation loss (NLL; DMM: −ELBO)", "iw_nll": "importance-sampled NLL", "kl": "KL",
          "reconstruction": "reconstruction −E log p(x|z)"}


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..plots import plot_music
    from ..training.trainer import read_metrics
    from .train import _load_run

    run_dir = Path(args.run_dir)
    task, model = _load_run(run_dir, {"train.device": "cpu"}, with_data=False)
    if task.name != "music":
        raise ValueError(f"{run_dir} is a {task.name} run; rnnkit music shows music runs")
    if args.samples < 1 or args.length < 0:
        raise ValueError("--samples must be >= 1 and --length >= 0")
    path = args.path or task.config.data.path
    rolls = task.rolls(path, args.part)
    roll = rolls[np.random.default_rng(args.seed).integers(len(rolls))]
    length = args.length or len(roll)
    samples, _ = model.eval().sample(args.samples, length, generator=torch.Generator().manual_seed(args.seed))
    panels = [(f"{args.part} data ({Path(path).name})", roll[:length])]
    panels += [(f"sample {i + 1} ({task.config.model.music_model})", s.numpy()) for i, s in enumerate(samples)]
    history = [r for r in read_metrics(run_dir / "metrics.jsonl") if r["split"] == "val"]
    curves = {label: [(r["step"], r[key]) for r in history if key in r] for key, label in CURVES.items()}
    png = Path(args.png) if args.png else run_dir / "music.png"
    plot_music(panels, {k: v for k, v in curves.items() if v}, png, f"{run_dir.name}: piano rolls and validation "
               "curves")
    print(f"wrote {png}")
    return 0
