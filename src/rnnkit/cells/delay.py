"""Recurrent cell with multiple delay paths (seed 003 "Multiple delay paths"; Lin et al. 1996, NARX)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .base import Cell, activation, uniform_init_


class DelayState(NamedTuple):
    """State of :class:`DelayCell`: ``h`` = h_{t-1} (B, H) and ``past`` = (h_{t-2}, ..., h_{t-d_max})
    as (B, d_max - 1, H)."""

    h: Tensor
    past: Tensor


class DelayCell(Cell):
    """Elman-style step with recurrent arcs from several delays.

    Seed 003: "multiple, differently delayed, recurrent arcs" so that gradients over T steps pass
    through only T/d Jacobians::

        h_t = φ(W_x x_t + Σ_{d ∈ delays} W_d h_{t-d} + b)

    Args:
        input_size: D. hidden_size: H. delays: the set of delays d ≥ 1, e.g. ``(1, 2, 4)``.
        nonlinearity: φ (``"tanh"`` or ``"relu"``).

    Parameters: ``weight_ih`` = W_x (H, D), ``weight_hh`` = [W_{d1} | W_{d2} | ...] (H, len(delays)·H),
    ``bias_ih`` = b. One product per step covers every delay.
    """

    kernel_family = "delay"  # rnnkit.native

    def __init__(self, input_size: int, hidden_size: int, delays=(1, 2), nonlinearity: str = "tanh",
                 bias: bool = True):
        super().__init__()
        delays = tuple(sorted(set(int(d) for d in delays)))
        if not delays or delays[0] < 1:
            raise ValueError(f"delays must be a non-empty set of integers >= 1; got {delays}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.delays, self.max_delay = delays, delays[-1]
        self.nonlinearity = nonlinearity
        self._phi = activation(nonlinearity)
        self.register_buffer("_delay_index", torch.tensor([d - 1 for d in delays]), persistent=False)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, len(delays) * hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        uniform_init_(self, hidden_size)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> DelayState:
        H = self.hidden_size
        return DelayState(torch.zeros(batch_size, H, device=device, dtype=dtype),
                          torch.zeros(batch_size, self.max_delay - 1, H, device=device, dtype=dtype))

    def step(self, px_t: Tensor, state: DelayState) -> tuple[Tensor, DelayState]:
        history = torch.cat([state.h.unsqueeze(1), state.past], 1)  # (B, d_max, H): h_{t-1} ... h_{t-d_max}
        delayed = history.index_select(1, self._delay_index).flatten(1)  # (B, len(delays)·H)
        h = self._phi(torch.addmm(px_t, delayed, self.weight_hh.t()))
        return h, DelayState(h, history[:, : self.max_delay - 1])

    def kernel_arguments(self) -> dict:
        return {"weight_hh": self.weight_hh, "delays": self.delays, "activation": self.nonlinearity}

    def note_weights(self) -> dict[str, Tensor]:
        w = {"W_x": self.weight_ih}
        w.update({f"W_{d}": m for d, m in zip(self.delays, self.weight_hh.chunk(len(self.delays), 1))})
        if self.bias_ih is not None:
            w["b"] = self.bias_ih
        return w

    def extra_repr(self) -> str:
        return super().extra_repr() + f", delays={self.delays}"
