"""Datasets of independent examples as padded batches: the one batch type every task's model and the trainer see.

A :class:`Batch` holds the padded inputs, their ``lengths`` (the sequence layer's ``lengths=`` path: no sorting,
no packing), the targets (padded with :data:`IGNORE_INDEX` where a target exists per step) and any side input
as a named field (``future`` covariates, an encoder's ``source``, ``images``) — never packed into the time
axis. The trainer only moves a batch to the device, counts it and calls
``model(batch.inputs, batch.targets, state, **batch.model_inputs())``.

:class:`ExampleBatches` draws batches of similar length (a length-bucketing sampler: shuffle, sort within pools
of ``pool`` batches, shuffle the batches), as a pure function of (seed, epoch), so a resumed run sees the same
batches as an uninterrupted one (torchtext's ``BucketIterator``, fairseq's length-sorted batches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

IGNORE_INDEX = -100  # a padded per-step class target: ignored by the losses (torch's cross_entropy default)


@dataclass
class Batch:
    inputs: Tensor  # (B, T, ...) padded; token ids (B, T) or features (B, T, D)
    targets: Tensor | None  # (B,) one per example, or (B, T, ...) one per step (padding: IGNORE_INDEX)
    lengths: Tensor | None = None  # (B,) real steps of each row; None: every row is full
    fields: dict[str, Tensor] = field(default_factory=dict)  # named side inputs, batch first
    starts_epoch: bool = True  # the carried state must be reset before this batch (streams: first chunk)
    index: Tensor | None = None  # (B,) positions of the examples in their dataset (predictions keep file order)

    def to(self, device) -> Batch:
        """The whole batch on ``device`` (lengths stay on the CPU, where the sequence layer reads them)."""
        def move(t):
            return None if t is None else t.to(device, non_blocking=True)

        return replace(self, inputs=move(self.inputs), targets=move(self.targets),
                       fields={k: move(v) for k, v in self.fields.items()})

    def rows(self, rows: slice) -> Batch:
        """This process's share of the rows (data-parallel training)."""
        def take(t):
            return None if t is None else t[rows]

        return replace(self, inputs=self.inputs[rows], targets=take(self.targets), lengths=take(self.lengths),
                       fields={k: v[rows] for k, v in self.fields.items()}, index=take(self.index))

    def model_inputs(self) -> dict:
        """Keyword arguments for the model besides (inputs, targets, state): ``lengths`` when padded, and the fields."""
        return {**({} if self.lengths is None else {"lengths": self.lengths}), **self.fields}

    @property
    def num_steps(self) -> int:
        """Real (unpadded) input steps in the batch, for throughput."""
        if self.lengths is not None:
            return int(self.lengths.sum())
        return self.inputs.shape[0] * (self.inputs.shape[1] if self.inputs.dim() > 1 else 1)

    @property
    def num_targets(self) -> int:
        """Targets that count in the loss: class targets other than IGNORE_INDEX; value targets per (row, step)
        whose values are all finite (NaN: no target at that step)."""
        t = self.targets
        if not t.dtype.is_floating_point:
            return int((t != IGNORE_INDEX).sum())
        if t.dim() > 1:  # (row, step) pairs whose target row is finite: NaN marks a step with no target
            finite = torch.isfinite(t)
            return int((finite.flatten(2).all(-1) if t.dim() > 2 else finite).sum())
        return t.shape[0]


class OnDevice:
    """``batches`` (anything with ``sequential()``) read onto ``device``, batch by batch; every other attribute is
    the wrapped object's (a task's ``predict`` reads e.g. its trees)."""

    def __init__(self, batches, device):
        self.batches, self.device = batches, torch.device(device)

    def sequential(self, max_chunks: int = 0):
        for batch in self.batches.sequential(max_chunks):
            yield batch.to(self.device)

    def __getattr__(self, name):
        return getattr(self.batches, name)


