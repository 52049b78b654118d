"""Training speed of every cell through rnnkit's sequence layer, next to torch.nn in the same run.

For each shape and cell: forward + backward of a one-layer network on a (B, T, D) batch, timed
alternately with the matching torch.nn module (LSTM for the LSTM family, GRU for the GRUs and MUTs,
RNN for the Elman family) and with torch.nn.LSTM: one training step of each in turn, about a second of steps per
round, the median of ``--repeats`` rounds' ratios. Reported: training tokens/s (B·T per step), GFLOP/s
(matrix products only, 3 × forward for forward + backward) and ratios measured in the same process:

* ``vs torch``: time of the matching torch.nn module / our time (≥ 1 means faster than torch);
* ``GFLOP/s vs LSTM``: our GFLOP/s / torch.nn.LSTM's GFLOP/s;
* ``path`` and ``vs Python loop``: which kernel ran the cell (torch's, rnnkit's native one, or rnnkit's Python loop)
  and its speed over the same layer on rnnkit's Python loop (``rnnkit.native.python_loop()``).

Usage: ``python benchmarks/bench_cells.py [--shapes 32x100x256 64x64x512] [--cells lstm mut1] [--repeats 5]``
The script re-executes itself with glibc malloc settings that stop freed activations from being
returned to the OS between steps (PERFORMANCE.md §5); ``--no-malloc-tuning`` turns that off.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "4294967296",
              "MALLOC_TOP_PAD_": "536870912"}


def _maybe_reexec(argv: list[str]) -> None:
    if "--no-malloc-tuning" in argv or all(os.environ.get(k) == v for k, v in MALLOC_ENV.items()):
        return
    os.execve(sys.executable, [sys.executable, *argv], {**os.environ, **MALLOC_ENV})


def timed(fn, repeats: int = 5) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_best(overrides: dict, run_dir):
    """Train the run ``overrides`` configure (dotted keys, as ``rnnkit train`` takes them) through the Trainer and
    reload the weights with the best validation loss. Returns (task, model in eval mode, the trainer's summary,
    seconds of training)."""
    from rnnkit.config import build_config
    from rnnkit.tasks import TASKS
    from rnnkit.training import Trainer
    from rnnkit.training.checkpoint import load_weights

    config = build_config(None, overrides)
    task = TASKS[config.data.task](config)
    start = time.perf_counter()
    summary = Trainer(config, task, run_dir, progress=False).fit()
    seconds = time.perf_counter() - start
    model = task.build_model()
    load_weights(model, run_dir / "model.safetensors")
    return task, model.eval(), summary, seconds


def print_selection(run, settings, labels, budget: float) -> None:
    """The dev-selection table of the SST benchmarks: ``run(setting, labels, seed=0, budget, test=False)`` for every
    candidate and label set, its dev accuracy and updates."""
    print("| setting | labels | dev accuracy | updates |\n|---|---|---:|---:|")
    for name in settings:
        for label_set in labels:
            r = run(name, label_set, 0, budget, test=False)
            print(f"| {name} | {label_set} | {100 * r['dev']:.2f}% | {r['steps']} |", flush=True)


def time_alternately(ours, reference, steps: int, rounds: int, units_per_step: int) -> tuple[float, float, float]:
    """Rounds of ``steps`` calls of ``ours(i)`` then ``reference(i)`` (i: the step index, so both see the same data),
    after one warm-up round each. Returns (ours units/s, reference units/s, ratio), medians over rounds."""
    rates: tuple[list[float], list[float]] = ([], [])
    for r in range(rounds + 1):
        for fn, out in ((ours, rates[0]), (reference, rates[1])):
            start = time.perf_counter()
            for i in range(steps):
                fn(r * steps + i)
            out.append(units_per_step * steps / (time.perf_counter() - start))
    ours_rates, ref_rates = rates[0][1:], rates[1][1:]
    return (statistics.median(ours_rates), statistics.median(ref_rates),
            statistics.median(o / f for o, f in zip(ours_rates, ref_rates)))


def main(argv: list[str] | None = None) -> None:
    import torch
    from torch import nn

    from rnnkit import CELLS, RNN, native
    from rnnkit.precision import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["32x100x256", "64x64x512"], help="BxTxH (D = H)")
    # the NTM's cost is its memory traffic, not its matrices: benchmarks/bench_ntm.py times it
    parser.add_argument("--cells", nargs="+", default=sorted(c for c in CELLS if c != "ntm"))
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per cell (median reported)")
    parser.add_argument("--no-malloc-tuning", action="store_true")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    extra = {"jordan": {"output_size": None}, "delay": {"delays": (1, 2, 4)}, "leaky": {"tau": (1.0, 100.0)}}
    reference_for = {"lstm": "LSTM", "peephole-lstm": "LSTM", "gru": "GRU", "gru-cho": "GRU", "mut1": "GRU",
                     "mut2": "GRU", "mut3": "GRU", "rnn": "RNN", "jordan": "RNN", "leaky": "RNN", "delay": "RNN",
                     "clockwork": "RNN", "deep-transition": "RNN", "unitary": "RNN"}

    def train_step(module, x):
        out = module(x)[0]
        out.pow(2).mean().backward()

    def interleaved(runs, x, iters):
        """Seconds per training step of each (module, python_loop) in ``runs``, their steps taken in turn (one of
        each, ``iters`` times): a shared VM's speed drifts over seconds, and this way every module sees the same
        drift (timing each for a second in a row let the ratio of two identical kernels read 0.87x-1.04x)."""
        totals = [0.0] * len(runs)
        for _ in range(iters):
            for i, (module, python_loop) in enumerate(runs):
                with native.python_loop() if python_loop else contextlib.nullcontext():
                    start = time.perf_counter()
                    train_step(module, x)
                    totals[i] += time.perf_counter() - start
        return [t / iters for t in totals]

    def path(module, x):
        cell = module.cells[0]
        if module._native_ok(False, x.device.type) and not module._own_kernel_preferred(x):
            return "torch"
        return "native" if native.applies(cell, x) else "Python loop"

    def gemm_ceiling(B, T, H):
        """GFLOP/s of one float32 product of a training step's largest shape, (B·T × H) @ (H × 3H) (a GRU's input
        projection; its weight gradients are the same product transposed): what no kernel's products can beat
        here, however its steps are arranged."""
        a, w = torch.randn(B * T, H), torch.randn(H, 3 * H)
        return 2 * B * T * H * 3 * H / timed(lambda: torch.mm(a, w), max(5, args.repeats)) / 1e9

    def matmul_flops(module, B, T):
        """2·B·T·(elements of every weight matrix, each used once per step), × 3 for forward + backward."""
        return 3 * 2 * B * T * sum(p.numel() for p in module.parameters() if p.dim() == 2)

    print(f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads, malloc tuning "
          f"{'on' if all(os.environ.get(k) == v for k, v in MALLOC_ENV.items()) else 'off'}")
    print(f"rnnkit native kernels: {native.status()}")
    for shape in args.shapes:
        B, T, H = map(int, shape.split("x"))
        D = H
        x = torch.randn(B, T, D)
        torch_modules = {"LSTM": nn.LSTM(D, H, batch_first=True), "GRU": nn.GRU(D, H, batch_first=True),
                         "RNN": nn.RNN(D, H, batch_first=True)}
        print(f"\n## B={B}, T={T}, D=H={H}\n")
        print(f"The GEMM ceiling: torch.mm of ({B * T} x {H}) by ({H} x {3 * H}) in float32 at "
              f"{gemm_ceiling(B, T, H):.0f} GFLOP/s. The GFLOP/s column counts 3 x the forward products; here the "
              "input needs no gradient, so an LSTM or GRU layer runs 5/6 of them (no product for dx).\n")
        print("| cell | path | tokens/s | GFLOP/s | vs torch (same cell family) | GFLOP/s vs nn.LSTM "
              "| vs Python loop |")
        print("|---|---|---:|---:|---|---:|---:|")
        for name in args.cells:
            kwargs = dict(extra.get(name, {}))
            if name == "jordan":
                kwargs["output_size"] = H
            ours = RNN(D, H, cell=name, **kwargs)
            ref_name = reference_for[name]
            ref, lstm = torch_modules[ref_name], torch_modules["LSTM"]
            flops_ours, flops_lstm = matmul_flops(ours, B, T), matmul_flops(lstm, B, T)
            for m in (ours, ref, lstm):  # warm-up (oneDNN primitive creation, allocator)
                interleaved([(m, False)], x, 2)
            t0 = time.perf_counter()
            train_step(ours, x)
            iters = max(2, int(1.0 / max(time.perf_counter() - t0, 1e-3)))
            kind = path(ours, x)
            t_ours, t_ref, t_lstm, t_loop = [], [], [], []
            runs = [(ours, False), (ref, False), (lstm, False)] + ([(ours, True)] if kind == "native" else [])
            for _ in range(args.repeats):
                times = interleaved(runs, x, iters)
                t_ours.append(times[0])
                t_ref.append(times[1])
                t_lstm.append(times[2])
                t_loop.extend(times[3:])
            ratio_ref = statistics.median(r / o for r, o in zip(t_ref, t_ours))
            ratio_lstm = statistics.median((flops_ours / o) / (flops_lstm / s) for o, s in zip(t_ours, t_lstm))
            ratio_loop = f"{statistics.median(p / o for p, o in zip(t_loop, t_ours)):.2f}x" if t_loop else "-"
            t = statistics.median(t_ours)
            print(f"| {name} | {kind} | {B * T / t:,.0f} | {flops_ours / t / 1e9:.0f} | {ratio_ref:.2f}x nn.{ref_name} "
                  f"| {ratio_lstm:.2f}x | {ratio_loop} |", flush=True)


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
