"""``ntm-copy``, ``ntm-repeat-copy``, ``ntm-recall``: the algorithmic tasks of the neural Turing machine paper
(Graves et al. 2014 §4) on generated bit vectors (:mod:`rnnkit.data.algorithmic`), for any cell.

Training draws a fresh batch for every update from (train.seed, update), so the data never repeats and a resumed
run sees exactly the batches an uninterrupted one would; validation is a fixed set drawn from the seed. The metric
is the literature's: bit errors per sequence (and the share of sequences without any error). Evaluating a run on
longer sequences than it was trained on is ``rnnkit evaluate RUN --data.min_length 40 --data.max_length 40``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import RunConfig, recurrent_kwargs
from ..data.algorithmic import TASKS as GENERATORS
from ..data.algorithmic import draw_examples
from ..data.batches import Batch, ExampleBatches, collate
from ..models.bits import BitSequenceModel, bit_errors
from .base import Task

DEFAULT_VAL_EXAMPLES = 256
BATCHES_PER_EPOCH = 1000  # a generated stream has no epochs; train.epochs counts thousands of updates


def _tensors(examples):
    return ([torch.from_numpy(x) for x, _ in examples], [torch.from_numpy(y) for _, y in examples])


class GeneratedBatches:
    """A training stream of freshly drawn examples: batch ``step`` is a pure function of (seed, step)."""

    def __init__(self, generator: str, batch_size: int, seed: int, lengths: tuple[int, int],
                 repeats: tuple[int, int], bits: int):
        self.generator, self.batch_size, self.seed = generator, batch_size, seed
        self.lengths, self.repeats, self.bits = lengths, repeats, bits
        self.chunks_per_epoch = BATCHES_PER_EPOCH

    def chunk(self, step: int, rows: slice | None = None) -> Batch:
        examples = draw_examples(self.generator, self.batch_size, [self.seed, step], self.lengths, self.repeats,
                                 self.bits)
        inputs, targets = _tensors(examples)
        batch = collate(inputs, targets, target_pad=math.nan)
        return batch if rows is None else batch.rows(rows)


class BitErrors:
    """Collects bit errors per sequence over an evaluation."""

    def __init__(self):
        self.errors: list[torch.Tensor] = []

    def add(self, prediction, batch, model) -> None:
        self.errors.append(bit_errors(prediction, batch.targets).cpu())

    def metrics(self) -> dict:
        e = torch.cat(self.errors).double()
        return {"bit_errors": float(e.mean()), "exact": float((e == 0).double().mean())}


class MemoryTask(Task):
    """Shared by the three generated tasks: ``generator`` names one of :data:`rnnkit.data.algorithmic.TASKS`."""

    generator = ""

    def __init__(self, config: RunConfig, run_dir: Path | None = None, with_data: bool = True):
        self.config = config
        d = config.data
        spec = GENERATORS[self.generator]
        self.bits = d.bits or spec.default_bits
        self.input_size, self.output_size = spec.sizes(self.bits)
        lo, hi = spec.default_lengths
        self.lengths = (d.min_length or lo, d.max_length or max(hi, d.min_length))
        self.repeats = (d.min_repeats, d.max_repeats)
        if self.lengths[0] < spec.min_length or self.lengths[1] < self.lengths[0]:
            raise ValueError(f"data.task={self.name}: data.min_length / data.max_length must satisfy "
                             f"{spec.min_length} <= min <= max; got {self.lengths[0]} and {self.lengths[1]}")
        if self.repeats[1] < self.repeats[0]:
            raise ValueError(f"data.task={self.name}: data.min_repeats {self.repeats[0]} is above data.max_repeats "
                             f"{self.repeats[1]}")
        if d.path:
            raise ValueError(f"data.task={self.name} generates its data; drop data.path ({d.path!r}) and set "
                             "data.min_length / data.max_length (and data.min_repeats / max_repeats) instead")
        what = "items" if self.generator == "recall" else "steps"
        reps = f", {self.repeats[0]}-{self.repeats[1]} repeats" if self.generator == "repeat-copy" else ""
        self.description = (f"{self.generator} of {self.bits}-bit vectors, {self.lengths[0]}-{self.lengths[1]} "
                            f"{what}{reps}")
        if not with_data:
            return
        seed = config.train.seed
        self.train = GeneratedBatches(self.generator, d.batch_size, seed, self.lengths, self.repeats, self.bits)
        count = d.num_examples or DEFAULT_VAL_EXAMPLES
        # [seed, 0, 1] is a different stream from every training batch's [seed, step]
        inputs, targets = _tensors(draw_examples(self.generator, count, [seed, 0, 1], self.lengths, self.repeats,
                                                 self.bits))
        self.val = ExampleBatches(inputs, targets, min(d.batch_size, count), seed=seed, target_pad=math.nan)
        self.description += f"; fresh training batches of {d.batch_size}, {count} validation sequences"

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path, with_data: bool = True) -> MemoryTask:
        return cls(config, run_dir, with_data=with_data)

    def build_model(self) -> nn.Module:
        m = self.config.model
        return BitSequenceModel(self.input_size, self.output_size, m.hidden_size, m.num_layers, cell=m.cell,
                                dropout=m.dropout, **recurrent_kwargs(m))

    def collector(self) -> BitErrors:
        return BitErrors()

    def example(self, length: int, repeats: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """One example of this task (inputs, targets) with L = ``length`` (and R = ``repeats``)."""
        return draw_examples(self.generator, 1, seed, (length, length), (repeats, repeats), self.bits)[0]


class CopyTask(MemoryTask):
    name = "ntm-copy"
    generator = "copy"


class RepeatCopyTask(MemoryTask):
    name = "ntm-repeat-copy"
    generator = "repeat-copy"


class RecallTask(MemoryTask):
    name = "ntm-recall"
    generator = "recall"
