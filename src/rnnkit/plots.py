"""PNG plots (matplotlib, no display needed)."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from .io import write_bytes_atomic


def plot_training_curves(history: list[dict], path: Path) -> None:
    """Training and validation loss against updates, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for split, style in (("train", "-"), ("val", "o-")):
        points = [(r["step"], r["loss"]) for r in history if r["split"] == split]
        if points:
            steps, losses = zip(*points)
            ax.plot(steps, losses, style, label=split, ms=3)
    ax.set(xlabel="update", ylabel="loss", title="Training curves")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def _axes(figsize):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)


def _log_curves(curves: dict, path: Path, xlabel: str, ylabel: str, title: str) -> None:
    """One semilog-y curve per label, values indexed 0, 1, 2, ..."""
    many = len(curves) > 6
    fig, ax = _axes((8.5, 4.5) if many else (6, 4))
    colors = _distinct_colors(len(curves))
    for (label, values), color in zip(curves.items(), colors):
        ax.semilogy(range(len(values)), list(values), label=label, color=color)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if many:  # beside the axes, where it hides no curve
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend()
    save_figure(fig, path)


def _distinct_colors(n: int) -> list:
    """n colours that differ (matplotlib's tab10, then tab20 beyond ten curves)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_gradient_flow(curves: dict, path: Path) -> None:
    """‖∂L/∂h_t‖ against the distance T - t, one curve per label (values indexed by distance)."""
    _log_curves(curves, path, "distance T - t (steps back)", "‖∂L/∂h_t‖", "Gradient flow through time")


def plot_eigenvalues(eigenvalues: dict, path: Path, title: str = "Eigenvalues of W_hh") -> None:
    """Eigenvalues in the complex plane against the unit circle, one set per label."""
    import math

    fig, ax = _axes((5, 5))
    theta = [2 * math.pi * k / 200 for k in range(201)]
    ax.plot([math.cos(t) for t in theta], [math.sin(t) for t in theta], "k--", lw=0.8, label="unit circle")
    for label, ev in eigenvalues.items():
        ax.scatter([complex(z).real for z in ev], [complex(z).imag for z in ev], s=8, label=label)
    ax.set(aspect="equal", xlabel="Re λ", ylabel="Im λ", title=title)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_power_norms(curves: dict, path: Path) -> None:
    """‖W^t h_0‖ against t, one curve per label: the linear recurrence alone."""
    _log_curves(curves, path, "t", "‖W^t h_0‖", "The linear recurrence alone: W^t h_0")


def plot_confusion(confusion, labels: list[str], path: Path, title: str = "Confusion matrix") -> None:
    """Counts with rows = true class, columns = predicted class, each cell annotated."""
    import numpy as np

    confusion = np.asarray(confusion)
    n = len(labels)
    fig, ax = _axes((1.6 + 0.55 * n, 1.2 + 0.5 * n))
    ax.imshow(confusion, cmap="Blues")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticklabels(labels)
    ax.grid(False)
    top = confusion.max() or 1
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if confusion[i, j] > top / 2 else "black")
    save_figure(fig, path)


def plot_attention(weights, source: list[str], output: list[str], path: Path, title: str = "Attention") -> None:
    """An attention matrix (output step × source position) as a heat map with the tokens on the axes: row t shows
    where the decoder looked when it emitted ``output[t]`` (its last row is ``<eos>`` when it has one more row)."""
    import numpy as np

    weights = np.asarray(weights, dtype=float)
    rows = list(output) + ["<eos>"] * (weights.shape[0] - len(output))
    fig, ax = _axes((1.8 + 0.32 * len(source), 1.4 + 0.3 * len(rows)))
    ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set(xticks=range(len(source)), yticks=range(len(rows)), xlabel="source", ylabel="output", title=title)
    ax.set_xticklabels(source, rotation=90)
    ax.set_yticklabels(rows)
    ax.grid(False)
    save_figure(fig, path)


def plot_image_attention(image, weights, grid: tuple[int, int], words: list[str], path: Path) -> None:
    """Where a captioner looked for each word (Xu et al. 2015, fig. 3): the image once per emitted word (and
    ``<eos>``), the attention over the encoder's h×w grid stretched over it."""
    import numpy as np

    image = np.asarray(image, dtype=float)
    picture = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    H, W = picture.shape[:2]
    weights = np.asarray(weights, dtype=float)
    labels = list(words) + ["<eos>"] * (weights.shape[0] - len(words))
    n = len(labels)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n, 1, figsize=(max(3.0, W / H * 1.6), 1.3 * n), squeeze=False)
    for ax, label, alpha in zip(axes[:, 0], labels, weights):
        ax.imshow(picture, cmap="gray", extent=(0, W, H, 0))
        ax.imshow(alpha.reshape(grid), cmap="magma", alpha=0.55, extent=(0, W, H, 0), vmin=0.0,
                  vmax=max(float(alpha.max()), 1e-9))
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


