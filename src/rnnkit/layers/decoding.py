"""One LSTM step at small batch without autograd: the generation hot path.

Sampling a token from a 2x512 character LSTM at batch 1 is a chain of matrix-vector products, and those are
bound by memory traffic, not arithmetic: a (1 x 512) @ (512 x 2048) product costs ~100 µs however many threads
MKL is given, because it runs on one core. Here, per layer and token, the two products of the notes' LSTM
(seed 000: W_ih x_t + W_hh h_{t-1} + b) are fused into one, [x_t, h_{t-1}] @ [W_ih | W_hh]^T + b, whose weight
is split by output rows into one block per thread and run as one batched product, so every core streams its
share of the weight, row by row (the fastest layout measured; `benchmarks/bench_generation.py`). The gate rows
are stored in the order (i, f, o, g) so one sigmoid covers three gates:

    i, f, o = σ(·),  g = tanh(·),  c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)

On the CPU in float32 (and under bf16 autocast, with the weights kept in bfloat16) the step runs in rnnkit's
native kernel (``rnnkit.native.lstm_step``: each thread reads the four gate rows of its units once and applies the
gate math to them, no other call per layer), with the weights in the cell's own row order (i, f, g, o).

The fused weights are a cache, rebuilt whenever a parameter changes (its version counter or storage), so
training between samples is safe. They double the LSTM weights' memory while generating.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import native
from ..precision import active_dtype


def _version(t: Tensor) -> int:
    """The tensor's in-place write counter (inference tensors, made under torch.inference_mode, have none)."""
    return -1 if t.is_inference() else t._version


#: The largest input table (vocabulary x 4H entries) :meth:`FusedLSTMSteps.prepare` builds: 16 MB of fp32.
INPUT_TABLE_MAX_ENTRIES = 1 << 22


