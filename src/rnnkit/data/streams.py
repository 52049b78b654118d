"""Batching a long sequence for truncated BPTT: cut it into B parallel rows, read the rows in chunks of k
steps, carry the state from chunk to chunk (torch's word_language_model ``batchify``; Keras
``stateful=True`` without its fixed batch size).

Row b of chunk i continues row b of chunk i - 1, so the state at the end of one chunk is the right start
for the next. Each epoch starts at a random offset in [0, k) (drawn from the seed and the epoch number),
so chunk boundaries move between epochs; the order of chunks is a pure function of (seed, step), which is
what makes a resumed run repeat an uninterrupted one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Chunk:
    inputs: Tensor  # (B, k, ...)
    targets: Tensor  # (B, k, ...): the next element of every input
    starts_epoch: bool  # the carried state must be reset before this chunk


class StreamBatches:
    """A sequence ``data`` (N, ...) as chunks of (B, k) for stateful training and evaluation."""

    def __init__(self, data: Tensor, batch_size: int, seq_length: int, seed: int = 0, shuffle_offset: bool = True):
        if seq_length < 1 or batch_size < 1:
            raise ValueError(f"batch_size and seq_length must be >= 1; got {batch_size}, {seq_length}")
        self.data, self.batch_size, self.seq_length = data, batch_size, seq_length
        self.seed, self.shuffle_offset = seed, shuffle_offset
        slack = seq_length - 1 if shuffle_offset else 0
        self.row_length = (len(data) - 1 - slack) // batch_size
        if self.row_length < seq_length:
            need = batch_size * seq_length + 1 + slack
            raise ValueError(f"{len(data)} steps of data are too few for batch_size={batch_size} x seq_length="
                             f"{seq_length}: at least {need} needed. Use a smaller batch or sequence length")
        self.chunks_per_epoch = self.row_length // seq_length

    def _offset(self, epoch: int) -> int:
        if not self.shuffle_offset:
            return 0
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return int(torch.randint(self.seq_length, (1,), generator=g))

    def _rows(self, offset: int, shift: int) -> Tensor:
        n = self.batch_size * self.row_length
        part = self.data[offset + shift: offset + shift + n]
        return part.reshape(self.batch_size, self.row_length, *self.data.shape[1:])

    def chunk(self, step: int, rows: slice | None = None) -> Chunk:
        """The training chunk of update ``step`` (0-based); ``rows`` selects this process's share (DDP)."""
        epoch, i = divmod(step, self.chunks_per_epoch)
        offset = self._offset(epoch)
        cut = slice(i * self.seq_length, (i + 1) * self.seq_length)
        rows = rows or slice(None)
        return Chunk(self._rows(offset, 0)[rows, cut], self._rows(offset, 1)[rows, cut], i == 0)

    def epoch_of(self, step: int) -> int:
        return step // self.chunks_per_epoch

    def sequential(self, max_chunks: int = 0):
        """Every chunk in order from offset 0, the last one possibly shorter (evaluation)."""
        count = -(-self.row_length // self.seq_length)
        for i in range(count if max_chunks <= 0 else min(count, max_chunks)):
            cut = slice(i * self.seq_length, (i + 1) * self.seq_length)
            yield Chunk(self._rows(0, 0)[:, cut], self._rows(0, 1)[:, cut], i == 0)


class IndependentBatches:
    """Independent sequences (N, T, ...) with one target each (many-to-one) or per step (many-to-many), as
    shuffled batches; every batch starts from a fresh state. The same interface as :class:`StreamBatches`."""

    def __init__(self, inputs: Tensor, targets: Tensor, batch_size: int, seed: int = 0):
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} input sequences but {len(targets)} targets")
        if len(inputs) < batch_size:
            raise ValueError(f"{len(inputs)} sequences are fewer than batch_size={batch_size}")
        self.inputs, self.targets, self.batch_size, self.seed = inputs, targets, batch_size, seed
        self.chunks_per_epoch = len(inputs) // batch_size

    def chunk(self, step: int, rows: slice | None = None) -> Chunk:
        epoch, i = divmod(step, self.chunks_per_epoch)
        order = torch.randperm(len(self.inputs), generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        pick = order[i * self.batch_size:(i + 1) * self.batch_size][rows or slice(None)]
        return Chunk(self.inputs[pick], self.targets[pick], True)

    def sequential(self, max_chunks: int = 0):
        count = -(-len(self.inputs) // self.batch_size)
        for i in range(count if max_chunks <= 0 else min(count, max_chunks)):
            cut = slice(i * self.batch_size, (i + 1) * self.batch_size)
            yield Chunk(self.inputs[cut], self.targets[cut], True)
