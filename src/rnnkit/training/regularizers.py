"""The gradient-norm regulariser of Pascanu, Mikolov & Bengio 2013 (seed 003: with norm clipping it "gives a sizeable
increase in the dependency span learned"), for any cell:

    Ω = Σ_k ( ‖(∂L/∂h_{k+1}) ∂h_{k+1}/∂h_k‖ / ‖∂L/∂h_{k+1}‖ − 1 )²          (Pascanu et al. eq. 9)

with ∂L/∂h_{k+1} treated as a constant, so Ω pushes every one-step Jacobian to preserve the norm of the error
signal in the direction that matters. Its gradient takes the immediate effect of θ on each Jacobian (h_k held
constant too, as Pascanu et al. compute it), so it is not back-propagated through the whole chain again. h is the
cell's whole state (h and c for an LSTM), each sequence a separate row: the ratio is taken per row and averaged over
the rows, summed over the steps (padded steps skipped), and over every layer and direction.

Mechanics: the sequence layers record their steps (:class:`rnnkit.layers.recurrent.StepRecorder`); ∂L/∂h_k for
every step comes from one ``autograd.grad``; the one-step vector-Jacobian products come from re-running every step
at once (all steps stacked as one batch) from the recorded states detached, with ``create_graph=True`` so that Ω
is differentiable in the parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cells.base import state_from_tensors, state_tensors
from ..layers.recurrent import RecordedStep


def gradient_norm_regularizer(loss: Tensor, steps: list[RecordedStep]) -> Tensor:
    """Ω of the recorded steps for ``loss`` (a scalar whose graph contains them); 0 when nothing was recorded."""
    by_cell: dict[int, list[RecordedStep]] = {}
    for step in steps:
        by_cell.setdefault(id(step.cell), []).append(step)
    total = loss.new_zeros(())
    for cell_steps in by_cell.values():
        total = total + _omega_of_cell(loss, cell_steps)
    return total


def _omega_of_cell(loss: Tensor, steps: list[RecordedStep]) -> Tensor:
    if len(steps) < 2:
        return loss.new_zeros(())
    cell = steps[0].cell
    afters = [list(state_tensors(s.after)) for s in steps]
    flat = [t for tensors in afters for t in tensors]
    grads = torch.autograd.grad(loss, flat, retain_graph=True, allow_unused=True)
    n = len(afters[0])
    grads = [[g if g is not None else torch.zeros_like(t) for g, t in zip(grads[i * n:(i + 1) * n], afters[i])]
             for i in range(len(steps))]
    # one-step products for k = 0 .. T-2: state after step k  →  step k+1, all k stacked as one batch
    later = steps[1:]
    before = [torch.cat([t.detach() for t in column]).requires_grad_()
              for column in zip(*(state_tensors(s.before) for s in later))]
    px = torch.cat([s.px for s in later])
    template = steps[0].before
    _, new = cell.step(px, state_from_tensors(template, before))
    new = list(state_tensors(new))
    v = [torch.cat([g[i].detach() for g in grads[1:]]) for i in range(n)]  # ∂L/∂h_{k+1}, constant
    rows = v[0].shape[0]
    v_norm = torch.sqrt(sum(x.reshape(rows, -1).double().pow(2).sum(1) for x in v))
    keep = v_norm > 1e-30  # rows that carry an error signal at all
    valid = [s.valid for s in later]
    if valid[0] is not None:
        keep = keep & torch.cat(valid).to(keep.device)
    if not bool(keep.any()):
        return loss.new_zeros(())
    # the product is linear in v: use v / ‖v‖, so the ratio is the product's norm (no division by a tiny ‖v‖)
    scale = torch.where(keep, 1.0 / v_norm.clamp_min(1e-30), torch.zeros_like(v_norm))
    unit = [(x.reshape(rows, -1) * scale.to(x.dtype)[:, None]).reshape(x.shape) for x in v]
    products = torch.autograd.grad(new, before, grad_outputs=unit, create_graph=True, allow_unused=True)
    products = [p if p is not None else torch.zeros_like(b) for p, b in zip(products, before)]
    ratio = torch.sqrt(sum(x.reshape(rows, -1).pow(2).sum(1) for x in products) + 1e-12)
    B = steps[0].px.shape[0]
    ratio_term = (ratio[keep] - 1) ** 2
    return ratio_term.sum() / B  # Σ over steps of the mean over rows
