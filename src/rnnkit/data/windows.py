"""Forecasting data: sliding windows with horizon-h targets, splits by time, scaling fitted on training data.

A series (N, F) becomes inputs (M, T, F) (the last T steps) and targets (M, h, F_target) (the next h values of
the target columns). Splits cut the time axis (train, then validation, then test) and never shuffle across a
cut; the scaler sees the training part only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def make_windows(series: np.ndarray, input_length: int, horizon: int,
                 target_columns: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All windows of ``series`` (N, F): inputs (M, input_length, F) and targets (M, horizon, len(targets))."""
    series = np.asarray(series, float)
    series = series[:, None] if series.ndim == 1 else series
    n = len(series)
    M = n - input_length - horizon + 1
    if M < 1:
        raise ValueError(f"a series of {n} steps has no window of {input_length} inputs + {horizon} targets")
    cols = list(range(series.shape[1])) if target_columns is None else list(target_columns)
    idx = np.arange(M)[:, None]
    inputs = series[idx + np.arange(input_length)]
    targets = series[idx + input_length + np.arange(horizon)][..., cols]
    return inputs, targets


def split_by_time(n: int, val_fraction: float = 0.1, test_size: int = 0) -> tuple[slice, slice, slice]:
    """Train, validation and test ranges in time order: the last ``test_size`` steps are the test part, the
    ``val_fraction`` of the rest before them validation."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1); got {val_fraction}")
    rest = n - test_size
    n_val = max(1, int(rest * val_fraction))
    if rest - n_val < 2:
        raise ValueError(f"{n} steps are too few for a validation part of {n_val} and a test part of {test_size}")
    return slice(0, rest - n_val), slice(rest - n_val, rest), slice(rest, n)


@dataclass
class StandardScaler:
    """(x - mean) / std per column, with statistics from the data passed to ``fit`` (the training part)."""

    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def fit(self, data) -> StandardScaler:
        data = np.asarray(data, float)
        self.mean = data.mean(0)
        std = data.std(0)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def transform(self, data) -> np.ndarray:
        return (np.asarray(data, float) - self.mean) / self.std

    def inverse(self, data, columns: list[int] | None = None) -> np.ndarray:
        cols = slice(None) if columns is None else columns
        return np.asarray(data, float) * self.std[cols] + self.mean[cols]
