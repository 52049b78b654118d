"""``rnnkit explain bptt``: measure gradient flow through time and write the plots."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("explain", help="guided diagnostics of the notes' derivations",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("topic", choices=["bptt"], help="bptt: vanishing/exploding gradients through time")
    p.add_argument("--out", default="rnnkit-explain", help="directory for the PNG plots")
    p.add_argument("--hidden-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=40, help="sequence length T")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import explain_bptt

    if args.hidden_size < 1 or args.steps < 2:
        raise ValueError(f"--hidden-size must be >= 1 and --steps >= 2; got {args.hidden_size}, {args.steps}")
    report = explain_bptt(args.out, hidden_size=args.hidden_size, steps=args.steps, seed=args.seed)
    print(report.reading())
    for path in report.plots:
        print(f"wrote {path}")
    return 0
