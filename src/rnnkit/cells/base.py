"""The cell contract: one time step of a recurrent network, and nothing else.

A cell splits its work in two (DESIGN.md, haste's ``Wx = input @ kernel``):

* ``input_projection(x)`` does everything that does not depend on the previous state, for all
  time steps at once: ``(B, T, D) -> (B, T, G)``, one batched matrix product.
* ``step(px_t, state) -> (y_t, new_state)`` holds only the recurrent half of the equations.

State is a ``Tensor (B, H)`` or a ``NamedTuple`` of tensors with the hidden state first
(``LSTMState(h, c)``). The cell never stores state; it is passed in and returned.
"""

from __future__ import annotations

from typing import NamedTuple, Union

import torch
from torch import Tensor, nn
from torch.nn import functional as F

State = Union[Tensor, tuple]


def map_state(fn, *states):
    """Apply ``fn`` to each tensor of one or more states of the same structure (nested states included: a
    memory cell's state holds its controller's state as one field)."""
    first = states[0]
    if isinstance(first, Tensor):
        return fn(*states)
    return _rebuild(first, [map_state(fn, *fields) for fields in zip(*states)])


def _rebuild(template: tuple, tensors: list) -> tuple:
    return type(template)(*tensors) if hasattr(template, "_fields") else tuple(tensors)


def state_tensors(state: State) -> tuple:
    """The tensors of a state as a flat tuple, depth first (a nested state's tensors in field order)."""
    if isinstance(state, Tensor):
        return (state,)
    return tuple(t for field in state for t in state_tensors(field))


def state_from_tensors(template: State, tensors) -> State:
    """Rebuild a state with the structure of ``template`` from ``tensors`` (flat, as ``state_tensors`` gives)."""
    remaining = iter(tensors)
    return _fill(template, remaining)


def _fill(template: State, remaining) -> State:
    if isinstance(template, Tensor):
        return next(remaining)
    return _rebuild(template, [_fill(field, remaining) for field in template])


def describe_state(state: State) -> str:
    """Human-readable shapes of a state, for error messages."""
    if isinstance(state, Tensor):
        return str(tuple(state.shape))
    shapes = [describe_state(t) if isinstance(t, (Tensor, tuple)) else type(t).__name__ for t in state]
    names = getattr(state, "_fields", None)
    if names is None:
        return "(" + ", ".join(shapes) + ")"
    return type(state).__name__ + "(" + ", ".join(f"{n}={s}" for n, s in zip(names, shapes)) + ")"


def same_structure(state, expected: State) -> bool:
    """Whether ``state`` has the structure and shapes of ``expected`` (tuples of the same lengths, nested alike;
    a plain tuple stands for a NamedTuple)."""
    if isinstance(expected, Tensor):
        return isinstance(state, Tensor) and state.shape == expected.shape
    return (isinstance(state, tuple) and len(state) == len(expected)
            and all(same_structure(a, b) for a, b in zip(state, expected)))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)``; a few rows without autograd (a generation step's input projection) through
    rnnkit's native dot products (``rnnkit.native.linear``), the same products faster than ATen's at one row."""
    from .. import native  # (rnnkit.native imports this module)

    out = native.linear(x, weight, bias)
    return F.linear(x, weight, bias) if out is None else out


_ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda v: v,
}


def activation(name: str):
    """Look up a pointwise activation by name; unknown names list the valid ones."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}") from None


