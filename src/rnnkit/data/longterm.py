"""Generated long-term dependency tasks — the benchmarks of the vanishing-gradient literature — drawn from a seed,
each with the loss of the best input-blind guess (the baseline a model must beat to show it remembers anything).

* Adding problem, modern form (Le, Jaitly & Hinton 2015; Arjovsky et al. 2016): T steps of (value ~ U[0, 1],
  marker); exactly two markers are 1, one in each half; the target is the sum of the two marked values. Predicting
  the mean 1 costs MSE Var(X₁ + X₂) = 2/12 ≈ 0.167.
* Adding problem, original form (Hochreiter & Schmidhuber 1997, experiment 4): values ~ U[−1, 1]; the marker is 1 at
  one step among the first ten and at one step before T/2 (a different one), −1 at the first and last steps (where
  not marked), 0 elsewhere; the target is 0.5 + (X₁ + X₂)/4, and a sequence counts as solved when the absolute error
  is below 0.04. Predicting 0.5 costs MSE Var((X₁ + X₂)/4) = 1/24 ≈ 0.0417.
* Copy memory (Arjovsky et al. 2016 §4.2): symbols 0-9, 0 the blank, 9 the delimiter: ten data symbols from 1-8,
  T − 1 blanks, the delimiter, ten blanks (T + 20 steps); the target is T + 10 blanks and then the ten data symbols.
  Emitting blanks and then a uniform guess over the 8 symbols costs 10 · log 8 / (T + 20) nats a step.
* Pixel-by-pixel digits: scikit-learn's bundled 8×8 digits (the fixed split of ``rnnkit.tasks.images``) read as 64
  steps of one grey value, row by row, or in a fixed random order (``permuted``). The 28×28 MNIST of Le et al. is not
  shipped with Python or a package here, so this is the 8×8 version, not upsampled: 64 steps, not 784.
"""

from __future__ import annotations

import math

import numpy as np

COPY_SYMBOLS, COPY_LENGTH = 8, 10  # data symbols 1..8, ten of them
BLANK, DELIMITER = 0, 9
ADDING_FORMS = ("modern", "original")
SOLVED_ERROR = 0.04  # Hochreiter & Schmidhuber's criterion for the original adding problem


def adding_problem(rng: np.random.Generator, count: int, T: int, form: str = "modern") -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """``count`` adding sequences of T steps: (inputs (count, T, 2) float32 [value, marker], targets (count,))."""
    if form not in ADDING_FORMS:
        raise ValueError(f"adding form must be one of {ADDING_FORMS}; got {form!r}")
    if T < (2 if form == "modern" else 12):
        raise ValueError(f"the {form} adding problem needs T >= {2 if form == 'modern' else 12}; got {T}")
    rows = np.arange(count)
    x = np.zeros((count, T, 2), np.float32)
    if form == "modern":
        x[:, :, 0] = rng.uniform(0.0, 1.0, (count, T))
        half = T // 2
        first, second = rng.integers(0, half, count), rng.integers(half, T, count)
        x[rows, first, 1] = x[rows, second, 1] = 1.0
        y = x[rows, first, 0] + x[rows, second, 0]
        return x, y.astype(np.float32)
    x[:, :, 0] = rng.uniform(-1.0, 1.0, (count, T))
    x[:, 0, 1] = x[:, -1, 1] = -1.0
    first = rng.integers(0, 10, count)
    second = rng.integers(0, T // 2 - 1, count)
    second = np.where(second == first, (second + 1) % (T // 2 - 1), second)  # two different steps
    x[rows, first, 1] = x[rows, second, 1] = 1.0
    y = 0.5 + (x[rows, first, 0] + x[rows, second, 0]) / 4.0
    return x, y.astype(np.float32)


def adding_baseline(form: str = "modern") -> float:
    """MSE of the best constant prediction: Var(X₁ + X₂) = 1/6 (modern), Var((X₁ + X₂)/4) = 1/24 (original)."""
    return 2 / 12 if form == "modern" else 2 * (1 / 3) / 16


def copy_memory(rng: np.random.Generator, count: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` copy-memory sequences with a blank stretch of T: (inputs (count, T + 20) int64 symbols, targets
    (count, T + 20) int64)."""
    if T < 1:
        raise ValueError(f"copy memory needs a blank stretch T >= 1; got {T}")
    data = rng.integers(1, COPY_SYMBOLS + 1, (count, COPY_LENGTH))
    x = np.full((count, T + 2 * COPY_LENGTH), BLANK, np.int64)
    x[:, :COPY_LENGTH] = data
    x[:, COPY_LENGTH + T - 1] = DELIMITER
    y = np.full_like(x, BLANK)
    y[:, -COPY_LENGTH:] = data
    return x, y


def copy_memory_baseline(T: int) -> float:
    """Cross-entropy per step of blanks and then a uniform guess over the 8 symbols: 10 · log 8 / (T + 20)."""
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (T + 2 * COPY_LENGTH)


def pixel_digits(part: str = "digits", permuted: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits (``part`` ``digits`` or ``digits-test`` of the fixed split) as (inputs (N, 64, 1)
    float32 in [0, 1], labels (N,) int64), pixels row by row or, ``permuted``, in one fixed random order drawn from
    ``seed`` (the same for every image and both parts)."""
    from ..tasks.images import load_digits_split

    images, labels = load_digits_split(part)
    x = np.stack([image.reshape(64) for image in images])
    if permuted:
        x = x[:, np.random.default_rng(seed).permutation(64)]
    return x[:, :, None].astype(np.float32), np.array([int(label) for label in labels], np.int64)
