"""Where a training step of one recurrent layer spends its time: ``torch.profiler`` over forward + backward of
``rnnkit.RNN`` (input size 128) on a (B, T) batch, the operators with the most self time per step, with their input
shapes (the copies and sums around a native kernel show up by shape).

Usage: ``python benchmarks/profile_layer.py --cell gru --shape 64x128x512 --precision bf16 [--layers 1] [--top 15]``
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import torch
from bench_cells import _maybe_reexec


def main() -> None:
    from torch.profiler import profile

    from rnnkit import RNN
    from rnnkit.precision import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--shape", default="64x128x512", help="BxTxH")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--no-malloc-tuning", action="store_true")
    args = parser.parse_args()
    B, T, H = map(int, args.shape.split("x"))
    torch.manual_seed(0)
    extra = {"jordan": {"output_size": H}, "delay": {"delays": (1, 2, 4)}}  # as bench_cells.py builds them
    layer = RNN(128, H, num_layers=args.layers, cell=args.cell, **extra.get(args.cell, {}))
    x = torch.randn(B, T, 128)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext():
            out = layer(x)[0]
        out.float().pow(2).mean().backward()

    for _ in range(3):
        step()
    with profile(record_shapes=True) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events) / args.steps / 1e3
    print(f"{cpu_model()}; torch {torch.__version__}; {args.cell}, {args.layers} layer(s), B x T x H = {args.shape}, "
          f"{args.precision}: {total:.1f} ms of self time per training step under the profiler\n")
    print("| operator | calls per step | ms per step | share | input shapes |\n|---|---:|---:|---:|---|")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:args.top]:
        ms = e.self_cpu_time_total / args.steps / 1e3
        shapes = str(e.input_shapes)[:70]
        print(f"| {e.key} | {e.count / args.steps:g} | {ms:.2f} | {100 * ms / total:.0f}% | {shapes} |")


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
