"""GRU cells in the two forms the notes and libraries use.

* :class:`GRUCell` — the cuDNN / torch.nn.GRU form: the reset gate multiplies the recurrent product
  *after* it, r ⊙ (W_hn h + b_hn) (Cho et al. 2014 v1; Keras ``reset_after=True``). Native kernel.
* :class:`ChoGRUCell` — the form seeds 000 and 004 write: the reset gate is applied *before* the
  recurrent product, W_hh (r ⊙ h) (Cho et al. 2014 v3; Keras ``reset_after=False``).

The two are different functions of the same-shaped weights; results differ (USERS.md item 12).
Seed 004 writes h_t = (1 - z) h_{t-1} + z h̃; seed 000 and torch write h_t = z h_{t-1} + (1 - z) h̃.
rnnkit follows seed 000 and torch; seed 004's form is the same model with z replaced by 1 - z.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Cell, uniform_init_


class _GRUBase(Cell):
    """Input side shared by both GRU forms: ``weight_ih`` (3H, D) = [W_xr; W_xz; W_xh], ``bias_ih`` (3H)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self._recurrent_parameters(hidden_size, bias)
        uniform_init_(self, hidden_size)

    def _recurrent_parameters(self, H: int, bias: bool) -> None:
        raise NotImplementedError

    def _recurrent_blocks(self) -> tuple[Tensor, Tensor, Tensor]:
        """W_hr, W_hz, W_hh."""
        raise NotImplementedError

    def note_weights(self) -> dict[str, Tensor]:
        w = {}
        for name, wx, wh in zip(("r", "z", "h"), self.weight_ih.chunk(3), self._recurrent_blocks()):
            w[f"W_x{name}"], w[f"W_h{name}"] = wx, wh
        if self.bias_ih is not None:
            w.update(zip(("b_r", "b_z", "b_h"), self.bias_ih.chunk(3)))
        return w


class GRUCell(_GRUBase):
    """GRU step, torch/cuDNN form (reset after the recurrent product).

    Equations (torch.nn.GRU)::

        r = σ(W_xr x_t + b_r + W_hr h_{t-1} + b_hr)
        z = σ(W_xz x_t + b_z + W_hz h_{t-1} + b_hz)
        n = tanh(W_xh x_t + b_h + r ⊙ (W_hh h_{t-1} + b_hh))
        h_t = z ⊙ h_{t-1} + (1 - z) ⊙ n

    ``weight_hh`` (3H, H) = [W_hr; W_hz; W_hh]; ``bias_hh`` (3H) = [b_hr; b_hz; b_hh] is needed because
    b_hh sits inside the reset product. Copying torch.nn.GRU weights is one-to-one.
    """

    native_mode = "GRU"
    kernel_family = "gru"  # rnnkit.native's kernel: faster than torch's on the CPU (docs/benchmarks.md)
    stack_step_family = "gru"  # rnnkit.native.stack_step: generation's token loop

    def kernel_arguments(self) -> dict:
        return {"weight_hh": self.weight_hh, "bias_hh": self.bias_hh}

    def _recurrent_parameters(self, H: int, bias: bool) -> None:
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H))
        self.bias_hh = nn.Parameter(torch.empty(3 * H)) if bias else None

    def _recurrent_blocks(self):
        return self.weight_hh.chunk(3)

    def step(self, px_t: Tensor, h_prev: Tensor) -> tuple[Tensor, Tensor]:
        gh = self._recurrent_term(h_prev)  # (B, 3H)
        x_r, x_z, x_n = px_t.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(torch.addcmul(x_n, r, h_n))
        h = n + z * (h_prev - n)
        return h, h

    def _recurrent_term(self, h_prev: Tensor) -> Tensor:
        """[W_hr; W_hz; W_hh] h_{t-1} + b_hh (B, 3H)."""
        return F.linear(h_prev, self.weight_hh, self.bias_hh)

    def stack_step_weights(self) -> tuple[Tensor, Tensor]:
        """[W_x | W_h] (3H, D + H) and [b_ih | b_hh] (6H): b_hh sits inside the reset product."""
        weight = torch.cat([self.weight_ih, self.weight_hh], 1)
        return weight, torch.cat([self._bias_or_zeros(self.bias_ih, weight), self._bias_or_zeros(self.bias_hh, weight)])

    def native_weights(self) -> list[Tensor]:
        if self.bias_ih is None:
            return [self.weight_ih, self.weight_hh]
        return [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]

    def note_weights(self) -> dict[str, Tensor]:
        w = super().note_weights()
        if self.bias_hh is not None:
            w.update(zip(("b_hr", "b_hz", "b_hh"), self.bias_hh.chunk(3)))
        return w


class ChoGRUCell(_GRUBase):
    """GRU step as seeds 000 and 004 write it (reset before the recurrent product).

    Seed 000 (Cho et al. 2014)::

        r_t = σ(W_xr x_t + W_hr h_{t-1} + b_r)
        z_t = σ(W_xz x_t + W_hz h_{t-1} + b_z)
        h̃_t = tanh(W_xh x_t + W_hh (r_t ⊙ h_{t-1}) + b_h)
        h_t = z_t ⊙ h_{t-1} + (1 - z_t) ⊙ h̃_t

    Two recurrent products per step (the second needs r_t), so torch has no kernel for it; rnnkit's native
    gated-update kernel runs it (``rnnkit.native``).
    Parameters: ``weight_hrz`` (2H, H) = [W_hr; W_hz] (both gates in one product), ``weight_hh`` (H, H).
    """

    kernel_family = "gated"
    stack_step_family = "gru-cho"  # rnnkit.native.stack_step: generation's token loop
    recurrent_weights = ("weight_hrz", "weight_hh")

    def _recurrent_parameters(self, H: int, bias: bool) -> None:
        self.weight_hrz = nn.Parameter(torch.empty(2 * H, H))
        self.weight_hh = nn.Parameter(torch.empty(H, H))

    def _recurrent_blocks(self):
        return (*self.weight_hrz.chunk(2), self.weight_hh)

    def step(self, px_t: Tensor, h_prev: Tensor) -> tuple[Tensor, Tensor]:
        H = self.hidden_size
        rz = torch.sigmoid(torch.addmm(px_t[:, : 2 * H], h_prev, self.weight_hrz.t()))
        r, z = rz.chunk(2, 1)
        h_tilde = torch.tanh(torch.addmm(px_t[:, 2 * H:], r * h_prev, self.weight_hh.t()))
        h = h_tilde + z * (h_prev - h_tilde)
        return h, h

    def stack_step_weights(self) -> tuple[Tensor, Tensor]:
        """[W_x | [W_hr; W_hz; W_hh]] (3H, D + H) and b (3H)."""
        weight = torch.cat([self.weight_ih, torch.cat([self.weight_hrz, self.weight_hh])], 1)
        return weight, self._bias_or_zeros(self.bias_ih, weight)

    def kernel_arguments(self) -> dict:
        # px = [r, z, h̃] blocks; W_hrz adds to the first two; h_t = z h_{t-1} + (1 - z) h̃
        return {"weight_h": self.weight_hrz, "weight_c": self.weight_hh, "z_block": 1, "h_col": 0,
                "z_keeps": True}
