"""MUT1, MUT2, MUT3: the three architectures found by evolutionary search in Jozefowicz, Zaremba &
Sutskever, "An Empirical Exploration of Recurrent Network Architectures" (ICML 2015), as seed 000
writes them (z = update gate, r = reset gate).

Raw-input terms. MUT1's ``tanh(x_t)`` and MUT2's ``r = sigm(x_t + ...)`` add the input itself to an
H-dimensional vector, which only type-checks when input_size == hidden_size (the paper's setting).
rnnkit's choice: with equal sizes the raw x_t is used exactly as written (``project_input=None`` or
``False``); with unequal sizes (or ``project_input=True``) x_t is replaced by a learned linear map
P x_t, P of shape (H, D) (parameter ``weight_xp``), the smallest change that makes the equation
type-check. ``project_input=False`` with unequal sizes is an error.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Cell, linear, uniform_init_


class _MUTBase(Cell):
    """Shared set-up: sizes, input weights ``weight_ih`` (k·H, D), ``bias_ih`` = [b_z; b_r; b_h], the
    candidate's ``weight_hh`` = W_hh (H, H), and the raw-input map P when one is needed."""

    n_input_matrices: int  # how many H-row blocks weight_ih stacks
    raw_input: bool = True  # whether the equations use x_t itself
    kernel_family = "gated"  # rnnkit.native: px = [z, r, h̃] blocks, h_{t+1} = z h̃ + (1 - z) h_t

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 project_input: bool | None = None):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        if project_input is None:
            project_input = input_size != hidden_size
        if self.raw_input and not project_input and input_size != hidden_size:
            raise ValueError(f"{type(self).__name__} uses x_t directly, which needs input_size == hidden_size; "
                             f"got {input_size} != {hidden_size}. Use project_input=True (learned P x_t)")
        self.project_input = bool(project_input) and self.raw_input
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(self.n_input_matrices * H, input_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * H)) if bias else None
        self.weight_xp = nn.Parameter(torch.empty(H, input_size)) if self.project_input else None
        self._recurrent_parameters(H)
        self.weight_hh = nn.Parameter(torch.empty(H, H))
        uniform_init_(self, H)

    def _recurrent_parameters(self, H: int) -> None:
        raise NotImplementedError

    def _raw(self, x: Tensor) -> Tensor:
        """x_t as the note writes it, or P x_t when sizes differ."""
        return x if self.weight_xp is None else linear(x, self.weight_xp)

    def _raw_map(self) -> Tensor:
        """The matrix the raw-input term multiplies x_t by: P, or the identity (H, H) where x_t is used as it is."""
        if self.weight_xp is not None:
            return self.weight_xp
        return torch.eye(self.hidden_size, dtype=self.weight_ih.dtype, device=self.weight_ih.device)

    def _bias(self, k: int) -> Tensor | None:
        """b_z, b_r, b_h for k = 0, 1, 2."""
        if self.bias_ih is None:
            return None
        H = self.hidden_size
        return self.bias_ih[k * H:(k + 1) * H]

    def _candidate(self, px_h: Tensor, r: Tensor, h_prev: Tensor, z: Tensor) -> Tensor:
        """h_{t+1} = tanh(px_h + W_hh (r ⊙ h_t)) ⊙ z + h_t ⊙ (1 - z), shared by all three."""
        h_tilde = torch.tanh(torch.addmm(px_h, r * h_prev, self.weight_hh.t()))
        return torch.addcmul(h_prev, z, h_tilde - h_prev)

    def note_weights(self) -> dict[str, Tensor]:
        w = {"W_hh": self.weight_hh}
        if self.weight_xp is not None:
            w["P"] = self.weight_xp
        if self.bias_ih is not None:
            w.update(zip(("b_z", "b_r", "b_h"), self.bias_ih.chunk(3)))
        return w


