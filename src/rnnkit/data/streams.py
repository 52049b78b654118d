"""Batching a long sequence for truncated BPTT: cut it into B parallel rows, read the rows in chunks of k
steps, carry the state from chunk to chunk (torch's word_language_model ``batchify``; Keras
``stateful=True`` without its fixed batch size).

Row b of chunk i continues row b of chunk i - 1, so the state at the end of one chunk is the right start
for the next. Each epoch starts at a random offset in [0, k) (drawn from the seed and the epoch number),
so chunk boundaries move between epochs; the order of chunks is a pure function of (seed, step), which is
what makes a resumed run repeat an uninterrupted one exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .batches import IGNORE_INDEX, Batch


class StreamBatches:
    """A sequence ``data`` (N, ...) as chunks of (B, k) for stateful training and evaluation.

    Chunks are :class:`~rnnkit.data.batches.Batch` es whose inputs and targets are (B, k, ...) (targets: the next
    element of every input). ``cover_all=True`` (token streams scored on a whole file) makes ``sequential`` cover
    every target exactly once: the rows are ceil((N - 1) / B) long and the tail is padded with IGNORE_INDEX
    targets, which the losses skip.
    """

    def __init__(self, data: Tensor, batch_size: int, seq_length: int, seed: int = 0, shuffle_offset: bool = True,
                 cover_all: bool = False, split: str = "training"):
        if seq_length < 1 or batch_size < 1:
            raise ValueError(f"batch_size and seq_length must be >= 1; got {batch_size}, {seq_length}")
        self.data, self.batch_size, self.seq_length = data, batch_size, seq_length
        self.seed, self.shuffle_offset, self.cover_all = seed, shuffle_offset, cover_all
        if cover_all and (shuffle_offset or data.dtype.is_floating_point):
            raise ValueError("cover_all is for evaluating token streams (class-id data, no offset shuffling)")
        slack = seq_length - 1 if shuffle_offset else 0
        self.row_length = (len(data) - 1 - slack) // batch_size
        if cover_all:
            self.row_length = max(1, -(-(len(data) - 1) // batch_size))
        elif self.row_length < seq_length:
            need = batch_size * seq_length + 1 + slack
            fix = "a larger data.val_fraction or a smaller data.seq_length" if split == "validation" else (
                "a smaller data.batch_size or data.seq_length")
            raise ValueError(f"the {split} split has {len(data)} steps, too few for batch_size={batch_size} x "
                             f"seq_length={seq_length}: at least {need} needed. Use {fix}")
        self.chunks_per_epoch = self.row_length // seq_length

    @classmethod
    def validation(cls, data: Tensor, batch_size: int, seq_length: int) -> StreamBatches:
        """Validation chunks of ``data``: in order from its start, with as many rows (up to ``batch_size``) as
        it has room for."""
        rows = min(batch_size, max(1, (len(data) - 1) // seq_length))
        return cls(data, rows, seq_length, shuffle_offset=False, split="validation")

    def _offset(self, epoch: int) -> int:
        if not self.shuffle_offset:
            return 0
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return int(torch.randint(self.seq_length, (1,), generator=g))

    def _rows(self, offset: int, shift: int) -> Tensor:
        n = self.batch_size * self.row_length
        part = self.data[offset + shift: offset + shift + n]
        return part.reshape(self.batch_size, self.row_length, *self.data.shape[1:])

    def chunk(self, step: int, rows: slice | None = None) -> Batch:
        """The training chunk of update ``step`` (0-based); ``rows`` selects this process's share (DDP)."""
        epoch, i = divmod(step, self.chunks_per_epoch)
        offset = self._offset(epoch)
        cut = slice(i * self.seq_length, (i + 1) * self.seq_length)
        rows = rows or slice(None)
        return Batch(self._rows(offset, 0)[rows, cut], self._rows(offset, 1)[rows, cut], starts_epoch=i == 0)

    def epoch_of(self, step: int) -> int:
        return step // self.chunks_per_epoch

    def sequential(self, max_chunks: int = 0):
        """Every chunk in order from offset 0, the last one possibly shorter (evaluation)."""
        if not self.cover_all:
            inputs, targets = self._rows(0, 0), self._rows(0, 1)
        else:  # every target once: pad the data to B rows of row_length, targets with IGNORE_INDEX
            n = self.batch_size * self.row_length
            data = torch.cat([self.data, self.data.new_zeros(n + 1 - len(self.data))])
            inputs = data[:n].view(self.batch_size, self.row_length)
            targets = data[1:].clone()
            targets[len(self.data) - 1:] = IGNORE_INDEX
            targets = targets.view(self.batch_size, self.row_length)
        count = -(-self.row_length // self.seq_length)
        for i in range(count if max_chunks <= 0 else min(count, max_chunks)):
            cut = slice(i * self.seq_length, (i + 1) * self.seq_length)
            yield Batch(inputs[:, cut], targets[:, cut], starts_epoch=i == 0)
