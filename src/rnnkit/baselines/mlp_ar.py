"""MLP-AR (seed 004): a window of the last p values → Dense-ReLU layers → the next value. Multi-step forecasts
feed the model its own outputs, so errors build up with the horizon, as the note describes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class MLPAR:
    """Feed-forward autoregression over a window of ``p`` values.

    ``fit`` standardises with the history's mean and std, trains with Adam on every window (full batch) and
    keeps the weights with the lowest loss on the last ``validation_fraction`` of the windows.
    """

    def __init__(self, p: int = 12, hidden: tuple[int, ...] = (64, 64), epochs: int = 500, lr: float = 1e-2,
                 seed: int = 0, validation_fraction: float = 0.1):
        if p < 1:
            raise ValueError(f"window p must be >= 1; got {p}")
        self.p, self.hidden, self.epochs, self.lr, self.seed = p, hidden, epochs, lr, seed
        self.validation_fraction = validation_fraction
        self.net: nn.Module | None = None

    def _windows(self, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.from_numpy((y - self.mean) / self.std).float()
        return z.unfold(0, self.p + 1, 1)[:, :-1], z[self.p:]

    def fit(self, history) -> MLPAR:
        y = np.asarray(history, float)
        if len(y) < self.p + 10:
            raise ValueError(f"MLP-AR with p={self.p} needs at least {self.p + 10} points; got {len(y)}")
        self.mean, self.std = float(y.mean()), float(y.std() or 1.0)
        X, t = self._windows(y)
        n_val = max(1, int(len(X) * self.validation_fraction))
        torch.manual_seed(self.seed)
        layers, width = [], self.p
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        best, best_state = np.inf, None
        for _ in range(self.epochs):
            loss = nn.functional.mse_loss(self.net(X[:-n_val]).squeeze(-1), t[:-n_val])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                val = nn.functional.mse_loss(self.net(X[-n_val:]).squeeze(-1), t[-n_val:]).item()
            if val < best:
                best, best_state = val, {k: v.clone() for k, v in self.net.state_dict().items()}
        self.net.load_state_dict(best_state)
        self.history = y
        return self

    @torch.no_grad()
    def predict_one_step(self, series) -> np.ndarray:
        """ŷ_t from the true previous p values, for t = p .. len(series)-1."""
        X, _ = self._windows(np.asarray(series, float))
        return self.net(X).squeeze(-1).numpy() * self.std + self.mean

    @torch.no_grad()
    def forecast(self, horizon: int) -> np.ndarray:
        """Recursive multi-step forecast: each prediction becomes an input for the next."""
        window = torch.from_numpy((self.history[-self.p:] - self.mean) / self.std).float()
        out = []
        for _ in range(horizon):
            nxt = self.net(window[None]).item()
            out.append(nxt)
            window = torch.cat([window[1:], torch.tensor([nxt])])
        return np.array(out) * self.std + self.mean