class MUT1Cell(_MUTBase):
    """MUT1 (seed 000)::

        z = sigm(W_xz x_t + b_z)
        r = sigm(W_xr x_t + W_hr h_t + b_r)
        h_{t+1} = tanh(W_hh (r ⊙ h_t) + tanh(x_t) + b_h) ⊙ z + h_t ⊙ (1 - z)

    z depends on x_t alone: its pre-activation W_xz x_t + b_z is the input projection's first block (the step
    squashes it, as for the gates of MUT2-3).
    Parameters: ``weight_ih`` = [W_xz; W_xr] (2H, D), ``weight_hr`` (H, H), ``weight_hh`` (H, H).
    """

    recurrent_weights = ("weight_hr", "weight_hh")
    n_input_matrices = 2
    stack_step_family = "mut1"  # rnnkit.native.stack_step: generation's token loop

    def _recurrent_parameters(self, H: int) -> None:
        self.weight_hr = nn.Parameter(torch.empty(H, H))

    def stack_step_weights(self) -> tuple[Tensor, Tensor]:
        """[[W_xz; W_xr; I or P] | [0; W_hr; W_hh]] (3H, D + H) and [b_z; b_r; b_h]: the kernel squashes the third
        block's product (tanh(x_t), or tanh(P x_t)) before adding b_h, and reads no recurrent term for z."""
        W_x = torch.cat([self.weight_ih, self._raw_map()])
        W_h = torch.cat([torch.zeros_like(self.weight_hr), self.weight_hr, self.weight_hh])
        weight = torch.cat([W_x, W_h], 1)
        return weight, self._bias_or_zeros(self.bias_ih, weight)

    def input_projection(self, x: Tensor) -> Tensor:
        H = self.hidden_size
        # [W_xz; W_xr] x + [b_z; b_r] in one product
        zr = linear(x, self.weight_ih, None if self.bias_ih is None else self.bias_ih[: 2 * H])
        ph = torch.tanh(self._raw(x))
        if self.bias_ih is not None:
            ph = ph + self._bias(2)
        return torch.cat([zr, ph], -1)  # (..., 3H)

    def step(self, px_t: Tensor, h_prev: Tensor) -> tuple[Tensor, Tensor]:
        pz, pr, ph = px_t.chunk(3, 1)
        z = torch.sigmoid(pz)
        r = torch.sigmoid(torch.addmm(pr, h_prev, self.weight_hr.t()))
        h = self._candidate(ph, r, h_prev, z)
        return h, h

    def kernel_arguments(self) -> dict:
        return {"weight_h": self.weight_hr, "weight_c": self.weight_hh, "z_block": 0, "h_col": self.hidden_size,
                "z_keeps": False}

    def note_weights(self) -> dict[str, Tensor]:
        W_xz, W_xr = self.weight_ih.chunk(2)
        return {**super().note_weights(), "W_xz": W_xz, "W_xr": W_xr, "W_hr": self.weight_hr}


