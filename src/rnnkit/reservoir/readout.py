"""Linear readouts of reservoir states: ridge regression in closed form from accumulated statistics (with the
regularisation chosen by generalised cross-validation), and online recursive least squares (FORCE).

Ridge (Tikhonov), the intercept not penalised (as ReservoirPy's ``Ridge``):

    W_out = S_yx (S_xx + λ I)⁻¹,   b = ȳ - W_out x̄,   S_xx = Σ (x - x̄)(x - x̄)ᵀ,  S_yx = Σ (y - ȳ)(x - x̄)ᵀ

The sums are accumulated batch by batch in float64, so no state sequence is ever held whole. GCV (Golub, Heath &
Wahba 1979) from the same sums: with S_xx = V diag(s) Vᵀ and Z = Vᵀ S_xy,

    RSS(λ) = tr S_yy - Σ_i,o Z_io² (s_i + 2λ) / (s_i + λ)²,   df(λ) = 1 + Σ_i s_i / (s_i + λ),
    GCV(λ) = (RSS / n) / (1 - df / n)²
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

RIDGE_GRID = tuple(10.0 ** k for k in np.arange(-12, 3, 0.5))


class RidgeReadout:
    """Accumulate ``add(features (n, F), targets (n, O))``, then ``solve(ridge)`` (a number, or ``"gcv"`` to pick
    it from ``grid`` by generalised cross-validation). ``weight`` (O, F) and ``bias`` (O,) are float64."""

    def __init__(self):
        self.n = 0
        self.sum_x = self.sum_y = self.xx = self.xy = self.yy = None
        self.weight = self.bias = None
        self.ridge = None
        self.gcv: dict[float, float] = {}

    def add(self, features, targets) -> None:
        # NumPy for the sums: its X.T @ X is a symmetric rank-k update (syrk), 0.41 s against torch's 0.66 s for
        # 7,900 x 2,000 float64 here
        X = np.asarray(torch.as_tensor(features).detach().cpu(), dtype=np.float64)
        X = X.reshape(-1, X.shape[-1])
        Y = np.asarray(torch.as_tensor(targets).detach().cpu(), dtype=np.float64).reshape(len(X), -1)
        if self.xx is None:
            F, K = X.shape[1], Y.shape[1]
            self.sum_x, self.sum_y = np.zeros(F), np.zeros(K)
            self.xx, self.xy, self.yy = np.zeros((F, F)), np.zeros((F, K)), np.zeros((K, K))
        elif X.shape[1] != self.xx.shape[0] or Y.shape[1] != self.xy.shape[1]:
            raise ValueError(f"RidgeReadout.add expected ({self.xx.shape[0]} features, {self.xy.shape[1]} targets); "
                             f"got ({X.shape[1]}, {Y.shape[1]})")
        self.n += len(X)
        self.sum_x += X.sum(0)
        self.sum_y += Y.sum(0)
        self.xx += X.T @ X
        self.xy += X.T @ Y
        self.yy += Y.T @ Y

    def _centred(self):
        if self.n < 2:
            raise ValueError(f"the readout has seen {self.n} samples; it needs at least 2 (is the washout longer "
                             "than the sequences?)")
        mx, my = torch.from_numpy(self.sum_x / self.n), torch.from_numpy(self.sum_y / self.n)
        return (mx, my, torch.from_numpy(self.xx) - self.n * torch.outer(mx, mx),
                torch.from_numpy(self.xy) - self.n * torch.outer(mx, my),
                torch.from_numpy(self.yy) - self.n * torch.outer(my, my))

    def gcv_scores(self, grid=RIDGE_GRID) -> dict[float, float]:
        """GCV(λ) for every λ of ``grid`` from one eigendecomposition of S_xx."""
        _, _, sxx, sxy, syy = self._centred()
        s, V = torch.linalg.eigh(sxx)
        s = s.clamp_min(0)
        z2 = (V.t() @ sxy).pow(2).sum(1)  # Σ_o Z_io²
        scores = {}
        for lam in grid:
            rss = float(torch.trace(syy) - (z2 * (s + 2 * lam) / (s + lam).pow(2)).sum())
            df = 1 + float((s / (s + lam)).sum())
            scores[float(lam)] = (max(rss, 0.0) / self.n) / (1 - df / self.n) ** 2 if df < self.n else np.inf
        return scores

    def solve(self, ridge: float | str = 1e-6, grid=RIDGE_GRID) -> RidgeReadout:
        if ridge == "gcv":
            self.gcv = self.gcv_scores(grid)
            ridge = min(self.gcv, key=self.gcv.get)
        if not (isinstance(ridge, (int, float)) and np.isfinite(ridge) and ridge >= 0):
            raise ValueError(f"ridge must be a finite number >= 0 or 'gcv'; got {ridge!r}")
        mx, my, sxx, sxy, _ = self._centred()
        eye = torch.eye(len(sxx), dtype=torch.float64)
        w = torch.linalg.solve(sxx + ridge * eye, sxy)  # (F, O)
        self.weight, self.bias, self.ridge = w.t().contiguous(), my - mx @ w, float(ridge)
        return self

    def __call__(self, features: Tensor) -> Tensor:
        return features @ self.weight.to(features.dtype).t() + self.bias.to(features.dtype)


class RLSReadout:
    """Online recursive least squares (the FORCE rule of Sussillo & Abbott 2009): for each sample x (with a 1
    appended for the bias), k = P x / (1 + xᵀ P x), W ← W - (W x - y) kᵀ, P ← P - k xᵀ P, from P = I / α.
    Without forgetting it converges to the ridge solution with λ = α."""

    def __init__(self, features: int, outputs: int, alpha: float = 1e-6):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0; got {alpha}")
        self.P = torch.eye(features + 1, dtype=torch.float64) / alpha
        self.W = torch.zeros(outputs, features + 1, dtype=torch.float64)

    def add(self, features, targets) -> None:
        X = torch.as_tensor(features).reshape(-1, self.W.shape[1] - 1).double()
        Y = torch.as_tensor(targets).reshape(len(X), -1).double()
        X = torch.cat([X, torch.ones(len(X), 1, dtype=torch.float64)], 1)
        for x, y in zip(X, Y):
            Px = self.P @ x
            k = Px / (1 + x @ Px)
            self.W -= torch.outer(self.W @ x - y, k)
            self.P -= torch.outer(k, Px)

    @property
    def weight(self) -> Tensor:
        return self.W[:, :-1]

    @property
    def bias(self) -> Tensor:
        return self.W[:, -1]

    def __call__(self, features: Tensor) -> Tensor:
        return features @ self.weight.to(features.dtype).t() + self.bias.to(features.dtype)
