"""What every task gives the trainer: batches, a model, metrics, and the files a run directory needs."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..data.text import default_text, read_text


def load_corpus(path: str) -> str:
    """``""``: Python's documentation text; ``"tinyshakespeare"``: downloaded once into the cache and checked by
    SHA-256 (``rnnkit.data.download``); anything else: a UTF-8 text file."""
    if not path:
        return default_text()
    if path == "tinyshakespeare":
        from ..data.download import tinyshakespeare

        return tinyshakespeare()
    return read_text(path)


def split_point(n: int, val_fraction: float) -> int:
    return n - max(1, int(n * val_fraction))


class Task:
    """What the trainer needs from a task. Subclasses set ``train`` / ``val`` streams and ``description`` and
    implement ``build_model``; the rest has defaults: metrics are the mean loss plus the means of
    ``batch_terms``, no extra model arguments, nothing to save besides the weights, no samples."""

    description = ""

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def metrics(self, loss: float, means: dict | None = None) -> dict:
        return {"loss": loss, **(means or {})}

    def batch_terms(self, prediction, targets) -> dict:
        """Per-batch sums that ``metrics`` receives as means over the evaluated targets."""
        return {}

    def forward_kwargs(self, progress: float) -> dict:
        """Extra model arguments for the update at ``progress`` ∈ [0, 1] of training."""
        return {}

    def save_artifacts(self, run_dir: Path) -> None:
        """Files besides the weights that a run directory needs to be reloaded."""

    def sample(self, model: nn.Module, **kwargs) -> str:
        """A short text showing what the model does now (logged at evaluations)."""
        return ""

    def collector(self):
        """Something that gathers the predictions of an evaluation when the metrics need more than per-batch sums
        (``add(prediction, batch)``, ``metrics() -> dict``), or None."""
        return None

    def file_batches(self, path: str):
        """Batches that score every target of the file ``path`` exactly once (``rnnkit evaluate RUN --data.path``),
        read with the run's own vocabulary, labels and scaler."""
        raise ValueError(f"{self.name} runs are evaluated on their validation split; --data.path is not supported")