class MUT2Cell(_MUTBase):
    """MUT2 (seed 000)::

        z = sigm(W_xz x_t + W_hz h_t + b_z)
        r = sigm(x_t + W_hr h_t + b_r)
        h_{t+1} = tanh(W_hh (r ⊙ h_t) + W_xh x_t + b_h) ⊙ z + h_t ⊙ (1 - z)

    Parameters: ``weight_ih`` = [W_xz; W_xh] (2H, D), ``weight_hzr`` = [W_hz; W_hr] (2H, H)
    (one product per step for both gates), ``weight_hh`` (H, H).
    """

    recurrent_weights = ("weight_hzr", "weight_hh")
    n_input_matrices = 2
    stack_step_family = "mut2"  # rnnkit.native.stack_step: generation's token loop

    def _recurrent_parameters(self, H: int) -> None:
        self.weight_hzr = nn.Parameter(torch.empty(2 * H, H))

    def stack_step_weights(self) -> tuple[Tensor, Tensor]:
        """[[W_xz; I or P; W_xh] | [W_hz; W_hr; W_hh]] (3H, D + H) and [b_z; b_r; b_h]: r's raw-input term x_t (or
        P x_t) as a product with the identity (or P)."""
        W_xz, W_xh = self.weight_ih.chunk(2)
        W_x = torch.cat([W_xz, self._raw_map(), W_xh])
        weight = torch.cat([W_x, torch.cat([self.weight_hzr, self.weight_hh])], 1)
        return weight, self._bias_or_zeros(self.bias_ih, weight)

    def input_projection(self, x: Tensor) -> Tensor:
        # [W_xz; W_xh] x + [b_z; b_h] in one product
        bias = None if self.bias_ih is None else torch.cat([self._bias(0), self._bias(2)])
        zh = linear(x, self.weight_ih, bias)
        pr = self._raw(x)
        if self.bias_ih is not None:
            pr = pr + self._bias(1)
        z, h = zh.chunk(2, -1)
        return torch.cat([z, pr, h], -1)  # (..., 3H)

    def step(self, px_t: Tensor, h_prev: Tensor) -> tuple[Tensor, Tensor]:
        H = self.hidden_size
        zr = torch.sigmoid(torch.addmm(px_t[:, : 2 * H], h_prev, self.weight_hzr.t()))
        z, r = zr.chunk(2, 1)
        h = self._candidate(px_t[:, 2 * H:], r, h_prev, z)
        return h, h

    def kernel_arguments(self) -> dict:
        return {"weight_h": self.weight_hzr, "weight_c": self.weight_hh, "z_block": 0, "h_col": 0,
                "z_keeps": False}

    def note_weights(self) -> dict[str, Tensor]:
        W_xz, W_xh = self.weight_ih.chunk(2)
        W_hz, W_hr = self.weight_hzr.chunk(2)
        return {**super().note_weights(), "W_xz": W_xz, "W_xh": W_xh, "W_hz": W_hz, "W_hr": W_hr}


class MUT3Cell(_MUTBase):
    """MUT3 (seed 000)::

        z = sigm(W_xz x_t + W_hz tanh(h_t) + b_z)
        r = sigm(W_xr x_t + W_hr h_t + b_r)
        h_{t+1} = tanh(W_hh (r ⊙ h_t) + W_xh x_t + b_h) ⊙ z + h_t ⊙ (1 - z)

    Every input term has its own matrix, so any input size works. Parameters: ``weight_ih`` =
    [W_xz; W_xr; W_xh] (3H, D), ``weight_hz`` (H, H), ``weight_hr`` (H, H), ``weight_hh`` (H, H).
    """

    recurrent_weights = ("weight_hz", "weight_hr", "weight_hh")
    n_input_matrices = 3
    raw_input = False
    stack_step_family = "mut3"  # rnnkit.native.stack_step: generation's token loop

    def stack_step_weights(self) -> tuple[Tensor, Tensor]:
        """[W_x | [W_hz; W_hr; W_hh]] (3H, D + H) and [b_z; b_r; b_h] (3H)."""
        weight = torch.cat([self.weight_ih, torch.cat([self.weight_hz, self.weight_hr, self.weight_hh])], 1)
        return weight, self._bias_or_zeros(self.bias_ih, weight)

    def _recurrent_parameters(self, H: int) -> None:
        self.weight_hz = nn.Parameter(torch.empty(H, H))
        self.weight_hr = nn.Parameter(torch.empty(H, H))

    def step(self, px_t: Tensor, h_prev: Tensor) -> tuple[Tensor, Tensor]:
        pz, pr, ph = px_t.chunk(3, 1)
        z = torch.sigmoid(torch.addmm(pz, torch.tanh(h_prev), self.weight_hz.t()))
        r = torch.sigmoid(torch.addmm(pr, h_prev, self.weight_hr.t()))
        h = self._candidate(ph, r, h_prev, z)
        return h, h

    def kernel_arguments(self) -> dict:
        return {"weight_h": self.weight_hr, "weight_t": self.weight_hz, "weight_c": self.weight_hh, "z_block": 0,
                "h_col": self.hidden_size, "z_keeps": False}

    def note_weights(self) -> dict[str, Tensor]:
        W_xz, W_xr, W_xh = self.weight_ih.chunk(3)
        return {**super().note_weights(), "W_xz": W_xz, "W_xr": W_xr, "W_xh": W_xh,
                "W_hz": self.weight_hz, "W_hr": self.weight_hr}