class FusedLSTMSteps:
    """Fused, row-split weights for a unidirectional or bidirectional list of (non-projected) LSTM cells, and one
    step through any of them.

    Fed token ids through an embedding E, the first cell's input term is a table lookup: W_ih E[x] + b is row x
    of T = E W_ih^T + b, built once with the weights, so that cell reads only W_hh per token."""

    def __init__(self, parts: int | None = None):
        self.parts = parts  # None: torch.get_num_threads()
        self._key = self._table_key = None
        self._layers: list[tuple[Tensor, Tensor, int]] = []  # per cell: (blocks (p, D + H, 4H / p), bias, H)
        self._first: tuple[Tensor, Tensor, Tensor] | None = None  # cell 0: fused weight, bias, its W_hh blocks
        self._first_exact: tuple[Tensor, Tensor] | None = None  # cell 0's weight and bias before any autocast
        self._table: Tensor | None = None  # (V, p, 4H / p): cell 0's W_ih E[x] + b for every token x
        self._native = False  # the layers hold (weight (4H, D + H), bias (4H), H) in the cells' order for native

    @staticmethod
    def _weights(cell) -> list[Tensor]:
        return [w for w in (cell.weight_ih, cell.weight_hh, cell.bias_ih) if w is not None]

    def prepare(self, cells, embedding: Tensor | None = None) -> None:
        """Build (or keep) the fused weights for ``cells``, and cell 0's input table for ``embedding`` (V, D)
        when given. Both are rebuilt when a tensor they come from changes (its storage or its write counter)."""
        parts = self.parts or torch.get_num_threads()
        device_type = cells[0].weight_ih.device.type
        # under autocast (rnnkit.precision) the fused weights and the table are kept in its dtype, cast once here
        # instead of at every step; the state stays in fp32 (the products come out in the autocast dtype, and
        # f · c with c in fp32 promotes)
        dtype = active_dtype(device_type)
        use_native = native.step_applies(cells[0].weight_ih, dtype)
        key = (parts, dtype, use_native, *((w.data_ptr(), _version(w)) for c in cells for w in self._weights(c)))
        if key != self._key:
            self._native = use_native
            self._build(cells, parts, dtype)
            self._key, self._table_key = key, None
        table_key = (embedding.data_ptr(), _version(embedding), dtype) if embedding is not None else None
        if embedding is not None and table_key != self._table_key:
            weight, bias = self._first_exact
            D, p = embedding.shape[1], self._layers[0][0].shape[0]
            table = torch.addmm(bias, embedding.detach(), weight[:, :D].t())  # in the weights' own dtype
            # the native kernel adds the table's rows in float32; the batched product reads them per thread slice
            self._table = table if self._native else table.to(dtype or table.dtype).view(embedding.shape[0], p, -1)
            self._table_key = table_key

    def _build(self, cells, parts: int, dtype: torch.dtype | None = None) -> None:
        self._layers = []
        for k, cell in enumerate(cells):
            H = cell.hidden_size
            dev = cell.weight_ih.device
            if self._native:  # rows in the cell's order; the weight in the autocast dtype, the bias in float32
                weight = torch.cat([cell.weight_ih, cell.weight_hh], 1).detach()
                bias = (cell.bias_ih.detach() if cell.bias_ih is not None else
                        torch.zeros(4 * H, dtype=weight.dtype, device=dev))
                if k == 0:
                    self._first_exact = (weight, bias)
                fused = weight.to(dtype) if dtype is not None else weight
                self._layers.append((fused, bias, H))
                if k == 0:
                    self._first = (fused, bias, fused[:, weight.shape[1] - H:])
                continue
            order = torch.cat([torch.arange(0, 2 * H, device=dev), torch.arange(3 * H, 4 * H, device=dev),
                               torch.arange(2 * H, 3 * H, device=dev)])
            weight = torch.cat([cell.weight_ih, cell.weight_hh], 1).detach()[order]  # (4H, D + H), rows i f o g
            bias = (cell.bias_ih.detach()[order] if cell.bias_ih is not None else
                    torch.zeros(4 * H, dtype=weight.dtype, device=weight.device))
            if k == 0:
                self._first_exact = (weight, bias)
            if dtype is not None:
                weight, bias = weight.to(dtype), bias.to(dtype)
            p = parts if (4 * H) % parts == 0 else 1
            blocks = weight.view(p, 4 * H // p, weight.shape[1]).transpose(1, 2)  # (p, D + H, 4H / p)
            self._layers.append((blocks, bias.view(p, 1, -1), H))
            if k == 0:
                self._first = (weight, bias, blocks[:, weight.shape[1] - H:])

    def step(self, k: int, x: Tensor, h: Tensor, c: Tensor, tokens: bool = False) -> tuple[Tensor, Tensor]:
        """Cell ``k``: (x (B, D), h (B, H), c (B, H)) → (h_t, c_t). ``tokens``: x holds token ids (B,) into the
        embedding of the last :meth:`prepare` (cell 0 only)."""
        blocks, bias, H = self._layers[k]
        B = h.shape[0]
        if self._native:
            if tokens:  # the input term is a row of the table; only W_hh is read
                return native.lstm_step(self._first[2], h, self._table[x], c)
            return native.lstm_step(blocks, torch.cat([x, h], 1), bias, c)
        if tokens:  # W_ih E[x] + b is a row of the table; only W_hh is read
            gates = torch.baddbmm(self._table[x].transpose(0, 1), h.expand(blocks.shape[0], B, H), self._first[2])
        else:
            xh = torch.cat([x, h], 1)
            gates = torch.baddbmm(bias, xh.expand(blocks.shape[0], *xh.shape), blocks)  # (p, B, 4H / p)
        gates = gates.view(1, -1) if B == 1 else gates.transpose(0, 1).reshape(B, 4 * H)
        i, f, o = gates[:, : 3 * H].sigmoid().chunk(3, 1)
        c_t = torch.addcmul(f * c, i, gates[:, 3 * H:].tanh())
        return o * c_t.tanh(), c_t

    def step_stack(self, x: Tensor, h: Tensor, c: Tensor, tokens: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Every cell in turn, as a unidirectional stack: x (B, D) (token ids (B,) with ``tokens``), h and c
        (L, B, H) → (output (B, H), h_n, c_n) with h_n and c_n (L, B, H)."""
        hs, cs = [], []
        for k, (h_k, c_k) in enumerate(zip(h.unbind(0), c.unbind(0))):
            x, c_k = self.step(k, x, h_k, c_k, tokens and k == 0)
            hs.append(x)
            cs.append(c_k)
        return x, torch.stack(hs), torch.stack(cs)