class Cell(nn.Module):
    """Base class of every recurrent cell.

    Subclasses set ``input_size``, ``hidden_size`` and ``output_size`` (what ``step`` emits; equal to
    ``hidden_size`` except for projected LSTMs and Jordan nets), and implement ``step``. The default
    ``input_projection`` is ``F.linear(x, weight_ih, bias_ih)``; cells with other time-parallel work
    override it.

    Subclasses may also set:

    * ``native_mode``: ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"`` when the cell's math is
      exactly that of torch's fused kernel, with ``native_weights()`` giving torch's weight list; the
      sequence layer then dispatches to it.
    * ``feedback_size``: for cells that feed their previous output back (Jordan), the size of the
      part of the state that teacher forcing replaces (see ``force``).
    * ``kernel_family``: the family of rnnkit's native sequence kernels (:mod:`rnnkit.native`) whose equations
      are this cell's, with ``kernel_arguments()`` giving its weights in that family's form; the sequence loop
      then runs the whole sequence in one native call (the cell's ``step`` stays the reference).
    * ``stack_step_family``: the family of rnnkit's native generation step (``rnnkit.native.stack_step``:
      ``"lstm"``, ``"peephole-lstm"``, ``"gru"``, ``"gru-cho"``, ``"mut1"``, ``"mut2"``, ``"mut3"``, ``"rnn-tanh"``
      or ``"rnn-relu"``) whose
      equations are this cell's, with ``stack_step_weights()`` giving its weights in that family's form; a
      one-direction stack of such cells then generates through it, the whole token loop in native calls
      (``rnnkit.native.steps``).
    * ``recurrent_weights``: the names of the parameters that multiply the previous state (default
      ``("weight_hh",)``): what the sequence layer's ``weight_dropout`` (DropConnect) drops; empty for a cell whose
      recurrence is structured (unitary).
    """

    input_size: int
    hidden_size: int
    output_size: int
    native_mode: str | None = None
    feedback_size: int | None = None
    kernel_family: str | None = None
    stack_step_family: str | None = None
    recurrent_weights: tuple[str, ...] = ("weight_hh",)

    # ---- the contract -------------------------------------------------------------------------
    def input_projection(self, x: Tensor) -> Tensor:
        """Time-parallel part of the step for all steps: ``(..., D) -> (..., G)``."""
        return linear(x, self.weight_ih, self.bias_ih)

    def step(self, px_t: Tensor, state: State) -> tuple[Tensor, State]:
        """One step from the projected input ``px_t (B, G)``: returns ``(y_t, new_state)``."""
        raise NotImplementedError

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        """Zeros of the right shape (the default start state)."""
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def native_weights(self) -> list[Tensor]:
        """Weights in torch's ``_VF`` order ``[w_ih, w_hh, b_ih, b_hh(, w_hr)]`` (native cells only)."""
        raise NotImplementedError(f"{type(self).__name__} has no native kernel")

    def kernel_arguments(self) -> dict:
        """The weights and options ``rnnkit.native``'s ``kernel_family`` kernel takes (cells with a family only)."""
        raise NotImplementedError(f"{type(self).__name__} declares no native kernel family")

    def stack_step_weights(self) -> tuple[Tensor, Tensor]:
        """The weights ``rnnkit.native.stack_step`` takes for this cell (cells with a ``stack_step_family`` only):
        the fused [W_x | W_h] (G·H, D + H), the rows of each gate's input and recurrent weights side by side, and
        one row of the family's vectors. By default [``weight_ih`` | ``weight_hh``] and ``bias_ih`` (zeros
        without)."""
        weight = torch.cat([self.weight_ih, self.weight_hh], 1)
        return weight, self._bias_or_zeros(self.bias_ih, weight)

    @staticmethod
    def _bias_or_zeros(bias: Tensor | None, weight: Tensor) -> Tensor:
        """``bias``, or zeros of one entry per row of ``weight`` where the cell has none."""
        return bias if bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)

    def force(self, state: State, feedback: Tensor) -> State:
        """Replace the fed-back part of ``state`` by ``feedback`` (teacher forcing)."""
        raise ValueError(f"{type(self).__name__} does not feed its output back; teacher forcing "
                         "applies only to cells with a feedback_size (e.g. 'jordan')")

    def note_weights(self) -> dict[str, Tensor]:
        """The weights under the names the lecture notes give them (views into the parameters)."""
        raise NotImplementedError

    # ---- conveniences built on the contract ---------------------------------------------------
    def forward(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step on a raw input ``x_t (B, D)``, as ``torch.nn.LSTMCell`` would be called."""
        if x_t.dim() != 2 or x_t.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expected input (batch, {self.input_size}); "
                             f"got {tuple(x_t.shape)}")
        dtype = module_dtype(self)
        check_dtype([x_t], dtype, type(self).__name__, "input")
        if state is None:
            state = self.initial_state(x_t.shape[0], device=x_t.device, dtype=x_t.dtype)
        else:
            state = check_state(self, state, x_t.shape[0])
            check_dtype(state_tensors(state), dtype, type(self).__name__, "state")
        return self.step(self.input_projection(x_t), state)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"


def tensor_version(t: Tensor) -> int:
    """The tensor's in-place write counter, for caches derived from parameters (inference tensors, made under
    torch.inference_mode, have none: -1)."""
    return -1 if t.is_inference() else t._version


def module_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype of ``module``'s first floating-point parameter (None when it has none)."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), None)


def check_dtype(tensors, dtype: torch.dtype | None, owner: str, what: str) -> None:
    """Every tensor of ``tensors`` in the module's ``dtype``: otherwise a ValueError naming both, instead of a
    matmul or oneDNN error from deep inside torch. Under autocast the ops convert, so anything floating goes."""
    if dtype is None:
        return
    for t in tensors:
        if t.dtype == dtype:
            continue
        if not t.is_floating_point():
            raise ValueError(f"{owner} expected {what} of floating-point dtype {dtype}; got {t.dtype} (token ids "
                             "need an embedding first)")
        if not torch.is_autocast_enabled(t.device.type):
            raise ValueError(f"{owner} expected {what} of dtype {dtype} (its parameters' dtype); got {t.dtype}: "
                             f"convert with .to({dtype}) or the module with .to({t.dtype})")


def conform_state(state, expected: State, owner: str, what: str = "state") -> State:
    """Check ``state`` against ``expected`` (same structure and shapes; meta tensors are fine) and return it
    in the expected type (a plain tuple ``(h, c)`` becomes ``LSTMState(h, c)``). Raises a ValueError
    naming the expected and received shapes."""
    if not same_structure(state, expected):
        got = describe_state(state) if isinstance(state, (Tensor, tuple)) else type(state).__name__
        raise ValueError(f"{owner} expected {what} {describe_state(expected)}; got {got}")
    return state_from_tensors(expected, state_tensors(state))


def check_state(cell: Cell, state, batch_size: int, what: str = "state") -> State:
    """``conform_state`` against the cell's own state for ``batch_size`` sequences."""
    return conform_state(state, cell.initial_state(batch_size, device="meta"), type(cell).__name__, what)


class LSTMState(NamedTuple):
    """State of LSTM-family cells: hidden ``h (B, H)`` first, then cell ``c (B, H)``."""

    h: Tensor
    c: Tensor


def uniform_init_(module: nn.Module, hidden_size: int) -> None:
    """torch.nn's default: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / hidden_size ** 0.5
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            p.uniform_(-bound, bound)
