"""Layer-normalised LSTM and GRU cells (Ba, Kiros & Hinton 2016, "Layer normalization", §3.1 and the LSTM of its
supplementary material; the parametrisation of haste's ``LayerNormLSTM``).

Layer normalisation rescales a pre-activation vector a (B, G) by its own statistics over its G units, per row and
per step, so it works at batch 1 and with any sequence length, unlike batch normalisation::

    LN(a; γ, β) = γ ⊙ (a − mean(a)) / sqrt(var(a) + ε) + β

The input term and the recurrent term are normalised separately, so the size of neither depends on the scale of
the weights or of h_{t-1}; the input term's normalisation depends on x alone and runs for all steps at once in
``input_projection``. The gains start at 1 and the shifts at 0: at initialisation each normalised term has unit
variance per row. The LSTM also normalises the cell before its output squashing. No torch or native kernel runs
these cells: they run rnnkit's loop over ``step`` (docs/cells.md has their speed).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .gru import GRUCell
from .lstm import LSTMCell

EPS = 1e-5  # torch.nn.LayerNorm's default


def _unit_gain(size: int) -> nn.Parameter:
    return nn.Parameter(torch.ones(size))


class LayerNormLSTMCell(LSTMCell):
    """LSTM with layer normalisation (Ba et al. 2016)::

        (i, f, g, o) = LN(W_x x_t; γ_x) + LN(W_h h_{t-1}; γ_h) + b        (LN over all 4H gate units)
        c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
        h_t = σ(o) ⊙ tanh(LN(c_t; γ_c, β_c))

    Ba et al. write a shift β for each of the three; the two on the gate terms and b would add up to one vector,
    so (as haste) only b is kept there. Parameters: those of :class:`LSTMCell` (``bias_ih`` is b) plus ``ln_x_gain``
    and ``ln_h_gain`` (4H), ``ln_c_gain`` and ``ln_c_shift`` (H). ``forget_bias`` adds to b's forget block, as for
    the LSTM. No ``proj_size``.
    """

    native_mode = None
    _step_family = None

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, forget_bias: float = 0.0):
        super().__init__(input_size, hidden_size, bias=bias, forget_bias=forget_bias)
        self.reset_normalization()

    def _extra_parameters(self) -> None:
        H = self.hidden_size
        self.ln_x_gain, self.ln_h_gain, self.ln_c_gain = _unit_gain(4 * H), _unit_gain(4 * H), _unit_gain(H)
        self.ln_c_shift = nn.Parameter(torch.zeros(H))

    def reset_normalization(self) -> None:
        """Gains 1, shift 0 (their initial values; the LSTM's uniform initialisation draws every parameter)."""
        with torch.no_grad():
            for gain in (self.ln_x_gain, self.ln_h_gain, self.ln_c_gain):
                gain.fill_(1.0)
            self.ln_c_shift.zero_()

    @property
    def kernel_family(self) -> str | None:
        return None

    def input_projection(self, x: Tensor) -> Tensor:
        """LN(W_x x; γ_x) + b for every step at once."""
        return F.layer_norm(F.linear(x, self.weight_ih), (4 * self.hidden_size,), self.ln_x_gain, self.bias_ih, EPS)

    def _gates(self, px_t: Tensor, h_prev: Tensor) -> Tensor:
        return px_t + F.layer_norm(h_prev.mm(self.weight_hh.t()), (4 * self.hidden_size,), self.ln_h_gain, None, EPS)

    def _cell_read(self, c: Tensor) -> Tensor:
        return F.layer_norm(c, (self.hidden_size,), self.ln_c_gain, self.ln_c_shift, EPS)

    def note_weights(self) -> dict[str, Tensor]:
        return {**super().note_weights(), "gamma_x": self.ln_x_gain, "gamma_h": self.ln_h_gain,
                "gamma_c": self.ln_c_gain, "beta_c": self.ln_c_shift}


class LayerNormGRUCell(GRUCell):
    """GRU in torch's form (reset after the recurrent product) with layer normalisation::

        [a_r, a_z, a_n] = LN(W_x x_t; γ_x) + b_x,   [g_r, g_z, g_n] = LN(W_h h_{t-1}; γ_h) + b_h   (LN over 3H)
        r = σ(a_r + g_r),  z = σ(a_z + g_z),  n = tanh(a_n + r ⊙ g_n)
        h_t = z ⊙ h_{t-1} + (1 − z) ⊙ n

    Parameters: those of :class:`GRUCell` (``bias_ih`` = b_x, ``bias_hh`` = b_h, the shift of each
    normalisation) plus ``ln_x_gain`` and ``ln_h_gain`` (3H).
    """

    native_mode = None
    kernel_family = None
    stack_step_family = None

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__(input_size, hidden_size, bias=bias)
        self.reset_normalization()

    def _recurrent_parameters(self, H: int, bias: bool) -> None:
        super()._recurrent_parameters(H, bias)
        self.ln_x_gain, self.ln_h_gain = _unit_gain(3 * H), _unit_gain(3 * H)

    def reset_normalization(self) -> None:
        """Gains 1 (their initial value; the GRU's uniform initialisation draws every parameter)."""
        with torch.no_grad():
            self.ln_x_gain.fill_(1.0)
            self.ln_h_gain.fill_(1.0)

    def input_projection(self, x: Tensor) -> Tensor:
        """LN(W_x x; γ_x) + b_x for every step at once."""
        return F.layer_norm(F.linear(x, self.weight_ih), (3 * self.hidden_size,), self.ln_x_gain, self.bias_ih, EPS)

    def _recurrent_term(self, h_prev: Tensor) -> Tensor:
        return F.layer_norm(h_prev.mm(self.weight_hh.t()), (3 * self.hidden_size,), self.ln_h_gain, self.bias_hh,
                            EPS)

    def note_weights(self) -> dict[str, Tensor]:
        return {**super().note_weights(), "gamma_x": self.ln_x_gain, "gamma_h": self.ln_h_gain}
