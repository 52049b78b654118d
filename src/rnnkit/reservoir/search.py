"""Random search over reservoir hyperparameters, scored on a validation split, with a plot of the landscape."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

# name -> (low, high, "log" | "linear")
DEFAULT_SPACE = {"spectral_radius": (0.5, 1.5, "linear"), "leak": (0.05, 1.0, "log"),
                 "input_scaling": (0.05, 2.0, "log"), "ridge": (1e-10, 1e-2, "log")}


def random_search(score: Callable[[dict], float], space: dict | None = None, trials: int = 30, seed: int = 0,
                  progress: bool = True) -> list[tuple[dict, float]]:
    """Draw ``trials`` settings from ``space`` (uniform, or log-uniform for ``"log"`` ranges), score each with
    ``score(params) -> validation error`` (lower is better; a non-finite score counts as the worst) and return
    (params, score) best first."""
    from tqdm import tqdm

    space = space or DEFAULT_SPACE
    rng = np.random.default_rng(seed)
    results = []
    bar = tqdm(range(trials), disable=not progress, unit="trial", dynamic_ncols=True)
    for _ in bar:
        params = {}
        for name, (lo, hi, scale) in space.items():
            if scale == "log":
                params[name] = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            else:
                params[name] = float(rng.uniform(lo, hi))
        value = float(score(params))
        results.append((params, value if math.isfinite(value) else math.inf))
        bar.set_postfix(best=f"{min(v for _, v in results):.3g}")
    return sorted(results, key=lambda r: r[1])


def plot_search(results: list[tuple[dict, float]], path: str | Path, x: str = "spectral_radius", y: str = "leak",
                title: str = "") -> None:
    """The score landscape: every trial at (x, y), coloured by log10 of its score; the best one marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import save_figure

    finite = [(p, v) for p, v in results if math.isfinite(v) and v > 0]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    points = ax.scatter([p[x] for p, _ in finite], [p[y] for p, _ in finite], c=[math.log10(v) for _, v in finite],
                        cmap="viridis_r", s=30)
    best = finite[0][0] if finite else None
    if best:
        ax.scatter([best[x]], [best[y]], marker="*", s=250, color="red", label="best")
        ax.legend()
    fig.colorbar(points, label="log10 validation error")
    ax.set(xlabel=x, ylabel=y, title=title or "Hyperparameter search", yscale="log" if y in ("leak", "ridge") else
           "linear")
    save_figure(fig, Path(path))
