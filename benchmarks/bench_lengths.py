"""Padded batches with lengths: rnnkit's sequence layer (rows sorted by length, one fused-kernel call per distinct
length) against torch.nn.LSTM on a PackedSequence (torch's documented way), forward + backward, timed alternately
in one process. Lengths are uniform in [T/3, T] (unbucketed: the worst case for rnnkit's piecewise calls).

Usage: ``python benchmarks/bench_lengths.py [--shapes 32x295x64 32x120x128 27x29x100] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import sys

import torch
from bench_cells import _maybe_reexec, time_alternately
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


def main() -> None:
    from rnnkit import RNN

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", nargs="+", default=["32x295x64", "32x120x128", "27x29x100"], help="BxTxH")
    p.add_argument("--input-size", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| B x T x H, 2-layer LSTM | directions | torch packed (seq/s) | rnnkit lengths (seq/s) | rnnkit / torch |")
    print("|---|---:|---:|---:|---:|")
    for shape in args.shapes:
        B, T, H = map(int, shape.split("x"))
        for bidirectional in (False, True):
            torch.manual_seed(0)
            ref = nn.LSTM(args.input_size, H, num_layers=2, batch_first=True, bidirectional=bidirectional)
            ours = RNN(args.input_size, H, num_layers=2, bidirectional=bidirectional)
            x = torch.randn(B, T, args.input_size, requires_grad=True)
            lengths = torch.randint(T // 3, T + 1, (B,))

            def run_ours(i):
                out, _ = ours(x, lengths=lengths)
                out.sum().backward()

            def run_torch(i):
                out, _ = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
                out.data.sum().backward()

            o, r, ratio = time_alternately(run_ours, run_torch, args.steps, args.rounds, B)
            print(f"| {shape} | {2 if bidirectional else 1} | {r:,.1f} | {o:,.1f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
