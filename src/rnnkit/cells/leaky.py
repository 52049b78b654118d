"""Leaky-integrator units with time constants (seed 003 "Leaky units & timescale hierarchy")."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Cell, activation, uniform_init_


class LeakyCell(Cell):
    """Leaky-integrator RNN step, one time constant τ_i ≥ 1 per unit.

    Seed 003::

        s_{t+1} = (1 - 1/τ) ⊙ s_t + (1/τ) ⊙ σ(b + W s_t + U x_t),      1 ≤ τ ≤ ∞

    τ = 1 is the ordinary RNN; large τ averages over a long past. Units with different τ give the
    network several timescales at once.

    Args:
        input_size: D. hidden_size: H.
        tau: one float for every unit; a tuple ``(tau_min, tau_max)`` to spread τ geometrically across
            the units (multiple timescales); or a list / tensor of H values.
        learn_tau: learn τ by gradient descent, parametrised as τ = 1 + softplus(ρ) so that τ ≥ 1
            always holds.

    τ is computed in float64 and stored in the cell's dtype: a cell built in float64
    (``torch.set_default_dtype(torch.float64)``) holds τ exactly as given.
        nonlinearity: σ (``"tanh"`` default, ``"sigmoid"``, ``"relu"``).

    Parameters: ``weight_ih`` = U (H, D), ``weight_hh`` = W (H, H), ``bias_ih`` = b; ``tau_raw`` = ρ
    when learned, else buffer ``tau``. Property :attr:`time_constants` gives τ.
    """

    def __init__(self, input_size: int, hidden_size: int, tau=2.0, learn_tau: bool = False,
                 nonlinearity: str = "tanh", bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.nonlinearity = nonlinearity
        self._sigma = activation(nonlinearity)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        uniform_init_(self, hidden_size)
        tau = self._tau_vector(tau, hidden_size)  # float64, exactly as given
        dtype = self.weight_hh.dtype  # the cell's own dtype (torch's default when it is built)
        self.learn_tau = learn_tau
        if learn_tau:
            # inverse of τ = 1 + softplus(ρ), computed in float64; τ = 1 exactly is the limit ρ → -inf, so start
            # just above it
            excess = (tau - 1).clamp_min(1e-4)
            self.tau_raw = nn.Parameter((excess + torch.log(-torch.expm1(-excess))).to(dtype))
        else:
            self.register_buffer("tau", tau.to(dtype))

    @staticmethod
    def _tau_vector(tau, hidden_size: int) -> Tensor:
        """τ as an (H,) float64 tensor from a number, a (min, max) range or H values, checked."""
        if isinstance(tau, (int, float)):
            values = torch.full((hidden_size,), float(tau), dtype=torch.float64)
        elif isinstance(tau, tuple) and len(tau) == 2:
            lo, hi = map(float, tau)
            if not 1 <= lo <= hi:
                raise ValueError(f"tau range must satisfy 1 <= tau_min <= tau_max; got {tau}")
            values = torch.logspace(math.log10(lo), math.log10(hi), hidden_size, dtype=torch.float64)
        else:
            values = torch.as_tensor(tau, dtype=torch.float64).flatten()
            if values.numel() != hidden_size:
                raise ValueError(f"tau must be a float, (tau_min, tau_max) or {hidden_size} values; "
                                 f"got {values.numel()} values")
        if (values < 1).any():
            raise ValueError(f"every time constant must be >= 1 (seed 003: 1 <= tau); got min {values.min():g}")
        return values

    @property
    def time_constants(self) -> Tensor:
        """τ per unit, (H,)."""
        return 1 + F.softplus(self.tau_raw) if self.learn_tau else self.tau

    kernel_family = "leaky"  # rnnkit.native

    def kernel_arguments(self) -> dict:
        return {"weight_hh": self.weight_hh, "rate": 1.0 / self.time_constants, "activation": self.nonlinearity}

    def step(self, px_t: Tensor, s_prev: Tensor) -> tuple[Tensor, Tensor]:
        rate = 1.0 / self.time_constants  # (H,)
        target = self._sigma(torch.addmm(px_t, s_prev, self.weight_hh.t()))
        s = torch.addcmul(s_prev, rate.to(s_prev.dtype), target - s_prev)  # (1 - 1/τ) s + (1/τ) σ(.)
        return s, s

    def note_weights(self) -> dict[str, Tensor]:
        w = {"U": self.weight_ih, "W": self.weight_hh, "tau": self.time_constants}
        if self.bias_ih is not None:
            w["b"] = self.bias_ih
        return w
