"""The convolutional LSTM (Shi et al. 2015, "Convolutional LSTM network: a machine learning approach for
precipitation nowcasting", eq. 3): the LSTM with every matrix product replaced by a convolution, so inputs, gates,
cell and hidden state are images (channels × height × width) and each unit sees only its neighbourhood.

It follows the cell contract with image-valued steps: ``input_projection`` convolves every step's input at once,
``step`` holds the convolution of h_{t-1}, and rnnkit's one time loop (``rnnkit.layers.recurrent.run_cell``) runs it
with lengths, reversal and zoneout unchanged. :class:`rnnkit.layers.ConvLSTM` is the layer users call.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Cell, LSTMState
from .lstm import gate_weights


class ConvLSTMCell(Cell):
    """One ConvLSTM step (Shi et al. 2015, eq. 3; without the peephole terms W_c ∘ C, as Keras' ``ConvLSTM2D`` and
    most implementations since)::

        (i, f, g, o) = (σ, σ, tanh, σ)(W_x ∗ X_t + W_h ∗ H_{t-1} + b)        (∗: 2-D convolution, same padding)
        C_t = f ∘ C_{t-1} + i ∘ g
        H_t = o ∘ tanh(C_t)

    Args:
        input_size: input channels C. hidden_size: hidden channels C_h. kernel_size: odd k (k × k kernels, padding
        k // 2 keeps the image size). bias: learn b. forget_bias: added to b's forget block at initialisation.

    Parameters: ``weight_ih`` (4C_h, C, k, k) = [W_xi; W_xf; W_xg; W_xo], ``weight_hh`` (4C_h, C_h, k, k),
    ``bias_ih`` (4C_h). State: ``LSTMState(h, c)``, each (B, C_h, height, width).
    """

    def __init__(self, input_size: int, hidden_size: int, kernel_size: int = 3, bias: bool = True,
                 forget_bias: float = 0.0):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive (same padding keeps the image size); got "
                             f"{kernel_size}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.kernel_size = kernel_size
        k = kernel_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, k, k))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, k, k))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        bound = 1.0 / (hidden_size * k * k) ** 0.5  # torch.nn's uniform rule, over a unit's recurrent fan-in
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)
            if bias and forget_bias:
                self.bias_ih[hidden_size:2 * hidden_size].add_(forget_bias)

    def initial_state(self, batch_size: int, device=None, dtype=None, size: tuple[int, int] = (1, 1)) -> LSTMState:
        """Zeros (B, C_h, height, width) for h and c; ``size`` is the image's (height, width)."""
        shape = (batch_size, self.hidden_size, *size)
        return LSTMState(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))

    def input_projection(self, x: Tensor) -> Tensor:
        """W_x ∗ X + b for every image of x (..., C, height, width) at once."""
        lead, image = x.shape[:-3], x.shape[-3:]
        out = F.conv2d(x.reshape(-1, *image), self.weight_ih, self.bias_ih, padding=self.kernel_size // 2)
        return out.view(*lead, *out.shape[1:])

    def step(self, px_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h_prev, c_prev = state
        gates = px_t + F.conv2d(h_prev, self.weight_hh, padding=self.kernel_size // 2)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, LSTMState(h, c)

    def forward(self, x_t: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        """One step on an input image batch x_t (B, C, height, width)."""
        if x_t.dim() != 4 or x_t.shape[1] != self.input_size:
            raise ValueError(f"ConvLSTMCell expected input (batch, {self.input_size} channels, height, width); got "
                             f"{tuple(x_t.shape)}")
        if state is None:
            state = self.initial_state(x_t.shape[0], x_t.device, x_t.dtype, tuple(x_t.shape[-2:]))
        return self.step(self.input_projection(x_t), LSTMState(*state))

    def note_weights(self) -> dict[str, Tensor]:
        return gate_weights(self.weight_ih, self.weight_hh, self.bias_ih)  # the kernels (4C_h, ·, k, k) by gate

    def extra_repr(self) -> str:
        return super().extra_repr() + f", kernel_size={self.kernel_size}"
