"""``rnnkit lab EXPERIMENT``: the long-term dependency lab (:mod:`rnnkit.lab`) from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    from ..lab import VARIANTS

    p = sub.add_parser("lab", help="run a grid of cells × lags on the adding problem, copy memory or pixel digits: "
                       "a solved-or-not table, learning curves and gradient-vs-lag plots (resumable)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("experiment", choices=["adding", "copy", "pixels"])
    p.add_argument("--cells", default="rnn,lstm,gru", help=f"comma-separated variants of {sorted(VARIANTS)}")
    p.add_argument("--T", default="50,100", help="comma-separated lags (adding: length; copy: blank stretch)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--minutes", type=float, default=2.0, help="training budget of each run")
    p.add_argument("--out", default="lab", help="where the grid lives (rerun the same command to continue it)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any option for every run, e.g. --set model.hidden_size=64 --set train.lr=3e-3; "
                        "VARIANT:KEY=VALUE for one variant only (--set lstm:model.hidden_size=40)")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..lab import run_grid

    try:
        lags = [int(t) for t in args.T.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--T must be comma-separated integers; got {args.T!r}") from None
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE (e.g. train.lr=3e-3); got {item!r}")
        overrides[key.strip()] = value.strip()
    if args.seeds < 1 or args.minutes <= 0:
        raise ValueError("--seeds must be >= 1 and --minutes > 0")
    variants = [v.strip() for v in args.cells.split(",") if v.strip()]
    run_grid(args.experiment, variants, lags, args.seeds, Path(args.out), args.minutes, overrides,
             progress=not getattr(args, "quiet", False))
    root = Path(args.out) / args.experiment
    print((root / "results.md").read_text())
    print(f"wrote {root}/results.md, results.jsonl, curves-T*.png, gradients-T*.png")
    return 0
