"""Elman (vanilla) recurrent cell (Elman 1990; seed 000 "Vanilla RNNs math", seed 004 "Elman network")."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Cell, activation, uniform_init_
from .recurrence import init_identity_, init_orthogonal_, orthogonal_recurrence


class ElmanCell(Cell):
    """Vanilla RNN step.

    Seed 000::

        h_t = tanh(W_hh h_{t-1} + W_xh x_t)          (+ b, seed 003's a_t = b + W s_{t-1} + U x_t)
        y_t = W_hy h_t                                (optional head, ``head_size``)

    Args:
        input_size: D. hidden_size: H.
        nonlinearity: ``"tanh"`` or ``"relu"`` (φ).
        bias: learn b.
        head_size: if given, adds the output head ``W_hy`` (``cell.head(h)``) for standalone use.
        init: ``"uniform"`` (torch.nn's U(±1/√H)), ``"identity"`` (W_hh = I and b = 0: with ``nonlinearity="relu"``
            the IRNN of Le, Jaitly & Hinton 2015) or ``"orthogonal"`` (a random orthogonal W_hh).
        orthogonal: keep W_hh orthogonal through training (``rnnkit.cells.recurrence.orthogonal_recurrence``).

    Parameters: ``weight_ih`` = W_xh (H, D), ``weight_hh`` = W_hh (H, H), ``bias_ih`` = b (H),
    ``weight_hy`` = W_hy (head_size, H). torch.nn.RNN's two biases map to b = b_ih + b_hh.

    Example::

        cell = ElmanCell(8, 16)
        y, h = cell(torch.randn(4, 8))      # y is h_t, (4, 16)
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", bias: bool = True,
                 head_size: int | None = None, init: str = "uniform", orthogonal: bool = False):
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"ElmanCell nonlinearity must be 'tanh' or 'relu'; got {nonlinearity!r}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.nonlinearity = nonlinearity
        self._phi = activation(nonlinearity)
        self.native_mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.weight_hy = nn.Parameter(torch.empty(head_size, hidden_size)) if head_size else None
        uniform_init_(self, hidden_size)
        if init not in ("uniform", "identity", "orthogonal"):
            raise ValueError(f"ElmanCell init must be 'uniform', 'identity' or 'orthogonal'; got {init!r}")
        self.init = init
        if init == "identity":
            init_identity_(self)
            if self.bias_ih is not None:
                nn.init.zeros_(self.bias_ih)
        elif init == "orthogonal":
            init_orthogonal_(self)
        if orthogonal:
            orthogonal_recurrence(self)

    kernel_family = "leaky"  # rnnkit.native: the Elman family with every leak rate 1

    @property
    def stack_step_family(self) -> str:
        return f"rnn-{self.nonlinearity}"  # rnnkit.native.stack_step: generation's token loop

    def step(self, px_t: Tensor, h_prev: Tensor) -> tuple[Tensor, Tensor]:
        h = self._phi(torch.addmm(px_t, h_prev, self.weight_hh.t()))
        return h, h

    def kernel_arguments(self) -> dict:
        return {"weight_hh": self.weight_hh, "activation": self.nonlinearity}

    def head(self, h: Tensor) -> Tensor:
        """The output head y_t = W_hy h_t (seed 000)."""
        if self.weight_hy is None:
            raise ValueError("ElmanCell was built without a head; pass head_size=... to use head()")
        return h @ self.weight_hy.t()

    def native_weights(self) -> list[Tensor]:
        if self.bias_ih is None:
            return [self.weight_ih, self.weight_hh]
        return [self.weight_ih, self.weight_hh, self.bias_ih, torch.zeros_like(self.bias_ih)]

    def note_weights(self) -> dict[str, Tensor]:
        w = {"W_xh": self.weight_ih, "W_hh": self.weight_hh}
        if self.bias_ih is not None:
            w["b"] = self.bias_ih
        if self.weight_hy is not None:
            w["W_hy"] = self.weight_hy
        return w

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"
