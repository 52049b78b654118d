"""LSTM cells: the standard LSTM with forget gate (optionally projected) and the peephole LSTM.

References: Hochreiter & Schmidhuber 1997; Gers & Schmidhuber 2000 (peepholes); Sak et al. 2014
(projection, torch's ``proj_size``); seeds 000 ("LSTM"), 003 ("LSTM cell") and 004 ("Peephole LSTMs").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Cell, LSTMState, uniform_init_


def gate_weights(weight_ih: Tensor, weight_hh: Tensor, bias: Tensor | None) -> dict[str, Tensor]:
    """An LSTM's stacked weights under the notes' names: W_xi, W_hi, ..., b_i, ... (gate blocks i, f, g, o)."""
    w = {}
    for name, wx, wh in zip("ifgo", weight_ih.chunk(4), weight_hh.chunk(4)):
        w[f"W_x{name}"], w[f"W_h{name}"] = wx, wh
    if bias is not None:
        w.update(zip(("b_i", "b_f", "b_g", "b_o"), bias.chunk(4)))
    return w


class LSTMCell(Cell):
    """LSTM step with forget gate.

    Seed 000 (gates stacked as one W over [h_{t-1}; x_t]; rnnkit stacks them in torch's order i, f, g, o)::

        (i, f, g, o) = (σ, σ, tanh, σ)(W_x x_t + W_h h_{t-1} + b)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        h_t = o ⊙ tanh(c_t)                    (with proj_size P > 0: h_t = W_hr (o ⊙ tanh(c_t)))

    Args:
        input_size: D. hidden_size: H. bias: learn b.
        proj_size: P > 0 adds the projection W_hr (P, H) as torch.nn.LSTM's ``proj_size``.
        forget_bias: value added to the forget-gate bias at initialisation (1.0 is the common
            "remember by default" choice, Jozefowicz et al. 2015).

    Parameters: ``weight_ih`` (4H, D) = [W_xi; W_xf; W_xg; W_xo], ``weight_hh`` (4H, H or P),
    ``bias_ih`` (4H), ``weight_hr`` (P, H). State: ``LSTMState(h, c)``.
    torch.nn.LSTM's two biases map to b = b_ih + b_hh.

    Example::

        cell = LSTMCell(8, 16)
        y, (h, c) = cell(torch.randn(4, 8))
    """

    native_mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, proj_size: int = 0,
                 forget_bias: float = 0.0):
        super().__init__()
        if proj_size < 0 or proj_size >= hidden_size and proj_size != 0:
            raise ValueError(f"proj_size must be 0 or in [1, hidden_size={hidden_size}); got {proj_size}")
        self.input_size, self.hidden_size, self.proj_size = input_size, hidden_size, proj_size
        self.output_size = proj_size or hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, self.output_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size)) if proj_size else None
        self._extra_parameters()
        uniform_init_(self, hidden_size)
        if bias and forget_bias:
            with torch.no_grad():
                self.bias_ih[hidden_size:2 * hidden_size].add_(forget_bias)

    def _extra_parameters(self) -> None:
        """Hook for subclasses to add their parameters before initialisation (peepholes, layer normalisation)."""

    def initial_state(self, batch_size: int, device=None, dtype=None) -> LSTMState:
        return LSTMState(torch.zeros(batch_size, self.output_size, device=device, dtype=dtype),
                         torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype))

    def _project(self, h: Tensor) -> Tensor:
        return h if self.weight_hr is None else h.mm(self.weight_hr.t())

    def step(self, px_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h_prev, c_prev = state
        i, f, g, o = self._gates(px_t, h_prev).chunk(4, 1)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        h = self._project(torch.sigmoid(o) * torch.tanh(self._cell_read(c)))
        return h, LSTMState(h, c)

    def _gates(self, px_t: Tensor, h_prev: Tensor) -> Tensor:
        """The gates' pre-activations (B, 4H): px_t + W_h h_{t-1}."""
        return torch.addmm(px_t, h_prev, self.weight_hh.t())

    def _cell_read(self, c: Tensor) -> Tensor:
        """What the output gate reads through tanh: c_t itself (the layer-normalised LSTM normalises it)."""
        return c

    @property
    def kernel_family(self) -> str | None:
        return "lstm" if self.weight_hr is None else None  # the native kernel has no projection

    _step_family = "lstm"

    @property
    def stack_step_family(self) -> str | None:
        return self._step_family if self.weight_hr is None else None  # nor has the native generation step

    def kernel_arguments(self) -> dict:
        return {"weight_hh": self.weight_hh}

    def native_weights(self) -> list[Tensor]:
        w = [self.weight_ih, self.weight_hh]
        if self.bias_ih is not None:
            w += [self.bias_ih, torch.zeros_like(self.bias_ih)]
        if self.weight_hr is not None:
            w.append(self.weight_hr)
        return w

    def note_weights(self) -> dict[str, Tensor]:
        w = gate_weights(self.weight_ih, self.weight_hh, self.bias_ih)
        if self.weight_hr is not None:
            w["W_hr"] = self.weight_hr
        return w

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", proj_size={self.proj_size}" if self.proj_size else "")


