"""What every task gives the trainer: batches, a model, metrics, and the files a run directory needs."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

from torch import nn

from ..data.text import default_text, read_text
from ..io import write_json_atomic


def load_corpus(path: str) -> str:
    """``""``: Python's documentation text; ``"tinyshakespeare"``: downloaded once into the cache and checked by
    SHA-256 (``rnnkit.data.download``); anything else: a UTF-8 text file."""
    if not path:
        return default_text()
    if path == "tinyshakespeare":
        from ..data.download import tinyshakespeare

        return tinyshakespeare()
    return read_text(path)


MANIFEST = "artifacts.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_artifacts(task: Task, run_dir: Path) -> None:
    """The task's artifacts (vocabulary, label set, scaler) and ``artifacts.json``: the SHA-256 of each, so that
    a file changed after training (two tokens swapped, another label order) is refused on load."""
    names = task.save_artifacts(run_dir)
    write_json_atomic(run_dir / MANIFEST, {name: _sha256(run_dir / name) for name in names})


def check_artifacts(run_dir: Path) -> None:
    """Raise a ValueError naming the file when an artifact differs from the one the run was trained with."""
    manifest = run_dir / MANIFEST
    if not manifest.exists():
        logging.getLogger("rnnkit").warning("%s has no %s: its vocabulary / labels / scaler cannot be checked",
                                            run_dir, MANIFEST)
        return
    try:
        hashes = json.loads(manifest.read_text())
        if not isinstance(hashes, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as e:
        raise ValueError(f"{manifest}: cannot read it ({e}); expected {{file name: SHA-256}}") from None
    for name, digest in hashes.items():
        path = run_dir / name
        if not path.is_file():
            raise ValueError(f"{path}: missing; the run needs the file it was trained with")
        if _sha256(path) != digest:
            raise ValueError(f"{path} was changed after training (its SHA-256 differs from {MANIFEST}); the "
                             "weights only fit the original file: restore it")


def hold_out(examples: list, val_fraction: float, seed: int, path: str) -> tuple[list, list]:
    """(training, validation) parts of a dataset of independent examples: a random ``val_fraction`` drawn with
    ``seed`` (at least one example), both in file order."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, int(len(examples) * val_fraction))
    if len(examples) - n_val < 1:
        raise ValueError(f"{path}: {len(examples)} examples are too few to hold out a validation part")
    held = set(order[:n_val])
    return ([ex for i, ex in enumerate(examples) if i not in held], [ex for i, ex in enumerate(examples) if i in held])


def teacher_forcing_at(train, progress: float) -> float:
    """Scheduled sampling: ``train.teacher_forcing`` annealed linearly to ``train.teacher_forcing_final`` over
    training (``progress`` ∈ [0, 1]); Bengio et al. 2015 with a linear decay."""
    return train.teacher_forcing + (train.teacher_forcing_final - train.teacher_forcing) * progress


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

    def forward_kwargs(self, progress: float, step: int = 0) -> dict:
        """Extra model arguments for update ``step`` (0-based), at ``progress`` ∈ [0, 1] of training."""
        return {}

    def save_artifacts(self, run_dir: Path) -> list[str]:
        """Write the files besides the weights that a run directory needs to be reloaded; return their names."""
        return []

    def sample(self, model: nn.Module, **kwargs) -> str:
        """A short text showing what the model does now (logged at evaluations)."""
        return ""

    def collector(self):
        """Something that gathers the predictions of an evaluation when the metrics need more than per-batch sums
        (``add(prediction, batch, model)``, ``metrics() -> dict``), or None."""
        return None

    def file_batches(self, path: str):
        """Batches that score every target of the file ``path`` exactly once (``rnnkit evaluate RUN --data.path``),
        read with the run's own vocabulary, labels and scaler."""
        raise ValueError(f"{self.name} runs are evaluated on their validation split; --data.path is not supported")
