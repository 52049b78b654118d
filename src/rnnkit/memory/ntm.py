"""The neural Turing machine as a recurrent cell (Graves, Wayne & Danihelka 2014; seed 003 "explicit memory"), so
that rnnkit's sequence layer, trainer and CLI run it like any other cell.

References: Graves et al. 2014, "Neural Turing Machines", arXiv:1410.5401 (§3, eq. 2-9); Collier & Beel 2018,
"Implementing Neural Turing Machines", arXiv:1807.08518 (constant memory initialisation, learned initial reads
and weightings, clipped controller outputs).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..cells.base import Cell, State, activation, uniform_init_
from .addressing import address, read, write

MEMORY_INITS = ("constant", "learned", "random")
WEIGHT_INITS = ("learned", "first")
CONSTANT_MEMORY = 1e-6  # Collier & Beel 2018: every cell 10^-6


class NTMState(NamedTuple):
    """State of :class:`NTMCell`: the controller's own state first (its hidden state is this state's first
    tensor), the memory (B, N, M), the last read vectors (B, R, M) and the last weightings of every head
    (B, R + W, N), read heads first."""

    controller: State
    memory: Tensor
    reads: Tensor
    weights: Tensor


class FeedForwardController(Cell):
    """A controller without recurrence: h_t = σ(W [x_t; r_{t−1}] + b) (Graves §4, "feedforward controller"). The
    state is the last output and is not read by the next step: all memory lives in the NTM's memory."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.nonlinearity, self._sigma = nonlinearity, activation(nonlinearity)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        uniform_init_(self, hidden_size)

    def step(self, px_t: Tensor, h_prev: Tensor) -> tuple[Tensor, Tensor]:
        h = self._sigma(px_t)
        return h, h