class PeepholeLSTMCell(LSTMCell):
    """LSTM with diagonal peephole connections (Gers & Schmidhuber 2000; seed 004 "Peephole LSTMs").

    Seed 004 writes the gates over [C_{t-1}, h_{t-1}, x_t]; with the diagonal ("peephole") weights of
    Gers & Schmidhuber that is::

        i = σ(W_xi x_t + W_hi h_{t-1} + p_i ⊙ c_{t-1} + b_i)
        f = σ(W_xf x_t + W_hf h_{t-1} + p_f ⊙ c_{t-1} + b_f)
        g = tanh(W_xg x_t + W_hg h_{t-1} + b_g)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        o = σ(W_xo x_t + W_ho h_{t-1} + p_o ⊙ c_t + b_o)      (the output gate sees the new c_t)
        h_t = o ⊙ tanh(c_t)

    Extra parameters: ``peephole_i``, ``peephole_f``, ``peephole_o`` (H each). No torch kernel; rnnkit's native
    LSTM-family kernel runs it (``rnnkit.native``).
    """

    native_mode = None
    _step_family = "peephole-lstm"

    def _extra_parameters(self) -> None:
        H = self.hidden_size
        self.peephole_i = nn.Parameter(torch.empty(H))
        self.peephole_f = nn.Parameter(torch.empty(H))
        self.peephole_o = nn.Parameter(torch.empty(H))

    def step(self, px_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h_prev, c_prev = state
        gates = torch.addmm(px_t, h_prev, self.weight_hh.t())  # (B, 4H)
        i, f, g, o = gates.chunk(4, 1)
        i = torch.sigmoid(torch.addcmul(i, self.peephole_i, c_prev))
        f = torch.sigmoid(torch.addcmul(f, self.peephole_f, c_prev))
        c = f * c_prev + i * torch.tanh(g)
        o = torch.sigmoid(torch.addcmul(o, self.peephole_o, c))
        h = self._project(o * torch.tanh(c))
        return h, LSTMState(h, c)

    def kernel_arguments(self) -> dict:
        return {"weight_hh": self.weight_hh,
                "peepholes": torch.stack([self.peephole_i, self.peephole_f, self.peephole_o])}

    def stack_step_weights(self) -> tuple[Tensor, Tensor]:
        """[W_x | W_h] (4H, D + H) and [b | p_i | p_f | p_o] (7H)."""
        weight, bias = super().stack_step_weights()
        return weight, torch.cat([bias, self.peephole_i, self.peephole_f, self.peephole_o])

    def note_weights(self) -> dict[str, Tensor]:
        return {**super().note_weights(), "p_i": self.peephole_i, "p_f": self.peephole_f,
                "p_o": self.peephole_o}