def plot_memory_trace(inputs, targets, outputs, path: Path, title: str, read_weights=None, write_weights=None,
                      memory=None) -> None:
    """One sequence through a memory task (Graves et al. 2014, fig. 6): inputs, targets and outputs (channel ×
    time), and for a neural Turing machine the write and read weightings (location × time) and the memory at the
    end (location × width). Steps without a target show as blank target columns."""
    import numpy as np

    panels = [("inputs", inputs), ("targets", targets), ("outputs", outputs)]
    if write_weights is not None:
        panels.append(("write weighting", write_weights))
    if read_weights is not None:
        panels.append(("read weighting", read_weights))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [max(1.0, min(3.0, np.asarray(p).shape[0] / 12)) for _, p in panels]
    width = 2.5 + 0.12 * np.asarray(inputs).shape[1]
    extra = 1 if memory is not None else 0
    size = (min(max(width, 6.0), 16.0), sum(heights) + 1.2 + 2.5 * extra)
    fig, axes = plt.subplots(len(panels) + extra, 1, figsize=size,
                             gridspec_kw={"height_ratios": heights + ([2.5] if extra else [])}, squeeze=False)
    for ax, (name, values) in zip(axes[:, 0], panels):
        values = np.asarray(values, dtype=float)
        ax.imshow(np.ma.masked_invalid(values), cmap="viridis" if "weighting" in name else "gray_r", aspect="auto",
                  vmin=0.0, vmax=1.0 if "weighting" not in name else max(float(np.nanmax(values)), 1e-9),
                  interpolation="nearest")
        ax.set_ylabel(name, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(False)
    axes[-1 - extra, 0].set_xlabel("time step")
    if memory is not None:
        ax = axes[-1, 0]
        ax.imshow(np.asarray(memory, dtype=float).T, cmap="RdBu_r", aspect="auto", interpolation="nearest")
        ax.set(xlabel="memory location", ylabel="width")
        ax.set_title("memory after the last step", fontsize=9)
        ax.grid(False)
    axes[0, 0].set_title(title, fontsize=10)
    save_figure(fig, path)


def plot_music(rolls: list[tuple[str, object]], curves: dict[str, list[tuple[int, float]]], path: Path,
               title: str) -> None:
    """Piano rolls (each (T, 88): time left to right, MIDI pitch 21 at the bottom), e.g. data against samples,
    above the validation curves (NLL per step; for a deep Markov model the negative ELBO, its KL and reconstruction
    parts, and the importance-sampled NLL)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(len(rolls) + 1, 1, figsize=(10, 1.6 * len(rolls) + 3),
                             gridspec_kw={"height_ratios": [1.6] * len(rolls) + [3.0]}, squeeze=False)
    for ax, (name, roll) in zip(axes[:-1, 0], rolls):
        roll = np.asarray(roll, dtype=float)
        lit = np.nonzero(roll.sum(0))[0]
        lo, hi = (max(0, lit.min() - 3), min(roll.shape[1], lit.max() + 4)) if len(lit) else (0, roll.shape[1])
        ax.imshow(roll[:, lo:hi].T, origin="lower", cmap="gray_r", aspect="auto", vmin=0, vmax=1,
                  interpolation="nearest", extent=(-0.5, len(roll) - 0.5, 21 + lo - 0.5, 21 + hi - 0.5))
        ax.set_ylabel("MIDI pitch", fontsize=8)
        ax.set_xlabel("time step", fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(False)
    ax = axes[-1, 0]
    for label, points in curves.items():
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, "o-", ms=2, label=label)
    ax.set(xlabel="update", ylabel="nats per time step")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    axes[0, 0].figure.suptitle(title, fontsize=10)
    save_figure(fig, path)


def plot_lab_curves(curves: dict[str, list[tuple[int, float]]], path: Path, metric: str, title: str) -> None:
    """Validation ``metric`` against updates, one curve per run (log scale for loss-like metrics)."""
    fig, ax = _axes((8.5, 4.5))
    for (label, points), color in zip(curves.items(), _distinct_colors(len(curves))):
        points = [(s, v) for s, v in points if v is not None and v == v]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, label=label, lw=1.2, color=color)
    if "accuracy" not in metric and "recalled" not in metric:
        ax.set_yscale("log")
    ax.set(xlabel="update", ylabel=f"validation {metric}", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(fig, path)
