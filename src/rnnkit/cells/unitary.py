"""The unitary evolution RNN (uRNN; Arjovsky, Shah & Bengio 2016) with the modReLU nonlinearity — seed 000's "fancy
regularization: unitary matrices" taken to complex hidden states.

    h_t = modReLU(W h_{t−1} + V x_t, b),   h_t ∈ ℂ^N
    W   = D_3 R_2 F⁻¹ D_2 Π R_1 F D_1                                     (Arjovsky et al. eq. 6)
    D_j = diag(e^{iθ_j})       diagonal phases, θ_j ∈ ℝ^N
    R_j = I − 2 v_j v_j* / ‖v_j‖²   complex Householder reflections, v_j ∈ ℂ^N
    F   = the unitary discrete Fourier transform (``torch.fft``, norm="ortho"), Π a fixed random permutation
    modReLU(z, b)_i = (|z_i| + b_i) z_i / |z_i|  if |z_i| + b_i ≥ 0, else 0              (eq. 8)

Every factor is unitary, so W is unitary for any parameter values: ‖W h‖ = ‖h‖ exactly and the gradient through
W neither explodes nor vanishes, at 7N parameters and O(N log N) a step instead of N². The real orthogonal
recurrence (``rnnkit.cells.recurrence.orthogonal_recurrence``) constrains a real H × H W_hh instead: full capacity
over the orthogonal group, H² parameters, and any cell's nonlinearity.

State and output are real: [Re h_t; Im h_t], 2N numbers (``output_size = 2 · hidden_size``), which is also what
Arjovsky et al.'s output layer reads. V (2N × D) holds [Re V; Im V], so the input product is the sequence layer's
ordinary time-parallel ``input_projection``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import Cell

MODRELU_EPS = 1e-5  # z / (|z| + ε): the phase of z, finite at z = 0


def mod_relu(z: Tensor, bias: Tensor) -> Tensor:
    """modReLU(z, b) = ReLU(|z| + b) · z / |z| for complex z (Arjovsky et al. 2016 eq. 8; z/(|z| + 1e-5) for the
    phase)."""
    magnitude = z.abs()
    return torch.relu(magnitude + bias) * (z / (magnitude + MODRELU_EPS))


class UnitaryCell(Cell):
    """Arjovsky et al.'s uRNN step (the module docstring has the equations).

    Args:
        input_size: D. hidden_size: N, complex units (the state and output are 2N real numbers).
        permutation_seed: seed of the fixed permutation Π.

    Parameters: ``weight_ih`` = [Re V; Im V] (2N, D); ``theta`` (3, N) the phases of D_1..D_3; ``reflection``
    (2, 2, N) the real and imaginary parts of v_1, v_2; ``bias`` = b (N) of modReLU. Initialised as the paper's
    code: θ ~ U[−π, π], v ~ U[−1, 1], V Glorot-uniform, b = 0.

    Example::

        cell = UnitaryCell(8, 16)
        y, h = cell(torch.randn(4, 8))      # y = h = [Re h_t; Im h_t], (4, 32)
    """

    recurrent_weights = ()  # the recurrence is a product of structured unitary factors: nothing to DropConnect

    def __init__(self, input_size: int, hidden_size: int, permutation_seed: int = 0):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, 2 * hidden_size
        N = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(2 * N, input_size))
        self.bias_ih = None
        self.theta = nn.Parameter(torch.empty(3, N))
        self.reflection = nn.Parameter(torch.empty(2, 2, N))  # [v_1, v_2] × [re, im]
        self.bias = nn.Parameter(torch.zeros(N))
        g = torch.Generator().manual_seed(permutation_seed)
        self.register_buffer("permutation", torch.randperm(N, generator=g), persistent=True)
        bound = math.sqrt(6.0 / (input_size + 2 * N))
        with torch.no_grad():
            self.weight_ih.uniform_(-bound, bound)
            self.theta.uniform_(-math.pi, math.pi)
            self.reflection.uniform_(-1.0, 1.0)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch_size, 2 * self.hidden_size, device=device, dtype=dtype)

    def recurrence(self, h: Tensor) -> Tensor:
        """W h for complex h (B, N): D_3 R_2 F⁻¹ D_2 Π R_1 F D_1 h, applied factor by factor."""
        phases = torch.polar(torch.ones_like(self.theta), self.theta)  # e^{iθ}, (3, N)
        v = torch.complex(self.reflection[:, 0], self.reflection[:, 1])  # (2, N)
        h = h * phases[0]
        h = torch.fft.fft(h, norm="ortho")
        h = _reflect(h, v[0])
        h = h[:, self.permutation]
        h = h * phases[1]
        h = torch.fft.ifft(h, norm="ortho")
        h = _reflect(h, v[1])
        return h * phases[2]

    def matrix(self) -> Tensor:
        """W as an (N, N) complex matrix (columns W e_j), for checks and plots."""
        N = self.hidden_size
        dtype = torch.complex128 if self.theta.dtype == torch.float64 else torch.complex64
        eye = torch.eye(N, dtype=dtype, device=self.theta.device)
        return self.recurrence(eye).T  # row j of recurrence(eye) is W e_j

    def step(self, px_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        N = self.hidden_size
        if px_t.dtype in (torch.bfloat16, torch.float16):  # mixed precision: torch's FFT has no bf16, so the
            px_t, state = px_t.to(self.theta.dtype), state.to(self.theta.dtype)  # recurrence runs in fp32
        h = torch.complex(state[:, :N], state[:, N:])
        z = self.recurrence(h) + torch.complex(px_t[:, :N], px_t[:, N:])
        h = mod_relu(z, self.bias)
        out = torch.cat([h.real, h.imag], -1)
        return out, out

    def note_weights(self) -> dict[str, Tensor]:
        return {"V": self.weight_ih, "theta": self.theta, "v": self.reflection, "b": self.bias}

    def extra_repr(self) -> str:
        return super().extra_repr() + " (complex units; state and output 2·hidden_size real numbers)"


def _reflect(h: Tensor, v: Tensor) -> Tensor:
    """(I − 2 v v* / ‖v‖²) h for every row of h (B, N)."""
    coefficient = (h @ v.conj()) * (2.0 / (v.abs() ** 2).sum())  # (B,): v* h per row, scaled
    return h - coefficient[:, None] * v
