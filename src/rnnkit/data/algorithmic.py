"""Generated algorithmic tasks for memory-augmented networks (Graves et al. 2014 §4): binary vectors in, binary
vectors out, drawn from a seed so that every run, resumed or not, sees the same examples.

Every example is ``(inputs (T, D), targets (T, F))``: float 0/1 arrays. Target rows are NaN while the network is
only reading (no output is asked for), so a loss or a bit count reads the output phase alone.

* ``copy`` (Graves §4.1): L random ``bits``-wide vectors, then a delimiter step (an extra input channel); the
  network must then output the L vectors, with zero input. T = 2L + 1; D = bits + 1; F = bits.
* ``repeat-copy`` (§4.2): L vectors, then one step whose delimiter channel is 1 and whose count channel carries
  the number of repeats R as R / 10; the network outputs the L vectors R times and then raises an end-marker
  output channel for one step. T = L + 1 + L·R + 1; D = bits + 2; F = bits + 1.
* ``recall`` (associative recall, §4.3): L items of 3 ``bits``-wide vectors, each item opened by an item-delimiter
  step; then a query-delimiter step, one of the items (not the last), and a query-delimiter step again; the
  network must output the item that followed the query. T = 4L + 2 + 3 + 3; D = bits + 2; F = bits.

``length`` is L for copy and repeat copy, and the number of items for recall.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

REPEAT_SCALE = 10.0  # the repeat count R arrives as R / 10 (a fixed scale, so unseen counts extrapolate)
ITEM_STEPS = 3  # vectors per associative-recall item (Graves §4.3)


def _bits(rng: np.random.Generator, steps: int, width: int) -> np.ndarray:
    return rng.integers(0, 2, size=(steps, width)).astype(np.float32)


def copy_example(rng: np.random.Generator, length: int, bits: int = 8, repeats: int = 1):
    """One copy example: (inputs (2L+1, bits+1), targets (2L+1, bits), NaN before the output phase)."""
    seq = _bits(rng, length, bits)
    T = 2 * length + 1
    x = np.zeros((T, bits + 1), np.float32)
    x[:length, :bits] = seq
    x[length, bits] = 1.0
    y = np.full((T, bits), np.nan, np.float32)
    y[length + 1:] = seq
    return x, y


def repeat_copy_example(rng: np.random.Generator, length: int, bits: int = 8, repeats: int = 1):
    """One repeat-copy example: the sequence, a count step, R copies and an end marker."""
    seq = _bits(rng, length, bits)
    T = length + 1 + length * repeats + 1
    x = np.zeros((T, bits + 2), np.float32)
    x[:length, :bits] = seq
    x[length, bits] = 1.0
    x[length, bits + 1] = repeats / REPEAT_SCALE
    y = np.full((T, bits + 1), np.nan, np.float32)
    out = length + 1
    y[out:] = 0.0
    y[out:out + length * repeats, :bits] = np.tile(seq, (repeats, 1))
    y[-1, bits] = 1.0
    return x, y


def recall_example(rng: np.random.Generator, length: int, bits: int = 6, repeats: int = 1):
    """One associative-recall example with ``length`` ≥ 2 items: the item after the queried one is the answer."""
    if length < 2:
        raise ValueError(f"associative recall needs at least 2 items (a query and the item after it); got {length}")
    items = [_bits(rng, ITEM_STEPS, bits) for _ in range(length)]
    query = int(rng.integers(0, length - 1))
    T = length * (ITEM_STEPS + 1) + 1 + ITEM_STEPS + 1 + ITEM_STEPS
    x = np.zeros((T, bits + 2), np.float32)
    t = 0
    for item in items:
        x[t, bits] = 1.0  # item delimiter
        x[t + 1:t + 1 + ITEM_STEPS, :bits] = item
        t += ITEM_STEPS + 1
    x[t, bits + 1] = 1.0  # query delimiter
    x[t + 1:t + 1 + ITEM_STEPS, :bits] = items[query]
    t += ITEM_STEPS + 1
    x[t, bits + 1] = 1.0
    y = np.full((T, bits), np.nan, np.float32)
    y[t + 1:] = items[query + 1]
    return x, y


@dataclass(frozen=True)
class AlgorithmicTask:
    make: Callable  # (rng, length, bits, repeats) -> (inputs, targets)
    input_extra: int  # input channels beyond the bits
    output_extra: int  # output channels beyond the bits
    default_bits: int
    default_lengths: tuple[int, int]  # the usual training range of L
    min_length: int = 1

    def sizes(self, bits: int) -> tuple[int, int]:
        """(input width D, output width F)."""
        return bits + self.input_extra, bits + self.output_extra


TASKS: dict[str, AlgorithmicTask] = {
    "copy": AlgorithmicTask(copy_example, 1, 0, 8, (1, 20)),
    "repeat-copy": AlgorithmicTask(repeat_copy_example, 2, 1, 8, (1, 10)),
    "recall": AlgorithmicTask(recall_example, 2, 0, 6, (2, 6), min_length=2),
}


def draw_examples(name: str, count: int, seed: int, lengths: tuple[int, int], repeats: tuple[int, int] = (1, 1),
                  bits: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` examples of task ``name`` with L uniform in ``lengths`` (inclusive) and, for repeat copy, R uniform
    in ``repeats``; a pure function of its arguments."""
    task = TASKS[name]
    lo, hi = lengths
    if lo < task.min_length or hi < lo:
        raise ValueError(f"{name}: lengths must satisfy {task.min_length} <= min <= max; got {lo}..{hi}")
    if repeats[0] < 1 or repeats[1] < repeats[0]:
        raise ValueError(f"{name}: repeats must satisfy 1 <= min <= max; got {repeats[0]}..{repeats[1]}")
    rng = np.random.default_rng(seed)
    bits = bits or task.default_bits
    out = []
    for _ in range(count):
        length = int(rng.integers(lo, hi + 1))
        r = int(rng.integers(repeats[0], repeats[1] + 1))
        out.append(task.make(rng, length, bits, r))
    return out
