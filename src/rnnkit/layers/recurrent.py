"""The one time loop of rnnkit: run any cell over a sequence, with lengths masking and reversal.

References: flax ``nn.RNN`` (seq_lengths, flip_sequences), haste (input projection hoisted out of the
loop), torch ``benchmarks/fastrnns/custom_lstms.py`` (``unbind(0)`` over time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .. import native
from ..cells.base import Cell, State, check_dtype, check_state, map_state, module_dtype, state_tensors
from .regularization import zone_out, zoneout_rates

# ---- input checks shared by every sequence module ---------------------------------------------------


def check_sequence(x: Tensor, input_size: int, batch_first: bool, owner: str,
                   dtype: torch.dtype | None = None) -> tuple[int, int]:
    """Validate a (B, T, D) / (T, B, D) input (of ``dtype`` when given); return (B, T)."""
    layout = "(batch, time, features)" if batch_first else "(time, batch, features)"
    if not isinstance(x, Tensor):
        raise ValueError(f"{owner} expected a tensor {layout}; got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"{owner} expected a 3-D input {layout} with features={input_size}; "
                         f"got {x.dim()}-D shape {tuple(x.shape)}")
    if x.shape[-1] != input_size:
        raise ValueError(f"{owner} expected input features={input_size} in {layout}; got shape {tuple(x.shape)}")
    B, T = (x.shape[0], x.shape[1]) if batch_first else (x.shape[1], x.shape[0])
    if T == 0 or B == 0:
        raise ValueError(f"{owner} got an empty input of shape {tuple(x.shape)}")
    check_dtype([x], dtype, owner, "input")
    return B, T


def check_lengths(lengths, batch_size: int, steps: int, owner: str) -> Tensor | None:
    """Validate per-sequence lengths; return them as a CPU int64 tensor, or None when all equal T."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"{owner} expected integer lengths; got dtype {lengths.dtype}")
    lengths = lengths.to("cpu", torch.int64)
    if lengths.shape != (batch_size,):
        raise ValueError(f"{owner} expected lengths of shape ({batch_size},) (one per sequence); "
                         f"got {tuple(lengths.shape)}")
    if (lengths < 1).any() or (lengths > steps).any():
        raise ValueError(f"{owner} expected every length in [1, {steps}] (the time dimension); "
                         f"got min {lengths.min().item()}, max {lengths.max().item()}")
    return None if bool((lengths == steps).all()) else lengths


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each (B, T, ...) sequence within its length, leaving padding at the end (an involution).

    Example: lengths [3, 2], rows [a b c], [d e _] → [c b a], [e d _].
    """
    if lengths is None:
        return x.flip(1)
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device).expand(B, T)
    L = lengths.to(x.device).unsqueeze(1)
    index = torch.where(t < L, L - 1 - t, t)  # (B, T)
    return x.gather(1, index.view(B, T, *([1] * (x.dim() - 2))).expand_as(x))


class RecordedStep(NamedTuple):
    """One step of the loop as the graph holds it: the cell, its projected input, the state it read (after teacher
    forcing), the state its step returned (before the padding rule keeps a finished row's old state; the output is
    part of it or computed from it) and which rows were real (None: all)."""

    cell: Cell
    px: Tensor
    before: State
    after: State
    valid: Tensor | None


class StepRecorder:
    """While active (``with StepRecorder() as rec:``), every step any sequence layer runs is appended to
    ``rec.steps`` as a :class:`RecordedStep` — the tensors themselves, not copies — so ∂L/∂h_t through every later
    step, and one-step Jacobians ∂h_{t+1}/∂h_t, can be taken afterwards (the gradient-norm regulariser of
    ``rnnkit.training.regularizers``). The layers run their own loop, never a fused kernel, while one is active."""

    active: list[StepRecorder] = []

    def __init__(self):
        self.steps: list[RecordedStep] = []

    def __enter__(self) -> StepRecorder:
        StepRecorder.active.append(self)
        return self

    def __exit__(self, *exc) -> None:
        StepRecorder.active.remove(self)


def _step_mask(valid: Tensor, like: Tensor) -> Tensor:
    """Broadcast a (B,) validity mask to the shape of ``like`` (B, ...)."""
    return valid.view(-1, *([1] * (like.dim() - 1)))


# ---- the layer ------------------------------------------------------------------------------------


class Recurrent(nn.Module):
    """Run a cell over time: one layer, one direction.

    ``forward(x, state=None, lengths=None) -> (outputs, final_state)``

    * ``x``: (B, T, D) (``batch_first=True``, the default) or (T, B, D).
    * ``state``: the cell's state for the first step (zeros when None).
    * ``lengths``: (B,) ints in [1, T]. Outputs at padded steps are zero; padded steps leave the state
      unchanged, so ``final_state`` is each sequence's state at its last real step; padded inputs get
      zero gradient.
    * ``reverse=True`` processes each sequence from its last real step back to step 0 (padding stays at
      the end) and returns outputs in the original time order; ``final_state`` is then the state after
      step 0.
    * ``feedback``: (B, T, O) values that replace the fed-back part of the state before each step
      t ≥ 1 with ``feedback[:, t - 1]`` (teacher forcing for Jordan nets).
    * ``return_states=True`` adds a third result: the state after every step, each field stacked as
      (B, T, ...) (e.g. every c_t of an LSTM), zero at padded steps.

    * ``zoneout``: a rate p, or one per tensor of the cell's state (an LSTM's h, c): each unit keeps its previous
      value with probability p at every step in training, and takes p·old + (1 − p)·new in evaluation
      (``rnnkit.layers.regularization.zone_out``). The loop then runs in Python, not a native kernel.

    Speed: the cell's input projection runs once for all steps; the loop holds only the recurrent
    product and pointwise work.
    """

    def __init__(self, cell: Cell, reverse: bool = False, batch_first: bool = True, zoneout=0.0):
        super().__init__()
        self.cell, self.reverse, self.batch_first = cell, reverse, batch_first
        self.zoneout = zoneout_rates(cell, zoneout, f"Recurrent({type(cell).__name__})")

    def forward(self, x: Tensor, state: State | None = None, lengths=None, feedback: Tensor | None = None,
                return_states: bool = False):
        owner = f"Recurrent({type(self.cell).__name__})"
        dtype = module_dtype(self.cell)
        B, T = check_sequence(x, self.cell.input_size, self.batch_first, owner, dtype)
        lengths = check_lengths(lengths, B, T, owner)
        if state is None:
            state = self.cell.initial_state(B, device=x.device, dtype=x.dtype)
        else:
            state = check_state(self.cell, state, B, "initial state")
            check_dtype(state_tensors(state), dtype, owner, "initial state")
        if not self.batch_first:
            x = x.transpose(0, 1)
            feedback = None if feedback is None else feedback.transpose(0, 1)
        if feedback is not None:
            self._check_feedback(feedback, B, T)
        outputs, state, states = run_cell(self.cell, x, state, lengths, self.reverse, feedback, return_states,
                                          zoneout=self.zoneout, training=self.training)
        if not self.batch_first:
            outputs = outputs.transpose(0, 1)
            states = None if states is None else map_state(lambda s: s.transpose(0, 1), states)
        return (outputs, state, states) if return_states else (outputs, state)

    def _check_feedback(self, feedback: Tensor, B: int, T: int) -> None:
        size = self.cell.feedback_size
        if size is None:
            self.cell.force(None, feedback)  # raises the cell's own explanation
        if self.reverse:
            raise ValueError("teacher forcing (feedback=...) is defined only for forward-in-time layers")
        if feedback.shape != (B, T, size):
            raise ValueError(f"feedback must have shape (batch, time, {size}) = {(B, T, size)}; "
                             f"got {tuple(feedback.shape)}")

    def extra_repr(self) -> str:
        zoneout = f", zoneout={list(self.zoneout)}" if self.zoneout else ""
        return f"reverse={self.reverse}, batch_first={self.batch_first}{zoneout}"


def run_cell(cell: Cell, x: Tensor, state: State, lengths: Tensor | None, reverse: bool = False,
             feedback: Tensor | None = None, return_states: bool = False, projected: bool = False,
             zoneout: tuple[float, ...] | None = None, training: bool = False):
    """The loop itself, on batch-first tensors already validated. Returns (outputs, final_state, states).
    ``projected``: x is ``cell.input_projection`` of the inputs already (B, T, G). ``zoneout``: one rate per state
    tensor (``rnnkit.layers.regularization.zone_out``, masks drawn when ``training``), or None."""
    if reverse:
        x = reverse_padded(x, lengths)
    B, T = x.shape[:2]
    steps = T if lengths is None else int(lengths.max())
    valid = None if lengths is None else (torch.arange(steps).unsqueeze(1) < lengths).to(x.device)  # (T', B)
    # cached(): parametrized weights (orthogonal_recurrence) are computed once per sequence, not per step
    with parametrize.cached():
        # (T, B, G), step-major: the inputs are laid out step-major before the projection (one copy of x, which is
        # narrower than px for the gated cells, and none of px or of its gradient)
        px = x.transpose(0, 1) if projected else cell.input_projection(x.transpose(0, 1).contiguous())
        if steps < T:
            px = px[:steps]
        # the one dispatch point for a cell's whole loop: its native kernel where it declares one (rnnkit.native);
        # it lays px out step-major itself (in the same copy as a dtype change under autocast)
        native_ok = feedback is None and zoneout is None and not StepRecorder.active
        ran = native.run_sequence(cell, px, state, valid, return_states) if native_ok else None
        if ran is None:
            outputs: list[Tensor] = []
            history: list[State] | None = [] if return_states else None
            state = _loop(cell, px.contiguous(), state, valid, feedback, outputs, history, zoneout, training)
            out = torch.stack(outputs, 1)  # (B, T', O)
            states = map_state(lambda *s: torch.stack(s, 1), *history) if return_states else None
        else:
            out, state, carried = ran
            states = native.masked_states(carried, valid) if return_states else None
    if steps < T:
        out = torch.cat([out, out.new_zeros(B, T - steps, *out.shape[2:])], 1)
        if states is not None:
            states = map_state(lambda s: torch.cat([s, s.new_zeros(B, T - steps, *s.shape[2:])], 1), states)
    if reverse:
        out = reverse_padded(out, lengths)
        states = None if states is None else map_state(lambda s: reverse_padded(s, lengths), states)
    return out, state, states


def _loop(cell: Cell, px: Tensor, state: State, valid: Tensor | None, feedback: Tensor | None,
          outputs: list[Tensor], history: list[State] | None, zoneout: tuple[float, ...] | None = None,
          training: bool = False) -> State:
    """Step through ``px`` (T, B, G), appending each output (and state, when ``history`` is a list)."""
    for t, px_t in enumerate(px.unbind(0)):
        fed = cell.force(state, feedback[:, t - 1]) if feedback is not None and t > 0 else state
        y_t, new_state = cell.step(px_t, fed)
        if zoneout is not None:
            first = state_tensors(new_state)[0]
            new_state = zone_out(new_state, fed, zoneout, training)
            if y_t is first:  # a cell whose output is its hidden state emits the zoned-out one
                y_t = state_tensors(new_state)[0]
        for recorder in StepRecorder.active:  # the step's own result: its gradient is ∂L/∂h_t in full
            recorder.steps.append(RecordedStep(cell, px_t, fed, new_state, None if valid is None else valid[t]))
        if valid is not None:  # a finished row keeps its state as it was, never a value fed back at its padding
            ok = valid[t]
            new_state = map_state(lambda n, o, ok=ok: torch.where(_step_mask(ok, n), n, o), new_state, state)
            y_t = y_t.masked_fill(~_step_mask(ok, y_t), 0.0)
        state = new_state
        outputs.append(y_t)
        if history is not None:
            history.append(new_state if valid is None else
                           map_state(lambda s, ok=valid[t]: s.masked_fill(~_step_mask(ok, s), 0.0), new_state))
    return state


def stack_states(states: Sequence[State]) -> State:
    """Per-layer-and-direction states → one state with each tensor stacked as (L·D, B, ...)."""
    return map_state(lambda *s: torch.stack(s, 0), *states)


def unstack_states(state: State, count: int) -> list[State]:
    """Inverse of :func:`stack_states`."""
    return [map_state(lambda s, i=i: s[i], state) for i in range(count)]
