"""Forecast accuracy metrics (Hyndman & Koehler 2006 for MASE; sMAPE as in the M4 competition)."""

from __future__ import annotations

import numpy as np


def rmse(actual, forecast) -> float:
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    return float(np.sqrt(np.mean((a - f) ** 2)))


def mae(actual, forecast) -> float:
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    return float(np.mean(np.abs(a - f)))


def mase(actual, forecast, history, season: int = 1) -> float:
    """MAE scaled by the in-sample MAE of the (seasonal) naive forecast on ``history``: < 1 beats it."""
    h = np.asarray(history, float)
    if len(h) <= season:
        raise ValueError(f"MASE needs more than season={season} history points; got {len(h)}")
    scale = np.mean(np.abs(h[season:] - h[:-season]))
    if scale == 0:
        raise ValueError("MASE is undefined for a constant history (the naive forecast has zero error)")
    return mae(actual, forecast) / float(scale)


def smape(actual, forecast) -> float:
    """Symmetric MAPE in percent: 200/n Σ |a - f| / (|a| + |f|) (terms with a = f = 0 count as 0)."""
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    denom = np.abs(a) + np.abs(f)
    terms = np.where(denom == 0, 0.0, np.abs(a - f) / np.where(denom == 0, 1.0, denom))
    return float(200.0 * np.mean(terms))


def forecast_metrics(actual, forecast, history, season: int = 1) -> dict:
    return {"rmse": rmse(actual, forecast), "mae": mae(actual, forecast),
            "mase": mase(actual, forecast, history, season), "smape": smape(actual, forecast)}
