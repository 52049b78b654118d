"""Autoregressive model AR(p) fitted by least squares (seeds 001/002: the linear autoregressive model that
recurrent nets generalise): y_t = c + Σ_{i=1..p} φ_i y_{t-i} + ε_t."""

from __future__ import annotations

import numpy as np


def lag_matrix(series: np.ndarray, p: int) -> np.ndarray:
    """Rows [1, y_{t-1}, ..., y_{t-p}] for t = p .. n-1."""
    n = len(series)
    cols = [np.ones(n - p)] + [series[p - i:n - i] for i in range(1, p + 1)]
    return np.column_stack(cols)


class ARModel:
    """AR(p) with intercept, by ordinary least squares (the conditional MLE, as statsmodels ``AutoReg``).

    Attributes after ``fit``: ``params`` = [c, φ_1, ..., φ_p], ``sigma2`` (residual variance, divided by the
    number of fitted observations as AutoReg does).
    """

    def __init__(self, p: int):
        if p < 1:
            raise ValueError(f"AR order p must be >= 1; got {p}")
        self.p = p
        self.params: np.ndarray | None = None

    def fit(self, history) -> ARModel:
        y = np.asarray(history, float)
        if len(y) <= 2 * self.p:
            raise ValueError(f"AR({self.p}) needs more than {2 * self.p} points; got {len(y)}")
        X = lag_matrix(y, self.p)
        self.params, *_ = np.linalg.lstsq(X, y[self.p:], rcond=None)
        residuals = y[self.p:] - X @ self.params
        self.sigma2 = float(residuals @ residuals / len(residuals))
        self.history = y
        return self

    def _check(self) -> None:
        if self.params is None:
            raise ValueError("call fit(history) before forecasting")

    def forecast(self, horizon: int) -> np.ndarray:
        """Recursive multi-step forecast from the end of the fitted history (each prediction fed back)."""
        self._check()
        window = list(self.history[-self.p:])
        out = []
        for _ in range(horizon):
            nxt = self.params[0] + np.dot(self.params[1:], window[::-1][: self.p])
            out.append(nxt)
            window = window[1:] + [nxt]
        return np.array(out)

    def forecast_interval(self, horizon: int, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian prediction interval of the recursive forecast: Var(e_h) = σ² Σ_{j<h} ψ_j², with the
        MA(∞) weights ψ_0 = 1, ψ_j = Σ_{i=1..min(j,p)} φ_i ψ_{j-i}."""
        from statistics import NormalDist

        self._check()
        phi = self.params[1:]
        psi = [1.0]
        for j in range(1, horizon):
            psi.append(sum(phi[i - 1] * psi[j - i] for i in range(1, min(j, self.p) + 1)))
        sd = np.sqrt(self.sigma2 * np.cumsum(np.square(psi)))
        z = NormalDist().inv_cdf(0.5 + level / 2)
        mean = self.forecast(horizon)
        return mean - z * sd, mean + z * sd

    def predict_one_step(self, series) -> np.ndarray:
        """ŷ_t from the true y_{t-1..t-p}, for t = p .. len(series)-1."""
        self._check()
        return lag_matrix(np.asarray(series, float), self.p) @ self.params

    @staticmethod
    def select_order(history, max_p: int, validation: int) -> int:
        """The p in 1..max_p with the lowest one-step RMSE on the last ``validation`` points of ``history``,
        each candidate fitted on the points before them."""
        y = np.asarray(history, float)
        fit_part = y[:-validation]
        best, best_err = 1, np.inf
        for p in range(1, max_p + 1):
            if len(fit_part) <= 2 * p:
                break
            model = ARModel(p).fit(fit_part)
            pred = model.predict_one_step(y[len(fit_part) - p:])
            err = np.sqrt(np.mean((pred - y[len(fit_part):]) ** 2))
            if err < best_err:
                best, best_err = p, err
        return best
