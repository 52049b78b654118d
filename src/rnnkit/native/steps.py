"""The LSTM family's step at small batch without autograd: the generation hot path.

Sampling a token from a 2x512 character LSTM at batch 1 is a chain of matrix-vector products, and those are
bound by memory traffic, not arithmetic. Here, per layer and token, the two products of the notes' LSTM
(seed 000: W_ih x_t + W_hh h_{t-1} + b) are fused into one, [x_t, h_{t-1}] @ [W_ih | W_hh]^T + b, with the rows in
the cell's own order (i, f, g, o):

    i, f, o = σ(·),  g = tanh(·),  c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)

On the CPU a step of the whole stack is one call of rnnkit's native kernel (``rnnkit.native.lstm_stack_step``).
Steps of a few rows (:data:`NATIVE_STEP_MAX_ROWS`) read the weights once per row: each thread reads the four gate
rows of its units and applies the gate math, no other call per layer; under bf16 autocast it reads the weights in
bfloat16. Larger batches split the weight by output rows into one block per thread and run them as one batched
product, so every core streams its share (the fastest layout measured; ``benchmarks/bench_generation.py``), then
the gate math of the whole layer in one pass. Where the kernel does not run (a GPU, no compiler, bf16 weights
beyond a few rows) the same blocked product runs through torch, with the gate math in torch's operations.

A language model's generation runs its whole token loop there too (:meth:`FusedLSTMSteps.sample_stack`: draw the
token, look up its input, step the stack and the output layer, up to 64 tokens per native call), the same numbers
as a Python call per token without the ~100 µs per token those calls cost.

The fused weights are a cache, rebuilt whenever a parameter changes (its version counter or storage), so
training between samples is safe. They double the LSTM weights' memory while generating.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cells.base import tensor_version
from ..precision import active_dtype, step_linear
from . import lstm_stack_sample, lstm_stack_step, lstm_step, step_applies


def stack_applies(cells) -> bool:
    """Whether :class:`FusedLSTMSteps` can step ``cells``: every one an LSTM in torch's form (the cell declares the
    torch kernel ``"LSTM"``) without a projection."""
    return all(getattr(c, "native_mode", None) == "LSTM" and getattr(c, "weight_hr", None) is None for c in cells)


#: Steps of at most this many rows run in rnnkit's native step kernel (the weights read once per row, dot products
#: in registers); more rows run the batched product (a GEMM in row blocks). Where the two cross on a 2x512 LSTM
#: stack: ``python benchmarks/bench_generation.py`` (its table of routes per row count; docs/text.md).
NATIVE_STEP_MAX_ROWS = 8


class FusedLSTMSteps:
    """Fused, row-split weights for a unidirectional or bidirectional list of (non-projected) LSTM cells, and one
    step through any of them.

    Given cell 0's input term already projected (W_ih x + b, e.g. a row of a language model's input table), that
    cell reads only W_hh per step."""

    def __init__(self, parts: int | None = None):
        self.parts = parts  # None: torch.get_num_threads()
        self._key = None
        self._layers: list[tuple[Tensor, Tensor, int, int]] = []  # per cell: weight (4H, D + H), bias, H, blocks
        self._recurrent: Tensor | None = None  # cell 0's W_hh columns of its fused weight (4H, H)
        self._stack: dict = {}  # projected -> (weights, biases) of every cell, as lstm_stack_step takes them
        self._native = False  # whether rnnkit.native.lstm_step runs the steps of few rows
        self._dtype: torch.dtype | None = None  # the weights' autocast dtype as prepared (None: as the parameters)
        self._parts = 1  # row blocks of a batched step's product, as prepared

    @staticmethod
    def _weights(cell) -> list[Tensor]:
        return [w for w in (cell.weight_ih, cell.weight_hh, cell.bias_ih) if w is not None]

    def prepare(self, cells) -> None:
        """Build (or keep) the fused weights for ``cells``; rebuilt when a tensor they come from changes (its
        storage or its write counter)."""
        parts = self.parts or torch.get_num_threads()
        device_type = cells[0].weight_ih.device.type
        # under autocast (rnnkit.precision) the fused weights are kept in its dtype, cast once here instead of at
        # every step; the state stays in fp32 (the products come out in the autocast dtype, and f · c with c in
        # fp32 promotes; the native kernel sums in fp32)
        dtype = active_dtype(device_type)
        use_native = step_applies(cells[0].weight_ih, dtype)
        key = (parts, dtype, use_native, *((w.data_ptr(), tensor_version(w)) for c in cells for w in self._weights(c)))
        if key != self._key:
            self._native, self._dtype, self._parts = use_native, dtype, parts
            self._build(cells, parts, dtype)
            self._key = key

    def _build(self, cells, parts: int, dtype: torch.dtype | None = None) -> None:
        self._layers = []
        for k, cell in enumerate(cells):
            H = cell.hidden_size
            weight = torch.cat([cell.weight_ih, cell.weight_hh], 1).detach()  # (4H, D + H), rows i f g o
            bias = (cell.bias_ih.detach() if cell.bias_ih is not None else
                    torch.zeros(4 * H, dtype=weight.dtype, device=weight.device))
            if dtype is not None:  # the weight in the autocast dtype; the native kernel adds a float32 bias
                weight = weight.to(dtype)
            p = parts if (4 * H) % parts == 0 else 1
            self._layers.append((weight, bias, H, p))
            if k == 0:
                self._recurrent = weight[:, weight.shape[1] - H:]
        biases = [b for _, b, _, _ in self._layers]  # lstm_stack_step's arguments, with and without cell 0's term
        self._stack = {False: ([w for w, _, _, _ in self._layers], biases),
                       True: ([self._recurrent] + [w for w, _, _, _ in self._layers[1:]], biases)}

    def sample_stack(self, table: Tensor, projected: bool, h: Tensor, c: Tensor, head: torch.nn.Linear,
                     logits: Tensor, noise: Tensor | None, draws: int, temperature: float = 1.0,
                     banned: Tensor | None = None, stop_id: int | None = None, done: Tensor | None = None,
                     step_after_last: bool = True, top_k: int = 0,
                     top_p: float = 1.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Generation's token loop over the whole stack, ``draws`` tokens in one native call
        (:func:`rnnkit.native.lstm_stack_sample`: draw, look the token's row of ``table`` up — cell 0's input term
        with ``projected``, else its input — step every cell and ``head``). Only where the native kernel runs the
        stack at this batch (:meth:`native_rows`). Returns (ids (m, B), logits, h_n, c_n)."""
        weights, biases = self._stack[projected]
        return lstm_stack_sample(weights, biases, table, projected, h, c, (head.weight, head.bias),
                                 logits.float().contiguous(), noise, draws, temperature, banned, stop_id, done,
                                 step_after_last, top_k, top_p, max_rows=NATIVE_STEP_MAX_ROWS, parts=self._parts)

    @property
    def native(self) -> bool:
        """Whether steps of few rows run in rnnkit's native step kernel (as prepared last)."""
        return self._native

    def native_rows(self, rows: int) -> bool:
        """Whether a step of the stack at ``rows`` rows is one native call (as prepared last): a few rows in the
        weights' prepared dtype, any number with float32 weights."""
        return self._native and (rows <= NATIVE_STEP_MAX_ROWS or self._dtype in (None, torch.float32))

    def step(self, k: int, x: Tensor, h: Tensor, c: Tensor, projected: bool = False) -> tuple[Tensor, Tensor]:
        """Cell ``k``: (x (B, D), h (B, H), c (B, H)) → (h_t, c_t). ``projected`` (cell 0 only): x is the input
        term W_ih x + b (B, 4H) already, in the cell's gate order."""
        weight, bias, H, p = self._layers[k]
        B = h.shape[0]
        if self._native and B <= NATIVE_STEP_MAX_ROWS:
            if projected:  # only W_hh is read
                return lstm_step(self._recurrent, h, x, c)
            return lstm_step(weight, torch.cat([x, h], 1), bias, c)
        # row blocks of the weight, one per thread, as one batched product: (p, B, K) @ (p, K, 4H / p)
        if projected:
            w, inputs, base = self._recurrent, h, x.view(B, p, -1).transpose(0, 1)
        else:
            w, inputs, base = weight, torch.cat([x, h], 1), bias.to(weight.dtype).view(p, 1, -1)
        blocks = w.unflatten(0, (p, -1)).transpose(1, 2)  # a view, also of the strided W_hh columns
        gates = torch.baddbmm(base, inputs.expand(p, *inputs.shape), blocks)
        gates = gates.view(1, -1) if B == 1 else gates.transpose(0, 1).reshape(B, 4 * H)
        i, f = gates[:, : 2 * H].sigmoid().chunk(2, 1)
        c_t = torch.addcmul(f * c, i, gates[:, 2 * H: 3 * H].tanh())
        return gates[:, 3 * H:].sigmoid() * c_t.tanh(), c_t

    def step_stack(self, x: Tensor, h: Tensor, c: Tensor, projected: bool = False,
                   head: torch.nn.Linear | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Every cell in turn, as a unidirectional stack: x (B, D) (cell 0's input term (B, 4H) with
        ``projected``), h and c (L, B, H) → (output (B, H), h_n, c_n) with h_n and c_n (L, B, H). With ``head`` (a
        linear layer on the output), its result instead of the output (``rnnkit.precision.step_linear``). Where
        :meth:`native_rows` holds, one native call (the stack and the head)."""
        if self.native_rows(h.shape[1]) and (head is None or head.weight.dtype == torch.float32):
            weights, biases = self._stack[projected]
            return lstm_stack_step(weights, biases, x.contiguous(), h.contiguous(), c.contiguous(), projected,
                                   None if head is None else (head.weight, head.bias),
                                   max_rows=NATIVE_STEP_MAX_ROWS, parts=self._parts)
        hs, cs = [], []
        for k, (h_k, c_k) in enumerate(zip(h.unbind(0), c.unbind(0))):
            x, c_k = self.step(k, x, h_k, c_k, projected and k == 0)
            hs.append(x)
            cs.append(c_k)
        return (x if head is None else step_linear(head, x)), torch.stack(hs), torch.stack(cs)
