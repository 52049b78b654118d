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
