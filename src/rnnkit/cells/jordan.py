"""Jordan network: recurrence from the previous output (Jordan 1997; seed 004 "Jordan network", seed 003
"output recurrence ... teacher forcing")."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Cell, activation, uniform_init_


class JordanCell(Cell):
    """Jordan step: the state is the previous output y_{t-1}, not the hidden layer.

    Seed 004::

        h_t = σ_h(W_h x_t + U_h y_{t-1} + b_h)
        y_t = σ_y(W_y h_t + b_y)

    The state is y_{t-1} (B, O) and the step emits y_t. Teacher forcing (seed 003: "back-fed inputs
    are actual targets, not outputs") feeds the previous *target* in place of y_{t-1}: pass
    ``feedback=targets`` to :class:`rnnkit.layers.Recurrent`, which calls :meth:`force` before each step.

    Args:
        input_size: D. hidden_size: H. output_size: O.
        hidden_activation: σ_h (``"tanh"``, ``"sigmoid"``, ``"relu"``); output_activation: σ_y
        (``"identity"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``).

    Parameters: ``weight_ih`` = W_h (H, D), ``bias_ih`` = b_h, ``weight_hh`` = U_h (H, O),
    ``weight_hy`` = W_y (O, H), ``bias_hy`` = b_y.
    """

    kernel_family = "jordan"  # rnnkit.native (teacher forcing runs the loop)

    def __init__(self, input_size: int, hidden_size: int, output_size: int, bias: bool = True,
                 hidden_activation: str = "tanh", output_activation: str = "identity"):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.feedback_size = output_size
        self.hidden_activation, self.output_activation = hidden_activation, output_activation
        self._sigma_h, self._sigma_y = activation(hidden_activation), activation(output_activation)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, output_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.weight_hy = nn.Parameter(torch.empty(output_size, hidden_size))
        self.bias_hy = nn.Parameter(torch.empty(output_size)) if bias else None
        uniform_init_(self, hidden_size)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch_size, self.output_size, device=device, dtype=dtype)

    def step(self, px_t: Tensor, y_prev: Tensor) -> tuple[Tensor, Tensor]:
        h = self._sigma_h(torch.addmm(px_t, y_prev, self.weight_hh.t()))
        y = self._sigma_y(F.linear(h, self.weight_hy, self.bias_hy))
        return y, y

    def force(self, state: Tensor, feedback: Tensor) -> Tensor:
        return feedback

    def kernel_arguments(self) -> dict:
        return {"weight_hh": self.weight_hh, "weight_hy": self.weight_hy, "bias_hy": self.bias_hy,
                "hidden_activation": self.hidden_activation, "output_activation": self.output_activation}

    def note_weights(self) -> dict[str, Tensor]:
        w = {"W_h": self.weight_ih, "U_h": self.weight_hh, "W_y": self.weight_hy}
        if self.bias_ih is not None:
            w.update(b_h=self.bias_ih, b_y=self.bias_hy)
        return w

    def extra_repr(self) -> str:
        return super().extra_repr() + f", output_size={self.output_size}"
