"""The LSTM's and the GRU's step at small batch without autograd: the generation hot path.

Sampling a token from a 2x512 character LSTM at batch 1 is a chain of matrix-vector products, and those are
bound by memory traffic, not arithmetic. Here, per layer and token, the two products of the notes' LSTM
(seed 000: W_ih x_t + W_hh h_{t-1} + b) are fused into one, [x_t, h_{t-1}] @ [W_ih | W_hh]^T + b, with the rows in
the cell's own order (i, f, g, o):

    i, f, o = σ(·),  g = tanh(·),  c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)

On the CPU a step of the whole stack is one call of rnnkit's native kernel (``rnnkit.native.stack_step``).
Steps of a few rows (:data:`NATIVE_STEP_MAX_ROWS`) read the weights once per row: each thread reads the four gate
rows of its units and applies the gate math, no other call per layer; under bf16 autocast it reads the weights in
bfloat16. Larger batches split the weight by output rows into one block per thread and run them as one batched
product, so every core streams its share (the fastest layout measured; ``benchmarks/bench_generation.py``), then
the gate math of the whole layer in one pass (with bf16 weights: MKL's bf16 GEMM, summing in float32). Where the
kernel does not run (a GPU, no compiler) the same blocked product runs through torch, with the gate math in torch's
operations.

A peephole LSTM stack steps the same way, with the peepholes in the gate math (i, f read p ⊙ c_{t-1}, o reads
p_o ⊙ c_t; Gers & Schmidhuber 2000). A GRU stack (torch's form) steps the same way in the native kernel, with its
own gate math (seed 000 / torch.nn.GRU):

    r, z = σ(W_i x + b_i + W_h h + b_h)_{r, z},  n = tanh((W_i x + b_i)_n + r ⊙ (W_h h + b_h)_n),  h_t = n + z ⊙ (h − n)

where the reset gate multiplies the recurrent term after its product, so the two products stay apart (each row of
[W_i | W_h] is read in two dot products); beyond a few rows they are two GEMMs. The Cho GRU, MUT1-3 and the Elman
network have steps of their own (``rnnkit.native.stack_step``'s families). Where the native kernel does not run
a step of a family other than the LSTM (a GPU, no compiler), the layer keeps its other routes.

A language model's generation runs its whole token loop there too (:meth:`FusedSteps.sample_stack`: draw the
token, look up its input, step the stack and the output layer, up to 64 tokens per native call), the same numbers
as a Python call per token without the ~100 µs per token those calls cost.

The fused weights are a cache, rebuilt whenever a parameter changes (its version counter or storage), so
training between samples is safe. They double the recurrent weights' memory while generating.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cells.base import tensor_version
from ..precision import active_dtype, step_linear
from . import CELL_STATE_FAMILIES, lstm_step, stack_sample, stack_step, step_applies


def stack_family(cells) -> str | None:
    """The family :class:`FusedSteps` steps ``cells`` as, the one every cell declares (``Cell.stack_step_family``:
    ``"lstm"`` for an LSTM without projection, ``"peephole-lstm"``, ``"gru"`` for torch's form); else None."""
    families = {getattr(c, "stack_step_family", None) for c in cells}
    return families.pop() if len(families) == 1 else None


#: Steps of at most this many rows run in rnnkit's native step kernel (the weights read once per row, dot products
#: in registers); more rows run the batched product (a GEMM in row blocks). Where the two cross on a 2x512 LSTM
#: stack: ``python benchmarks/bench_generation.py`` (its table of routes per row count; docs/text.md).
NATIVE_STEP_MAX_ROWS = 8


class FusedSteps:
    """Fused weights for a list of (non-projected) LSTM cells, peephole LSTM cells or GRU cells in torch's form
    (``family``, as :func:`stack_family` names it), and a step of the whole stack through them; for the LSTM also
    row-split weights and one step through any cell, unidirectional or bidirectional.

    Given cell 0's input term already projected (W_ih x + b_ih, e.g. a row of a language model's input table), that
    cell reads only W_hh per step."""

    def __init__(self, family: str = "lstm", parts: int | None = None):
        self.family = family
        self.parts = parts  # None: torch.get_num_threads()
        self._key = None
        self._layers: list[tuple[Tensor, Tensor, int, int]] = []  # per cell: weight (G·H, D + H), bias, H, blocks
        self._recurrent: Tensor | None = None  # cell 0's W_hh columns of its fused weight (G·H, H)
        self._stack: dict = {}  # projected -> (weights, biases) of every cell, as stack_step takes them
        self._native = False  # whether rnnkit.native.lstm_step runs the steps of few rows
        self._parts = 1  # row blocks of a batched step's product, as prepared

    @staticmethod
    def _weights(cell) -> list[Tensor]:
        return list(cell.parameters())

    def covers(self, cells, cuda: bool) -> bool:
        """Whether :meth:`step_stack` takes a step of ``cells``: the LSTM's always (torch's operations where the
        native kernel does not run); the other families' where the native kernel runs it (on the CPU, the kernels
        built, float32 parameters read in float32 or, under bf16 autocast, as bfloat16)."""
        if self.family == "lstm":
            return True
        return not cuda and step_applies(cells[0].weight_ih, active_dtype("cpu"))

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
            self._native, self._parts = use_native, parts
            self._build(cells, parts, dtype)
            self._key = key

    def _build(self, cells, parts: int, dtype: torch.dtype | None = None) -> None:
        self._layers = []
        for k, cell in enumerate(cells):
            H = cell.hidden_size
            weight, bias = (t.detach() for t in cell.stack_step_weights())  # (G·H, D + H), the family's vectors
            if dtype is not None:  # the weight in the autocast dtype; the native kernel adds a float32 bias
                weight = weight.to(dtype)
            p = parts if weight.shape[0] % parts == 0 else 1
            self._layers.append((weight, bias, H, p))
            if k == 0:
                self._recurrent = weight[:, weight.shape[1] - H:]
        biases = [b for _, b, _, _ in self._layers]  # stack_step's arguments, with and without cell 0's term
        self._stack = {False: ([w for w, _, _, _ in self._layers], biases),
                       True: ([self._recurrent] + [w for w, _, _, _ in self._layers[1:]], biases)}

    def sample_stack(self, table: Tensor, projected: bool, state: tuple[Tensor, ...], head: torch.nn.Linear,
                     logits: Tensor, noise: Tensor | None, draws: int, temperature: float = 1.0,
                     banned: Tensor | None = None, stop_id: int | None = None, done: Tensor | None = None,
                     step_after_last: bool = True, top_k: int = 0,
                     top_p: float = 1.0) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
        """Generation's token loop over the whole stack, ``draws`` tokens in one native call
        (:func:`rnnkit.native.stack_sample`: draw, look the token's row of ``table`` up — cell 0's input term
        with ``projected``, else its input — step every cell and ``head``). ``state``: (h, c) for the LSTMs, (h,)
        for the others, each (L, B, H). Only where the native kernel runs the stack (:attr:`native`).
        Returns (ids (m, B), logits, the state after)."""
        weights, biases = self._stack[projected]
        h, c = state if self.carries_c else (state[0], None)
        ids, logits, h_n, c_n = stack_sample(self.family, weights, biases, table, projected, h, c,
                                             (head.weight, head.bias), logits.float().contiguous(), noise, draws,
                                             temperature, banned, stop_id, done, step_after_last, top_k, top_p,
                                             max_rows=NATIVE_STEP_MAX_ROWS, parts=self._parts)
        return ids, logits, (h_n,) if c_n is None else (h_n, c_n)

    @property
    def carries_c(self) -> bool:
        """Whether a cell of the family carries c beside h (the LSTMs); the state is then (h, c), else (h,)."""
        return self.family in CELL_STATE_FAMILIES

    @property
    def native(self) -> bool:
        """Whether a step of the stack is one native call (rnnkit's native step kernel, as prepared last), at any
        number of rows, in the weights' prepared dtype (float32 or bfloat16)."""
        return self._native

    def step(self, k: int, x: Tensor, h: Tensor, c: Tensor, projected: bool = False) -> tuple[Tensor, Tensor]:
        """LSTM cell ``k``: (x (B, D), h (B, H), c (B, H)) → (h_t, c_t). ``projected`` (cell 0 only): x is the input
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

    def step_stack(self, x: Tensor, state: tuple[Tensor, ...], projected: bool = False,
                   head: torch.nn.Linear | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Every cell in turn, as a unidirectional stack: x (B, D) (cell 0's input term (B, G·H) with
        ``projected``), ``state`` (h, c) for the LSTMs, (h,) for the others, each (L, B, H) → (output (B, H), the state
        after). With ``head`` (a linear layer on the output), its result instead of the output
        (``rnnkit.precision.step_linear``). Where :attr:`native` holds, one native call (the stack and the head);
        else (the LSTM only, see :meth:`covers`) torch's operations cell by cell."""
        h = state[0]
        if self.native and (head is None or head.weight.dtype == torch.float32):
            weights, biases = self._stack[projected]
            c = state[1].contiguous() if self.carries_c else None
            out, h_n, c_n = stack_step(self.family, weights, biases, x.contiguous(), h.contiguous(), c, projected,
                                       None if head is None else (head.weight, head.bias),
                                       max_rows=NATIVE_STEP_MAX_ROWS, parts=self._parts)
            return out, (h_n,) if c_n is None else (h_n, c_n)
        if self.family != "lstm":
            raise RuntimeError(f"FusedSteps: a {self.family} stack steps only in the native kernel (covers)")
        hs, cs = [], []
        for k, (h_k, c_k) in enumerate(zip(h.unbind(0), state[1].unbind(0))):
            x, c_k = self.step(k, x, h_k, c_k, projected and k == 0)
            hs.append(x)
            cs.append(c_k)
        return (x if head is None else step_linear(head, x)), (torch.stack(hs), torch.stack(cs))
