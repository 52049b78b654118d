"""``adding``, ``copy-memory``, ``pixels``: the long-term dependency benchmarks (:mod:`rnnkit.data.longterm`) for
any cell, each reporting its loss against the input-blind baseline (``baseline_ratio``: 1 means the network
remembers nothing, 0.01 is the usual "solved").

``adding`` and ``copy-memory`` draw a fresh training batch for every update from (train.seed, update) — the data
never repeats and a resumed run sees the batches an uninterrupted one would — and validate on a fixed set of
``data.num_examples`` sequences (0: 1,000). ``data.lag`` is T: the adding sequence's length, the copy task's blank
stretch. ``pixels`` reads scikit-learn's 8×8 digits as 64 one-pixel steps (``data.permuted``: in a fixed random
order), holding out ``data.val_fraction`` of the training part; ``rnnkit evaluate RUN --data.path digits-test``
scores the test part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import RunConfig, recurrent_kwargs
from ..data.batches import Batch, ExampleBatches
from ..data.longterm import (
    SOLVED_ERROR,
    adding_baseline,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
    pixel_digits,
)
from ..models.classifier import SequenceClassifier, SequenceRegressor, SequenceTagger
from .base import Task, hold_out
from .memory import BATCHES_PER_EPOCH

DEFAULT_VAL_EXAMPLES = 1000


class DrawnBatches:
    """Training batches drawn afresh for every update: batch ``step`` is ``draw(rng(seed, step), batch_size)``."""

    def __init__(self, draw, batch_size: int, seed: int):
        self.draw, self.batch_size, self.seed = draw, batch_size, seed
        self.chunks_per_epoch = BATCHES_PER_EPOCH

    def chunk(self, step: int, rows: slice | None = None) -> Batch:
        x, y = self.draw(np.random.default_rng([self.seed, step]), self.batch_size)
        batch = Batch(torch.from_numpy(x), torch.from_numpy(y))
        return batch if rows is None else batch.rows(rows)


class _GeneratedTask(Task):
    """Shared by ``adding`` and ``copy-memory``: ``draw(rng, count)`` makes examples, ``baseline`` is the blind
    guess's loss."""

    def __init__(self, config: RunConfig, run_dir: Path | None = None, with_data: bool = True):
        self.config = config
        d = config.data
        if d.path:
            raise ValueError(f"data.task={self.name} generates its data; drop data.path ({d.path!r}) and set data.lag")
        self.T = d.lag
        self.draw(np.random.default_rng(0), 1)  # the generator's own checks of T
        self.description = self.describe()
        if not with_data:
            return
        seed = config.train.seed
        self.train = DrawnBatches(self.draw, d.batch_size, seed)
        count = d.num_examples or DEFAULT_VAL_EXAMPLES
        x, y = self.draw(np.random.default_rng([seed, 0, 1]), count)  # not any training batch's (seed, step)
        self.val = ExampleBatches(list(torch.from_numpy(x)), list(torch.from_numpy(y)), min(d.batch_size, count),
                                  seed=seed, bucket=False)
        self.description += f"; fresh training batches of {d.batch_size}, {count} validation sequences"

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path, with_data: bool = True):
        return cls(config, run_dir, with_data=with_data)

    def metrics(self, loss: float, means: dict | None = None) -> dict:
        return {"loss": loss, "baseline_ratio": loss / self.baseline, **(means or {})}

    def encoder_kwargs(self) -> dict:
        m = self.config.model
        return dict(hidden_size=m.hidden_size, num_layers=m.num_layers, cell=m.cell, dropout=m.dropout,
                    **recurrent_kwargs(m))


class AddingTask(_GeneratedTask):
    """The adding problem (modern or original form, ``data.adding_form``): MSE of the sum read at the last step;
    ``solved``: the share of sequences with absolute error below 0.04 (Hochreiter & Schmidhuber's criterion)."""

    name = "adding"

    def draw(self, rng, count):
        return adding_problem(rng, count, self.T, self.config.data.adding_form)

    @property
    def baseline(self) -> float:
        return adding_baseline(self.config.data.adding_form)

    def describe(self) -> str:
        return (f"adding problem ({self.config.data.adding_form} form), T = {self.T}; blind baseline MSE "
                f"{self.baseline:.4f}")

    def build_model(self) -> nn.Module:
        return SequenceRegressor(input_size=2, **self.encoder_kwargs())

    def batch_terms(self, prediction, targets) -> dict:
        return {"solved": float(((prediction - targets).abs() < SOLVED_ERROR).sum())}


class CopyMemoryTask(_GeneratedTask):
    """Copy memory: cross-entropy per step over all T + 20 steps (Arjovsky et al.'s measure); ``recalled``: the
    share of the ten data symbols reproduced (argmax) in the output phase."""

    name = "copy-memory"

    def draw(self, rng, count):
        return copy_memory(rng, count, self.T)

    @property
    def baseline(self) -> float:
        return copy_memory_baseline(self.T)

    def describe(self) -> str:
        return f"copy memory, blank stretch T = {self.T}; blind baseline {self.baseline:.4f} nats a step"

    def build_model(self) -> nn.Module:
        return SequenceTagger(10, vocab_size=10, embedding_size=10, **self.encoder_kwargs())

    def collector(self):
        return _Recalled()


class _Recalled:
    def __init__(self):
        self.right, self.total = 0, 0

    def add(self, prediction, batch, model) -> None:
        predicted, actual = prediction[:, -10:].argmax(-1), batch.targets[:, -10:]
        self.right += int((predicted == actual).sum())
        self.total += actual.numel()

    def metrics(self) -> dict:
        return {"recalled": self.right / max(self.total, 1)}


class PixelsTask(Task):
    """Pixel-by-pixel digits: a class per 64-step sequence; loss, accuracy."""

    name = "pixels"

    def __init__(self, config: RunConfig, run_dir: Path | None = None, with_data: bool = True):
        self.config = config
        d = config.data
        order = "permuted" if d.permuted else "row by row"
        self.description = f"8×8 digits as 64 one-pixel steps, {order}"
        if not with_data:
            return
        x, y = pixel_digits(d.path or "digits", d.permuted)
        train, val = hold_out(list(zip(x, y)), d.val_fraction, config.train.seed, d.path or "digits")
        self.train = self.batches(train, d.batch_size, config.train.seed)
        self.val = self.batches(val, min(d.batch_size, len(val)))
        self.description += f"; {len(train):,} training and {len(val):,} validation images"

    @staticmethod
    def batches(examples, batch_size: int, seed: int = 0) -> ExampleBatches:
        return ExampleBatches([torch.from_numpy(x) for x, _ in examples], [int(y) for _, y in examples], batch_size,
                              seed=seed, bucket=False)

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path, with_data: bool = True):
        return cls(config, run_dir, with_data=with_data)

    def build_model(self) -> nn.Module:
        m = self.config.model
        return SequenceClassifier(10, "last", input_size=1, hidden_size=m.hidden_size, num_layers=m.num_layers,
                                  cell=m.cell, dropout=m.dropout, **recurrent_kwargs(m))

    def batch_terms(self, prediction, targets) -> dict:
        return {"accuracy": float((prediction.argmax(-1) == targets).sum())}

    def file_batches(self, path: str) -> ExampleBatches:
        if path not in ("digits", "digits-test"):
            raise ValueError(f"pixels runs are evaluated on 'digits-test' (or 'digits'); got {path!r}")
        x, y = pixel_digits(path, self.config.data.permuted)
        return self.batches(list(zip(x, y)), self.config.data.batch_size)
