"""Naive forecasts: the last value, and the value one season ago."""

from __future__ import annotations

import numpy as np


class SeasonalNaive:
    """ŷ_{T+h} = y_{T+h-m·k}, k the smallest with h ≤ k·m: repeat the last season (m = 1: the last value)."""

    def __init__(self, season: int = 1):
        if season < 1:
            raise ValueError(f"season must be >= 1; got {season}")
        self.season = season
        self.history: np.ndarray | None = None

    def fit(self, history) -> SeasonalNaive:
        history = np.asarray(history, float)
        if len(history) < self.season:
            raise ValueError(f"need at least one season ({self.season} points); got {len(history)}")
        self.history = history
        return self

    def forecast(self, horizon: int) -> np.ndarray:
        last_season = self.history[-self.season:]
        return np.array([last_season[h % self.season] for h in range(horizon)])

    def predict_one_step(self, series) -> np.ndarray:
        """ŷ_t = y_{t-m} for t = m .. len(series)-1 (one-step forecasts along a known series)."""
        s = np.asarray(series, float)
        return s[:-self.season]


class LastValue(SeasonalNaive):
    """ŷ_{T+h} = y_T."""

    def __init__(self):
        super().__init__(1)