class NTMCell(Cell):
    """Neural Turing machine: a controller reading and writing an N×M memory through soft heads.

    R read heads and W write heads, every access a soft, differentiable weighting over all N locations.

    One step (Graves 2014 §3; the order of Collier & Beel 2018 and pytorch-ntm)::

        h_t, c_t   = controller([x_t; r_{t−1}], c_{t−1})                 any registered cell, or feed-forward
        k, β, g, s, γ (per head), e, a (per write head) = clip(W_p h_t + b_p, ±clip), then
            k = tanh, β = softplus, g = sigmoid, s = softmax over shifts −S..S, γ = 1 + softplus,
            e = sigmoid, a = tanh
        w_t        = sharpen(shift(g w^c + (1 − g) w_{t−1}, s), γ),  w^c = softmax(β cos(k, M_{t−1}(i)))   eq. 5-9
        r_t        = w_t^r M_{t−1}                                        eq. 2 (reads see the memory before the write)
        M_t(i)     = M_{t−1}(i) ∘ Π_h [1 − w_t^h(i) e_h] + Σ_h w_t^h(i) a_h                            eq. 3-4
        y_t        = [h_t; r_t]                                            (B, H + R·M); a model adds the output layer

    The initial state: memory every entry 10^-6 (``memory_init="constant"``, Collier & Beel 2018, who found it
    converges about 2x faster than ``"learned"`` or ``"random"``), read vectors tanh(learned) (Collier & Beel), and
    every head focused on location 0 (``initial_weights="first"``, as NTM-Lasagne). Collier & Beel's
    softmax(learned) start (``initial_weights="learned"``, drawn at random) is nearly uniform, and over a uniform
    memory a uniform weighting stays uniform: every location looks alike to content addressing and to the shift,
    so the heads must first break that symmetry. On the copy task 5 of 6 runs learned within 10,000 sequences with
    the location-0 start, 2 of 6 with the learned one (docs/memory.md, ``bench_ntm.py init``).

    Args:
        input_size: D. hidden_size: H, the controller's size.
        memory_size: N locations. memory_width: M entries per location.
        read_heads: R ≥ 1. write_heads: W ≥ 0. shift_range: S, shifts −S..S (2S + 1 ≤ N).
        controller: a registered cell name (``"lstm"``, ``"gru"``, ...) or ``"feedforward"``.
        controller_options: the controller cell's own arguments (e.g. ``{"forget_bias": 1.0}``).
        memory_init: ``"constant"``, ``"learned"`` (a parameter, starting at the constant) or ``"random"``
            (N(0, 0.5) drawn once, then fixed).
        initial_weights: ``"first"`` (every head starts on location 0) or ``"learned"`` (softmax of learned logits).
        clip: clip the controller's head parameters to [−clip, clip] before their activations (0: off).

    Shapes: state :class:`NTMState`; output (B, H + R·M).

    Example::

        rnn = RNN(9, 100, num_layers=1, cell="ntm", memory_size=128, memory_width=20)
        out, state = rnn(torch.randn(4, 41, 9))        # out (4, 41, 120); state.memory (1, 4, 128, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, memory_size: int = 128, memory_width: int = 20,
                 read_heads: int = 1, write_heads: int = 1, shift_range: int = 1, controller: str = "lstm",
                 controller_options: dict | None = None, memory_init: str = "constant", initial_weights: str = "first",
                 clip: float = 20.0):
        super().__init__()
        for name, value, low in (("memory_size", memory_size, 1), ("memory_width", memory_width, 1),
                                 ("read_heads", read_heads, 1), ("write_heads", write_heads, 0),
                                 ("shift_range", shift_range, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"NTMCell: {name} must be an integer >= {low}; got {value!r}")
        if 2 * shift_range + 1 > memory_size:
            raise ValueError(f"NTMCell: shift_range {shift_range} covers {2 * shift_range + 1} shifts, more than the "
                             f"{memory_size} memory locations; need 2·shift_range + 1 <= memory_size")
        if memory_init not in MEMORY_INITS:
            raise ValueError(f"NTMCell: memory_init must be one of {list(MEMORY_INITS)}; got {memory_init!r}")
        if initial_weights not in WEIGHT_INITS:
            raise ValueError(f"NTMCell: initial_weights must be one of {list(WEIGHT_INITS)}; got {initial_weights!r}")
        if not (isinstance(clip, (int, float)) and math.isfinite(clip) and clip >= 0):
            raise ValueError(f"NTMCell: clip must be a finite number >= 0 (0: off); got {clip!r}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.memory_size, self.memory_width = memory_size, memory_width
        self.read_heads, self.write_heads, self.shift_range = read_heads, write_heads, shift_range
        self.memory_init, self.clip, self.controller_name = memory_init, float(clip), controller
        self.initial_weights = initial_weights
        N, M, R, W, K = memory_size, memory_width, read_heads, write_heads, read_heads + write_heads

        controller_input = input_size + R * M
        options = dict(controller_options or {})
        if controller == "feedforward":
            self.controller = FeedForwardController(controller_input, hidden_size, **options)
        else:
            from ..registry import build_cell

            self.controller = build_cell(controller, controller_input, hidden_size, **options)
        self.output_size = self.controller.output_size + R * M
        # the controller's input product splits in two when it is the plain affine one: the x half for all steps
        # at once (input_projection), the r_{t-1} half in the step
        self._split_projection = type(self.controller).input_projection is Cell.input_projection

        # k, β, g, s, γ for every head; e, a for every write head
        self._sizes = [K * M, K, K, K * (2 * shift_range + 1), K, W * M, W * M]
        self.head_params = nn.Linear(self.controller.output_size, sum(self._sizes))

        # the start state (Collier & Beel 2018)
        if initial_weights == "learned":
            glorot = math.sqrt(6.0 / (1 + N))
            self.initial_weight_logits = nn.Parameter(torch.empty(K, N).uniform_(-glorot, glorot))
        else:  # every head on location 0 (a fixed one-hot start)
            logits = torch.full((K, N), -math.inf)
            logits[:, 0] = 0.0
            self.register_buffer("initial_weight_logits", logits)
        self.initial_read_logits = nn.Parameter(torch.empty(R, M).uniform_(-math.sqrt(6.0 / (1 + M)),
                                                                           math.sqrt(6.0 / (1 + M))))
        if memory_init == "learned":
            self.initial_memory = nn.Parameter(torch.full((N, M), CONSTANT_MEMORY))
        else:
            start = torch.full((N, M), CONSTANT_MEMORY) if memory_init == "constant" else torch.randn(N, M) * 0.5
            self.register_buffer("initial_memory", start)

    # ---- the contract -------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device=None, dtype=None) -> NTMState:
        N, M, R, K = self.memory_size, self.memory_width, self.read_heads, self.read_heads + self.write_heads
        controller = self.controller.initial_state(batch_size, device=device, dtype=dtype)
        if device is not None and torch.device(device).type == "meta":  # shapes only (state checks)
            return NTMState(controller, *(torch.empty(batch_size, *shape, device="meta", dtype=dtype)
                                          for shape in ((N, M), (R, M), (K, N))))
        dtype = dtype or self.initial_weight_logits.dtype
        device = device if device is not None else self.initial_weight_logits.device

        def batch(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype).unsqueeze(0).expand(batch_size, *t.shape)

        return NTMState(controller, batch(self.initial_memory), batch(torch.tanh(self.initial_read_logits)),
                        batch(torch.softmax(self.initial_weight_logits, -1)))

    def input_projection(self, x: Tensor) -> Tensor:
        if not self._split_projection:
            return x
        c = self.controller
        return F.linear(x, c.weight_ih[:, : self.input_size], c.bias_ih)

    def step(self, px_t: Tensor, state: NTMState) -> tuple[Tensor, NTMState]:
        R, W, M = self.read_heads, self.write_heads, self.memory_width
        B = px_t.shape[0]
        c = self.controller
        # 1. controller on [x_t; r_{t-1}]
        reads_prev = state.reads.reshape(B, R * M)
        if self._split_projection:
            pc = px_t + F.linear(reads_prev, c.weight_ih[:, self.input_size:])
        else:
            pc = c.input_projection(torch.cat([px_t, reads_prev], -1))
        h, controller_state = c.step(pc, state.controller)
        # 2. every head's parameters from one product, clipped, through their activations
        p = self.head_params(h)
        if self.clip > 0:
            p = p.clamp(-self.clip, self.clip)
        key, beta, gate, shifts, gamma, erase, add = p.split(self._sizes, -1)
        K = R + W
        weights = address(state.memory, state.weights, torch.tanh(key).view(B, K, M), F.softplus(beta),
                          torch.sigmoid(gate), torch.softmax(shifts.view(B, K, -1), -1), 1 + F.softplus(gamma))
        # 3. read the memory as it was, then write
        reads = read(state.memory, weights[:, :R])
        memory = state.memory
        if W:
            memory = write(memory, weights[:, R:], torch.sigmoid(erase).view(B, W, M), torch.tanh(add).view(B, W, M))
        return torch.cat([h, reads.reshape(B, R * M)], -1), NTMState(controller_state, memory, reads, weights)

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, memory={self.memory_size}x"
                f"{self.memory_width}, read_heads={self.read_heads}, write_heads={self.write_heads}, "
                f"shift_range={self.shift_range}, controller={self.controller_name!r}, "
                f"memory_init={self.memory_init!r}, clip={self.clip:g}")
