"""The seed's point about reservoirs in one figure: short-term memory capacity (Jaeger 2001) against the spectral
radius of the recurrent matrix, with the edge of stability (radius 1) marked.

MC = Σ_k r²(u_{t-k}, y_k(t)) for k = 1..2N, where y_k is a ridge readout trained to recall the input k steps
back and u is i.i.d. U(-0.5, 0.5) noise (input scaling 0.1, leak 1, so the units stay near their linear range).
Trained on 4,000 steps after a washout of 200, scored on the next 2,000. Averaged over ``--seeds`` reservoirs.

Usage: ``python benchmarks/bench_esn_memory.py [--units 50] [--out docs/esn_memory_capacity.png]``
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from rnnkit.reservoir import Reservoir, RidgeReadout


def memory_capacity(units: int, radius: float, seed: int) -> float:
    rng = np.random.default_rng(100 + seed)
    u = rng.uniform(-0.5, 0.5, 6200)
    reservoir = Reservoir(1, units, spectral_radius=radius, leak=1.0, input_scaling=0.1, connectivity=0.2,
                          input_connectivity=1.0, seed=seed)
    states = reservoir(torch.from_numpy(u[:, None]))[0][0].numpy()
    delays = np.arange(1, 2 * units + 1)
    targets = np.stack([np.roll(u, k) for k in delays], 1)  # column k-1: u_{t-k}
    train, test = slice(200, 4200), slice(4200, 6200)
    readout = RidgeReadout()
    readout.add(states[train], targets[train])
    readout.solve(1e-8)
    predicted = readout(torch.from_numpy(states[test])).numpy()
    r = [np.corrcoef(predicted[:, j], targets[test, j])[0, 1] for j in range(len(delays))]
    return float(np.sum(np.square(r)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--units", type=int, default=50)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default="docs/esn_memory_capacity.png")
    args = p.parse_args()
    radii = np.round(np.arange(0.1, 1.61, 0.1), 2)
    capacity = np.array([[memory_capacity(args.units, r, s) for s in range(args.seeds)] for r in radii])
    mean = capacity.mean(1)
    print("| spectral radius | " + " | ".join(f"{r:g}" for r in radii) + " |")
    print("|---|" + "---:|" * len(radii))
    print("| memory capacity | " + " | ".join(f"{m:.1f}" for m in mean) + " |")
    print(f"maximum {mean.max():.1f} of {args.units} units at radius {radii[mean.argmax()]:g}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnkit.plots import save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.errorbar(radii, mean, yerr=capacity.std(1), marker="o", capsize=3, label=f"{args.units} tanh units")
    ax.axvline(1.0, color="grey", ls="--", label="edge of stability (radius 1)")
    ax.axhline(args.units, color="grey", ls=":", lw=0.8, label="bound: N")
    ax.set(xlabel="spectral radius of W", ylabel="memory capacity Σ_k r²(u_{t-k}, y_k)",
           title="Echo state memory peaks near the edge of stability")
    ax.legend(fontsize=8)
    from pathlib import Path

    save_figure(fig, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
