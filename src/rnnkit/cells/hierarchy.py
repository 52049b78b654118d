"""Cells that shorten or deepen the paths through time (seed 003 "deep recurrent networks", "hierarchies of layers
updated at different time multiples"): the clockwork RNN and the deep-transition RNN.

References: Koutník, Greff, Gomez & Schmidhuber 2014 (clockwork RNN); Pascanu, Gulcehre, Cho & Bengio 2014, "How to
construct deep recurrent neural networks" (DT-RNN, DT(S)-RNN with shortcuts, DO-RNN).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .base import Cell, activation, uniform_init_


class ClockworkState(NamedTuple):
    """State of :class:`ClockworkCell`: ``h`` (B, H) and ``t`` (B, 1), the number of steps the cell has taken (a
    float count, so it lives in the state like any other tensor: frozen at padded steps, carried across chunks)."""

    h: Tensor
    t: Tensor


class ClockworkCell(Cell):
    """The clockwork RNN (Koutník et al. 2014): the H units form g modules with periods T_i = 2^i (or ``periods``);
    at step t (counted from 0) module i updates only when t mod T_i = 0, and it reads only modules at least as
    slow as itself (W_hh is block upper-triangular with the modules in order of increasing period):

        h_t^i = φ(W_i h_{t−1} + U_i x_t + b_i)   if t mod T_i = 0,      h_t^i = h_{t−1}^i   otherwise

    Slow modules see the input every T_i steps and keep their state in between, so information crosses T steps
    through about T / T_i updates instead of T.

    Args:
        input_size: D. hidden_size: H (split into the modules as evenly as possible, fastest first).
        modules: g (periods 1, 2, 4, …, 2^{g−1}) unless ``periods`` is given. nonlinearity: φ.
    """

    def __init__(self, input_size: int, hidden_size: int, modules: int = 4, periods=None,
                 nonlinearity: str = "tanh", bias: bool = True):
        super().__init__()
        periods = tuple(int(p) for p in (periods or [2 ** i for i in range(modules)]))
        if not periods or any(p < 1 for p in periods) or list(periods) != sorted(periods):
            raise ValueError(f"clockwork periods must be integers >= 1 in increasing order; got {periods}")
        if len(periods) > hidden_size:
            raise ValueError(f"{len(periods)} clockwork modules need hidden_size >= {len(periods)}; got {hidden_size}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.periods, self.nonlinearity = periods, nonlinearity
        self._phi = activation(nonlinearity)
        sizes = [hidden_size // len(periods) + (i < hidden_size % len(periods)) for i in range(len(periods))]
        module_of = torch.repeat_interleave(torch.arange(len(periods)), torch.tensor(sizes))
        self.register_buffer("unit_period", torch.tensor(periods)[module_of].float(), persistent=False)
        # unit i reads unit j when j's module is at least as slow as i's
        self.register_buffer("connectivity", (module_of[None, :] >= module_of[:, None]).float(), persistent=False)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        uniform_init_(self, hidden_size)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> ClockworkState:
        return ClockworkState(torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype),
                              torch.zeros(batch_size, 1, device=device, dtype=dtype))

    def step(self, px_t: Tensor, state: ClockworkState) -> tuple[Tensor, ClockworkState]:
        h_prev, t = state
        w = self.weight_hh * self.connectivity.to(self.weight_hh.dtype)
        candidate = self._phi(torch.addmm(px_t, h_prev, w.t()))
        active = torch.remainder(t, self.unit_period.to(t.dtype)) == 0  # (B, H)
        h = torch.where(active, candidate, h_prev)
        return h, ClockworkState(h, t + 1)

    def note_weights(self) -> dict[str, Tensor]:
        w = {"U": self.weight_ih, "W": self.weight_hh * self.connectivity.to(self.weight_hh.dtype)}
        if self.bias_ih is not None:
            w["b"] = self.bias_ih
        return w

    def extra_repr(self) -> str:
        return super().extra_repr() + f", periods={self.periods}"


class DeepTransitionCell(Cell):
    """A deep-transition RNN (Pascanu et al. 2014 §3.2): an MLP of ``depth`` layers between h_{t−1} and h_t,

        z_1 = φ(W_1 h_{t−1} + U x_t + b_1),   z_l = φ(W_l z_{l−1} + b_l)  (l = 2 … depth − 1)
        h_t = φ(W_L z_{L−1} + b_L [+ S h_{t−1} + U_s x_t])                (``shortcut``: DT(S)-RNN)

    (depth 1 is the Elman cell). The shortcut gives the gradient a one-layer path through time beside the deep one.
    ``deep_output`` adds the DO-RNN's intermediate layer on the way out: the cell emits y_t = φ(V h_t + c) (size
    ``output_size``, default hidden_size) while the state stays h_t.
    """

    def __init__(self, input_size: int, hidden_size: int, depth: int = 2, shortcut: bool = True,
                 deep_output: bool = False, output_size: int | None = None, nonlinearity: str = "tanh"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1; got {depth}")
        H = hidden_size
        self.input_size, self.hidden_size = input_size, H
        self.output_size = (output_size or H) if deep_output else H
        self.depth, self.shortcut, self.deep_output, self.nonlinearity = depth, shortcut, deep_output, nonlinearity
        self._phi = activation(nonlinearity)
        # input product: U x_t (+ U_s x_t with the shortcut), one matrix
        extra = H if shortcut and depth > 1 else 0
        self.weight_ih = nn.Parameter(torch.empty(H + extra, input_size))
        self.bias_ih = nn.Parameter(torch.empty(H + extra))
        self.weight_hh = nn.Parameter(torch.empty(H + extra, H))  # [W_1; S]
        self.inner = nn.ModuleList(nn.Linear(H, H) for _ in range(depth - 1))  # W_2 … W_L
        uniform_init_(self, H)
        self.output_layer = nn.Linear(H, self.output_size) if deep_output else None

    def step(self, px_t: Tensor, h_prev: Tensor) -> tuple[Tensor, Tensor]:
        pre = torch.addmm(px_t, h_prev, self.weight_hh.t())
        H = self.hidden_size
        z = self._phi(pre[:, :H])
        for i, layer in enumerate(self.inner):
            last = i == len(self.inner) - 1
            a = layer(z)
            if last and self.shortcut:
                a = a + pre[:, H:]
            z = self._phi(a)
        y = self._phi(self.output_layer(z)) if self.deep_output else z
        return y, z

    def note_weights(self) -> dict[str, Tensor]:
        H = self.hidden_size
        w = {"U": self.weight_ih[:H], "W_1": self.weight_hh[:H]}
        w.update({f"W_{i + 2}": layer.weight for i, layer in enumerate(self.inner)})
        if self.shortcut and self.depth > 1:
            w.update({"S": self.weight_hh[H:], "U_s": self.weight_ih[H:]})
        if self.deep_output:
            w["V"] = self.output_layer.weight
        return w

    def extra_repr(self) -> str:
        return super().extra_repr() + f", depth={self.depth}, shortcut={self.shortcut}, deep_output={self.deep_output}"
