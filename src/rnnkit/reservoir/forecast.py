"""Forecasting a series with an echo state network: fit one-step-ahead on the training part (teacher forcing),
then score one-step predictions and free runs (each output fed back as the next input) on later parts."""

from __future__ import annotations

import numpy as np
import torch

from .esn import ESN, nrmse
from .reservoir import Reservoir

RESERVOIR_KEYS = ("spectral_radius", "leak", "input_scaling", "connectivity", "input_connectivity", "bias_scaling")


def scale_to_unit(series, train_end: int) -> tuple[np.ndarray, tuple[float, float]]:
    """The series mapped to [-1, 1] by the training part's minimum and maximum (and those two numbers)."""
    series = np.asarray(series, float)
    if not np.isfinite(series).all():
        raise ValueError("the series holds NaN or inf; fill or drop them first")
    lo, hi = float(series[:train_end].min()), float(series[:train_end].max())
    if hi <= lo:
        raise ValueError("the training part of the series is constant; nothing to learn")
    return 2 * (series - lo) / (hi - lo) - 1, (lo, hi)


def fit_series(x: np.ndarray, end: int, units: int = 500, washout: int = 100, ridge: float | str = 1e-6,
               include_input: bool = False, seed: int = 0, **reservoir) -> ESN:
    """An ESN trained to map x_t to x_{t+1} over x[:end] (after ``washout`` steps); ``reservoir``: the
    hyperparameters of :class:`Reservoir` (``RESERVOIR_KEYS``)."""
    if end - 1 <= washout:
        raise ValueError(f"the training part has {end} points; the washout of {washout} leaves nothing to fit")
    x = np.asarray(x, float).reshape(-1, 1)
    kwargs = {k: v for k, v in reservoir.items() if k in RESERVOIR_KEYS}
    esn = ESN(Reservoir(1, units, seed=seed, **kwargs), 1, include_input=include_input)
    return esn.fit(x[:end - 1], x[1:end], washout=washout, ridge=ridge)


def teacher_forced_states(esn: ESN, x: np.ndarray, end: int):
    """Reservoir states after reading x[:t] for every t ≤ end (index t - 1), from the zero state."""
    states, _ = esn.reservoir(np.asarray(x, float).reshape(-1, 1)[:end])
    return states[0]


def free_runs(esn: ESN, x: np.ndarray, starts, horizon: int) -> np.ndarray:
    """(len(starts), horizon) free-running forecasts: from the state after reading x[:s] (teacher forced), the
    outputs for x[s + 1 .. s + horizon], each fed back as the next input."""
    x = np.asarray(x, float).reshape(-1, 1)
    starts = list(starts)
    if max(starts) + horizon >= len(x) or min(starts) < 1:
        raise ValueError(f"free runs of {horizon} steps from {min(starts)}..{max(starts)} need x up to "
                         f"{max(starts) + horizon}; the series has {len(x)} points")
    states = teacher_forced_states(esn, x, max(starts))
    runs = [esn.generate(x[s:s + 1], horizon, states[s - 1:s])[0, :, 0] for s in starts]
    return torch.stack(runs).numpy()


def free_run_nrmse(esn: ESN, x: np.ndarray, starts, horizon: int) -> dict[str, float]:
    """Jaeger & Haas (2004)'s NRMSE at step ``horizon`` over the starts (the error of the last step only), and
    the NRMSE over all ``horizon`` steps of every run."""
    x = np.asarray(x, float).ravel()
    runs = free_runs(esn, x, starts, horizon)
    actual = np.stack([x[s + 1:s + 1 + horizon] for s in starts])
    sigma = np.std(x)
    return {f"nrmse_at_{horizon}": float(np.sqrt(np.mean((runs[:, -1] - actual[:, -1]) ** 2)) / sigma),
            "nrmse_window": float(np.sqrt(np.mean((runs - actual) ** 2)) / sigma)}


def one_step(esn: ESN, x: np.ndarray, start: int, end: int) -> tuple[np.ndarray, float]:
    """One-step predictions of x[start + 1 .. end] (the reservoir reads the true values from the beginning of
    the series) and their NRMSE."""
    x = np.asarray(x, float).reshape(-1, 1)
    states = teacher_forced_states(esn, x, end)
    features = states[start:end]
    if esn.include_input:
        features = torch.cat([features, torch.from_numpy(x[start:end]).to(features.dtype)], -1)
    predicted = esn.readout(features)[:, 0].numpy()
    return predicted, nrmse(x[start + 1:end + 1, 0], predicted)
