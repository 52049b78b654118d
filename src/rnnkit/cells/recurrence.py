"""Initialisations and constraints of the recurrent matrix: orthogonal / unitary-style recurrence,
identity (IRNN) and spectral-radius scaling.

Seed 000 "Fancy regularization: unitary matrices"; seed 003 "spectral radius = max |λ|", echo
state networks "good results in practice with 1.2"; Le, Jaitly & Hinton 2015 (IRNN); Arjovsky et al.
2016 and Lezcano-Casado & Martínez-Rubio 2019 (orthogonal / unitary RNNs).

Every function works on the cell's ``weight_hh`` seen as square (H, H) blocks: the gate blocks
stacked by rows (LSTM: 4, GRU: 3) or the delay blocks side by side (DelayCell).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils import parametrizations

from .base import Cell


def recurrent_blocks(cell: Cell) -> list[Tensor]:
    """The square (H, H) blocks of ``cell.weight_hh`` (views), or a ValueError if it has none."""
    w = cell.weight_hh
    rows, cols = w.shape
    if rows % cols == 0:
        return list(w.split(cols, 0))
    if cols % rows == 0:
        return list(w.split(rows, 1))
    raise ValueError(f"{type(cell).__name__}.weight_hh has shape {tuple(w.shape)}: no square recurrent "
                     "blocks (a projected LSTM or a Jordan net with output_size != hidden_size)")


@torch.no_grad()
def init_orthogonal_(cell: Cell, gain: float = 1.0) -> Cell:
    """Each recurrent block ← a random orthogonal matrix times ``gain`` (Saxe et al. 2014)."""
    for block in recurrent_blocks(cell):
        torch.nn.init.orthogonal_(block, gain=gain)
    return cell


@torch.no_grad()
def init_identity_(cell: Cell, scale: float = 1.0) -> Cell:
    """Each recurrent block ← ``scale`` · I (IRNN: ElmanCell(nonlinearity="relu") with W_hh = I, b = 0)."""
    for block in recurrent_blocks(cell):
        block.copy_(scale * torch.eye(block.shape[0], dtype=block.dtype, device=block.device))
    return cell


def spectral_radius(matrix: Tensor) -> float:
    """max |λ| over the eigenvalues of a square matrix."""
    return torch.linalg.eigvals(matrix.detach().double().cpu()).abs().max().item()


@torch.no_grad()
def init_spectral_radius_(cell: Cell, radius: float) -> Cell:
    """Rescale each recurrent block so that its spectral radius is ``radius`` (echo-state style)."""
    for block in recurrent_blocks(cell):
        current = spectral_radius(block)
        if current == 0:
            raise ValueError("the recurrent matrix is zero; its spectral radius cannot be rescaled")
        block.mul_(radius / current)
    return cell


def orthogonal_recurrence(cell: Cell) -> Cell:
    """Constrain ``weight_hh`` to stay orthogonal during training (a real unitary recurrence).

    Uses ``torch.nn.utils.parametrizations.orthogonal``: ``cell.weight_hh`` becomes a function of an
    unconstrained parameter, every gradient step keeps it orthogonal, and the cell's code is
    unchanged. Needs a square (H, H) ``weight_hh`` (Elman, leaky, MUT, Jordan with O = H).
    """
    rows, cols = cell.weight_hh.shape
    if rows != cols:
        raise ValueError(f"orthogonal_recurrence needs a square weight_hh; {type(cell).__name__} has "
                         f"{(rows, cols)}. Use init_orthogonal_ for gate-stacked matrices")
    parametrizations.orthogonal(cell, "weight_hh")
    return cell
