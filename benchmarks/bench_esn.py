"""rnnkit's echo state networks against ReservoirPy 0.4 on its own ground: Mackey-Glass (tau = 17, ReservoirPy's
generator) scaled to [-1, 1], one-step forecasting, leak 0.3, spectral radius 1.25, ridge 1e-6, 8,000 training
steps after a washout of 100, the next 1,999 predicted.

For each size the ReservoirPy reservoir is built first and its W, W_in and bias copied into rnnkit's
``Reservoir`` (float64): the states must agree to 1e-10 and so must the NRMSE. Times are fit + predict, side by
side in this process (ReservoirPy's time includes building its matrices, as its ``fit`` does that; rnnkit's
"build" column is its own construction with the spectral radius scaled exactly). Median of ``--repeats``.

Usage: ``python benchmarks/bench_esn.py [--units 100 500 2000] [--repeats 3]`` (``pip install reservoirpy``)
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def data():
    from reservoirpy.datasets import mackey_glass

    x = mackey_glass(10000, tau=17)
    return 2 * (x - x.min()) / (x.max() - x.min()) - 1


def run_reservoirpy(x, units, seed):
    from reservoirpy.nodes import Reservoir, Ridge

    reservoir = Reservoir(units, lr=0.3, sr=1.25, seed=seed)
    model = reservoir >> Ridge(ridge=1e-6)
    start = time.perf_counter()
    model.fit(x[:8000], x[1:8001], warmup=100)
    predicted = model.run(x[8000:-1])
    return reservoir, predicted, time.perf_counter() - start


def copied_weights(reservoir):
    def dense(m):
        return m.toarray() if hasattr(m, "toarray") else np.asarray(m)

    units = reservoir.units
    return {"W": dense(reservoir.W), "W_in": dense(reservoir.Win),
            "bias": np.broadcast_to(np.asarray(dense(reservoir.bias), float).ravel(), (units,)).copy()}


def run_rnnkit(x, units, weights=None, seed=0):
    from rnnkit.reservoir import ESN, Reservoir

    start = time.perf_counter()
    reservoir = Reservoir(1, units, spectral_radius=1.25, leak=0.3, seed=seed, weights=weights)
    built = time.perf_counter()
    esn = ESN(reservoir, 1).fit(x[:8000], x[1:8001], washout=100, ridge=1e-6)
    predicted, _ = esn.predict(x[8000:-1], esn.state)  # continuing from the training's last state
    return reservoir, predicted[0].numpy(), time.perf_counter() - built, built - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--units", type=int, nargs="+", default=[100, 500, 2000])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    from rnnkit.reservoir import nrmse

    x = data()
    print("| units | ReservoirPy fit+predict (s) | rnnkit fit+predict (s) | speed-up | rnnkit build (s) | "
          "NRMSE ReservoirPy | NRMSE rnnkit | max state difference |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for units in args.units:
        t_r, t_k = [], []
        for _ in range(args.repeats):
            reservoir, ref, elapsed = run_reservoirpy(x, units, seed=0)
            t_r.append(elapsed)
            ours, pred, elapsed, _ = run_rnnkit(x, units, copied_weights(reservoir))
            t_k.append(elapsed)
        _, _, _, own_build = run_rnnkit(x, units, seed=0)
        reservoir.reset()
        states_ref = reservoir.run(x[:2000])
        states_ours, _ = ours(torch.from_numpy(x[:2000]))
        diff = float(np.abs(states_ref - states_ours[0].numpy()).max())
        r, k = statistics.median(t_r), statistics.median(t_k)
        print(f"| {units} | {r:.2f} | {k:.2f} | {r / k:.1f}x | {own_build:.2f} | {nrmse(x[8001:], ref):.3g} | "
              f"{nrmse(x[8001:], pred):.3g} | {diff:.1e} |")


if __name__ == "__main__":
    main()