def pad_sequences(sequences: Sequence[Tensor], value: float = 0) -> tuple[Tensor, Tensor]:
    """Tensors (T_i, ...) → (N, T_max, ...) padded with ``value``, and lengths (N,)."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("padding needs at least one sequence and no empty sequences")
    lengths = torch.tensor([len(s) for s in sequences])
    first = sequences[0]
    out = torch.full((len(sequences), int(lengths.max()), *first.shape[1:]), value, dtype=first.dtype)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out, lengths


def collate(inputs: Sequence[Tensor], targets: Sequence, fields: dict[str, Sequence[Tensor]] | None = None,
            pad_id: int = 0, index: Tensor | None = None, target_pad: float = 0.0) -> Batch:
    """Examples → one :class:`Batch`. Inputs are padded with ``pad_id``; per-step targets (tensors with a time
    axis) with IGNORE_INDEX (class ids) or ``target_pad`` (values; NaN: padded steps have no target); per-example
    targets are stacked. ``lengths`` is None when every example has the same length, so the sequence layer takes
    its fastest path."""
    x, lengths = pad_sequences(inputs, pad_id)
    if targets is None:
        y = None
    elif isinstance(targets[0], Tensor) and targets[0].dim() > 0:
        y, _ = pad_sequences(targets, target_pad if targets[0].dtype.is_floating_point else IGNORE_INDEX)
    else:
        y = torch.as_tensor(targets) if not isinstance(targets[0], Tensor) else torch.stack(list(targets))
    uniform = bool((lengths == lengths[0]).all())
    side = {name: torch.stack(list(values)) for name, values in (fields or {}).items()}
    return Batch(x, y, None if uniform else lengths, side, True, index)


class ExampleBatches:
    """A dataset of independent examples as padded batches of similar length.

    ``inputs``: a list of tensors (T_i, ...) (token ids or features); ``targets``: one per example (an int, a
    tensor of class ids or values per step); ``fields``: named side inputs, one tensor per example.

    Training batches (``chunk(step)``): every epoch shuffles the examples with a generator seeded by (seed, epoch),
    sorts each pool of ``pool`` × batch_size examples by length, cuts them into batches and shuffles the batches;
    ``len // batch_size`` batches an epoch (the remainder, drawn anew each epoch, waits for the next).
    ``bucket=False`` keeps the plain shuffled order. Evaluation batches (``sequential()``) cover every example
    exactly once, sorted by length, each with the examples' ``index``.
    """

    def __init__(self, inputs: Sequence[Tensor], targets: Sequence, batch_size: int, seed: int = 0,
                 fields: dict[str, Sequence[Tensor]] | None = None, bucket: bool = True, pool: int = 50,
                 pad_id: int = 0, target_pad: float = 0.0):
        if len(inputs) == 0:
            raise ValueError("the dataset has no examples")
        if targets is not None and len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} input sequences but {len(targets)} targets")
        for name, values in (fields or {}).items():
            if len(values) != len(inputs):
                raise ValueError(f"{len(inputs)} input sequences but {len(values)} values of field {name!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if len(inputs) < batch_size:
            raise ValueError(f"{len(inputs)} examples are fewer than batch_size={batch_size}; lower data.batch_size")
        self.inputs, self.targets, self.fields = list(inputs), targets, dict(fields or {})
        self.batch_size, self.seed, self.bucket, self.pool, self.pad_id = batch_size, seed, bucket, pool, pad_id
        self.target_pad = target_pad
        self.lengths = torch.tensor([len(x) for x in self.inputs])
        self.chunks_per_epoch = len(self.inputs) // batch_size
        self._epoch_cache: tuple[int, list[Tensor]] | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    def _batch(self, pick: Tensor) -> Batch:
        idx = pick.tolist()
        targets = None if self.targets is None else [self.targets[i] for i in idx]
        fields = {name: [values[i] for i in idx] for name, values in self.fields.items()}
        return collate([self.inputs[i] for i in idx], targets, fields, self.pad_id, pick, self.target_pad)

    def epoch_batches(self, epoch: int) -> list[Tensor]:
        """The example indices of every training batch of ``epoch``, in order."""
        if self._epoch_cache is not None and self._epoch_cache[0] == epoch:
            return self._epoch_cache[1]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.inputs), generator=g)
        B, n = self.batch_size, self.chunks_per_epoch * self.batch_size
        order = order[:n]
        if self.bucket:
            pools = order.split(self.pool * B)
            order = torch.cat([p[torch.argsort(self.lengths[p], stable=True)] for p in pools])
        batches = list(order.split(B))
        if self.bucket:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        self._epoch_cache = (epoch, batches)
        return batches

    def epoch_of(self, step: int) -> int:
        return step // self.chunks_per_epoch

    def chunk(self, step: int, rows: slice | None = None) -> Batch:
        """The training batch of update ``step`` (0-based); ``rows`` selects this process's share (DDP)."""
        epoch, i = divmod(step, self.chunks_per_epoch)
        batch = self._batch(self.epoch_batches(epoch)[i])
        return batch if rows is None else batch.rows(rows)

    def sequential(self, max_chunks: int = 0):
        """Every example once, in batches sorted by length (the last one possibly smaller), for evaluation."""
        order = torch.argsort(self.lengths, stable=True)
        for i, pick in enumerate(order.split(self.batch_size)):
            if max_chunks and i >= max_chunks:
                break
            yield self._batch(pick)
