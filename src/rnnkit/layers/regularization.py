"""Dropout for recurrent networks beyond torch.nn's per-element dropout between layers.

* ``sequence_dropout``: dropout on a (B, T, F) sequence with a new mask at every step, or *variational* dropout with
  one mask per sequence shared by all its steps (Gal & Ghahramani 2016, "A theoretically grounded application of
  dropout in recurrent neural networks"; the "locked dropout" of AWD-LSTM, Merity et al. 2018).
* ``recurrent_weights_dropped``: DropConnect on the recurrent matrices (Wan et al. 2013; the weight-dropped LSTM
  of Merity et al. 2018): each entry of W_hh zeroed with probability p, the rest scaled by 1/(1−p), one mask for a
  whole forward call, so every step and every row of the batch sees the same dropped matrix. The cell's equations
  and kernels are unchanged: they read the dropped matrix where they read W_hh.
* ``embedding_dropout``: whole rows of an embedding table dropped (every occurrence of a token in the batch loses
  its vector; Gal & Ghahramani 2016 §4, AWD-LSTM's ``dropoute``).
* ``zone_out``: zoneout (Krueger et al. 2017, "Zoneout: regularizing RNNs by randomly preserving hidden
  activations"): each unit of the state keeps its previous value with probability p instead of taking the new one,
  a new mask per step. Unlike dropout it never zeroes the state, so the gradient still flows through the kept units
  (the identity path). Evaluation uses the mask's expectation.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..cells.base import Cell, State, describe_state, state_from_tensors, state_tensors


def sequence_dropout(x: Tensor, p: float, training: bool, variational: bool = False) -> Tensor:
    """Dropout on a batch-first sequence x (B, T, F) (or one step (B, F)). ``variational``: one mask (B, 1, F)
    for every step of each row, scaled by 1/(1−p) as F.dropout; a single step gets a mask of its own."""
    if not training or p == 0:
        return x
    if not variational or x.dim() < 3:
        return F.dropout(x, p, True)
    mask = torch.empty(x.shape[0], *([1] * (x.dim() - 2)), x.shape[-1], dtype=x.dtype, device=x.device)
    return x * mask.bernoulli_(1.0 - p).div_(1.0 - p)


def embedding_dropout(embedding: nn.Embedding, ids: Tensor, p: float, training: bool) -> Tensor:
    """``embedding(ids)`` with each row of the table (each token type) dropped with probability p, the kept rows
    scaled by 1/(1−p): one mask per call."""
    if not training or p == 0:
        return embedding(ids)
    w = embedding.weight
    mask = torch.empty(w.shape[0], 1, dtype=w.dtype, device=w.device).bernoulli_(1.0 - p).div_(1.0 - p)
    return F.embedding(ids, w * mask, embedding.padding_idx, embedding.max_norm, embedding.norm_type,
                       embedding.scale_grad_by_freq, embedding.sparse)


def check_recurrent_weights(cells, owner: str) -> None:
    """Every cell names recurrent weights (``Cell.recurrent_weights``) that are plain parameters: DropConnect needs
    a matrix to drop, and a constrained one (an orthogonal parametrization) would no longer be orthogonal."""
    for cell in cells:
        names = getattr(cell, "recurrent_weights", ())
        if not names:
            raise ValueError(f"{owner}: weight_dropout needs recurrent weight matrices to drop; "
                             f"{type(cell).__name__} has none (its recurrence is structured, e.g. unitary)")
        for name in names:
            if not isinstance(cell._parameters.get(name), nn.Parameter):
                raise ValueError(f"{owner}: weight_dropout drops the plain parameter {type(cell).__name__}.{name}; "
                                 "it is constrained (e.g. by orthogonal_recurrence) or missing. Use dropout on "
                                 "the layer outputs instead")


@contextlib.contextmanager
def recurrent_weights_dropped(cells, p: float):
    """Within the block, each cell's ``recurrent_weights`` read as F.dropout(W, p) (one draw per matrix); the
    gradient reaches the parameters through the mask. The dropped matrix shadows the parameter as an instance
    attribute (nn.Module looks up parameters only when that lookup fails), so the parameters stay registered, in
    order, and reappear on leaving whatever happens."""
    check_recurrent_weights(cells, "RNN")
    shadowed = []
    try:
        for cell in cells:
            for name in cell.recurrent_weights:
                object.__setattr__(cell, name, F.dropout(cell._parameters[name], p, True))
                shadowed.append((cell, name))
        yield
    finally:
        for cell, name in shadowed:
            object.__delattr__(cell, name)


def zoneout_rates(cell: Cell, zoneout, owner: str) -> tuple[float, ...] | None:
    """``zoneout`` as one rate per tensor of ``cell``'s state, in the order of ``state_tensors`` (an LSTM's h, c):
    a number for all of them, or a sequence of one per tensor; None when every rate is 0."""
    count = len(state_tensors(cell.initial_state(1, device="meta")))
    rates = (float(zoneout),) * count if isinstance(zoneout, (int, float)) else tuple(float(p) for p in zoneout)
    if len(rates) != count:
        template = describe_state(cell.initial_state(1, device="meta"))
        raise ValueError(f"{owner}: zoneout needs one rate, or one per tensor of the cell's state {template} "
                         f"({count}); got {len(rates)}: {list(rates)}")
    if not all(0.0 <= p < 1.0 for p in rates):
        raise ValueError(f"{owner}: zoneout rates must be in [0, 1); got {list(rates)}")
    return rates if any(rates) else None


def zone_out(new: State, old: State, rates: tuple[float, ...], training: bool) -> State:
    """Zoneout of one step, per tensor of the state with its rate p (Krueger et al. 2017, eq. 4-5)::

        training:    s_t = d ⊙ s_{t-1} + (1 − d) ⊙ s̃_t,   d ~ Bernoulli(p) per unit
        evaluation:  s_t = p s_{t-1} + (1 − p) s̃_t

    ``new`` is the cell's s̃_t, ``old`` its s_{t-1}."""
    mixed = []
    for p, n, o in zip(rates, state_tensors(new), state_tensors(old)):
        if p == 0:
            mixed.append(n)
        elif training:
            keep = torch.empty_like(n).bernoulli_(p).bool()
            mixed.append(torch.where(keep, o, n))
        else:
            mixed.append(torch.lerp(n, o, p))
    return state_from_tensors(new, mixed)
