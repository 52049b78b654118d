"""Where a custom cell's training step spends its time (why hand-written cells trail torch.nn.LSTM).

For each cell (one layer, B x T x H, D = H), timed in one process, best of rounds:

* ``full``: forward + backward as in training;
* ``no per-step dW``: the same with the recurrent weights frozen, i.e. without the T small weight-gradient
  products (an upper bound on what accumulating dW = Σ_t g_tᵀ h_{t-1} as one product could save);
* ``forward``: forward alone, no autograd.

Then the products themselves: a per-step recurrent product (B, H) @ (H, G) with torch.mm and with
oneDNN (``mkldnn_linear`` on a cached oneDNN weight, input converted per call), the per-step weight
gradient, and the same weight gradient for all T steps as one product, in GFLOP/s.

Usage: ``python benchmarks/bench_step_anatomy.py [--shape 32x100x256] [--cells mut1 leaky ...]``
"""

from __future__ import annotations

import argparse
import sys
import time

from bench_cells import _maybe_reexec


def best_time(fn, iters: int, rounds: int = 3) -> float:
    for _ in range(2):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        best = min(best, (time.perf_counter() - start) / iters)
    return best


def main(argv=None) -> None:
    import torch

    from rnnkit import RNN

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", default="32x100x256")
    p.add_argument("--cells", nargs="+", default=["mut1", "mut2", "mut3", "gru-cho", "leaky", "jordan",
                                                   "peephole-lstm", "delay"])
    p.add_argument("--no-malloc-tuning", action="store_true")
    args = p.parse_args(argv)
    B, T, H = map(int, args.shape.split("x"))
    torch.manual_seed(0)
    x = torch.randn(B, T, H)

    print(f"## Step anatomy, B={B}, T={T}, D=H={H} (ms per training step)\n")
    print("| cell | full | no per-step dW | forward |")
    print("|---|---:|---:|---:|")
    for name in args.cells:
        rnn = RNN(H, H, cell=name, **({"output_size": H} if name == "jordan" else {}))
        recurrent = [p for n, p in rnn.cells[0].named_parameters() if p.dim() == 2 and n != "weight_ih"]

        def train_step():
            rnn(x)[0].pow(2).mean().backward()

        def forward():
            with torch.no_grad():
                rnn(x)

        full = best_time(train_step, 5)
        for w in recurrent:
            w.requires_grad_(False)
        frozen = best_time(train_step, 5)
        fwd = best_time(forward, 5)
        print(f"| {name} | {full * 1e3:.1f} | {frozen * 1e3:.1f} ({frozen / full:.2f}x) | {fwd * 1e3:.1f} |",
              flush=True)

    print("\n## Products in GFLOP/s\n")
    print("| (B, H) @ (H, G) | torch.mm | oneDNN | per-step dW | dW for all T at once |")
    print("|---|---:|---:|---:|---:|")
    for G in (H, 3 * H, 4 * H):
        h, W, g = torch.randn(B, H), torch.randn(G, H), torch.randn(B, G)
        W_onednn = W.to_mkldnn()
        hs, gs = torch.randn(T * B, H), torch.randn(T * B, G)
        flops = 2 * B * H * G
        mm = flops / best_time(lambda: torch.mm(h, W.t()), 200) / 1e9
        onednn = flops / best_time(lambda: torch._C._nn.mkldnn_linear(h.to_mkldnn(), W_onednn).to_dense(), 200) / 1e9
        dw = flops / best_time(lambda: torch.mm(g.t(), h), 200) / 1e9
        dw_all = T * flops / best_time(lambda: torch.mm(gs.t(), hs), 10) / 1e9
        print(f"| ({B}, {H}) @ ({H}, {G}) | {mm:.0f} | {onednn:.0f} | {dw:.0f} | {dw_all:.0f} |")


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
