"""The sequence layer: any registered cell, stacked and optionally bidirectional, with torch.nn's
calling conventions, and torch's fused kernels where the math is identical.

References: torch.nn.LSTM/GRU/RNN (state layout, ``_VF`` kernels); Graves & Schmidhuber 2005
(bidirectional); seed 003 ("Bidirectional RNN", "Deep recurrent networks").
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import _VF, Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .. import native
from ..cells.base import (
    Cell,
    State,
    check_dtype,
    conform_state,
    map_state,
    module_dtype,
    same_structure,
    state_from_tensors,
    state_tensors,
)
from ..native.steps import FusedSteps, stack_family
from ..precision import active_dtype, step_linear
from ..registry import build_cell
from .recurrent import (
    StepRecorder,
    check_lengths,
    check_sequence,
    run_cell,
    stack_states,
    unstack_states,
)
from .regularization import check_recurrent_weights, recurrent_weights_dropped, sequence_dropout, zoneout_rates


class TorchKernel(NamedTuple):
    """torch's own kernels for a cell whose math is torch's (the cell declares ``native_mode``): the fused sequence
    kernel (``_VF.lstm`` & co.: oneDNN's LSTM on the CPU, cuDNN on CUDA) and the one-step kernel (those of
    ``nn.LSTMCell`` & co.), called with the state as a tuple of tensors whatever the cell."""

    sequence: Callable
    step: Callable
    tuple_state: bool  # the LSTM's kernels take and return (h, c); the others one tensor
    onednn: bool = False  # the CPU sequence kernel is oneDNN's (the LSTM's)

    def runs_under(self, device_type: str) -> bool:
        """Whether this kernel runs in the autocast dtype active for ``device_type``: oneDNN builds no bf16 LSTM
        primitive on a CPU without AVX-512 BF16 / AMX (torch raises "could not create a primitive descriptor"),
        where rnnkit's own kernels run the cell instead."""
        return not (self.onednn and device_type == "cpu" and active_dtype("cpu") == torch.bfloat16
                    and not torch.ops.mkldnn._is_mkldnn_bf16_supported())

    def run_sequence(self, x: Tensor, hx: tuple, weights: list[Tensor], has_biases: bool, layers: int,
                     dropout: float, train: bool, bidirectional: bool) -> tuple[Tensor, tuple]:
        result = self.sequence(x, hx if self.tuple_state else hx[0], weights, has_biases, layers, dropout, train,
                               bidirectional, True)
        return result[0], tuple(result[1:])

    def run_step(self, x: Tensor, hx: tuple, weights: list[Tensor]) -> tuple:
        new = self.step(x, hx if self.tuple_state else hx[0], *weights)
        return new if self.tuple_state else (new,)


TORCH_KERNELS = {"LSTM": TorchKernel(_VF.lstm, torch.lstm_cell, True, onednn=True),
                 "GRU": TorchKernel(_VF.gru, torch.gru_cell, False),
                 "RNN_TANH": TorchKernel(_VF.rnn_tanh, torch.rnn_tanh_cell, False),
                 "RNN_RELU": TorchKernel(_VF.rnn_relu, torch.rnn_relu_cell, False)}
# the one-step kernels cost a fraction of the sequence kernels for a single step at small batch (the sequence
# kernels set up oneDNN on every call: generation, benchmarks/bench_generation.py)
STEP_KERNEL_MAX_BATCH = 4
#: an LSTM stack stepped without autograd runs rnnkit's fused steps (rnnkit.native.steps) up to this many rows
#: on the CPU: faster than torch's sequence kernel per step at every batch measured (generate() on a 2x512 char
#: LSTM, Intel Xeon: 8 rows 1.23x, 16 1.11x, 64 1.09x, 256 1.02x; AMD EPYC (AVX2) with the native GEMM route of
#: rnnkit.native.steps: 16 rows 1.71x, 64 1.70x, 256 1.26x; benchmarks/bench_generation.py --batches ...)
FUSED_STEP_MAX_BATCH = 256
STEP_KERNEL_ON_CUDA = True


def _state_in(state: State, dtype: torch.dtype, device_type: str) -> State:
    """Under autocast (mixed precision, :mod:`rnnkit.precision`), the final state in the module's dtype: it is
    carried to the next chunk or generation step, and a cell's accumulator (the LSTM's c) must not be rounded to
    bf16 there. Otherwise ``state`` as it is."""
    if active_dtype(device_type) is None:
        return state
    return map_state(lambda t: t.to(dtype) if t.is_floating_point() else t, state)


class RNN(nn.Module):
    """Stacked, optionally bidirectional recurrent network over any registered cell.

    ``forward(x, state=None, lengths=None) -> (output, final_state)``, as torch.nn.LSTM/GRU/RNN:

    * ``x``: (B, T, D) when ``batch_first`` (the default here; torch's default is time-major), or
      (T, B, D), or a ``PackedSequence`` (then ``output`` is packed too).
    * ``output``: (B, T, num_directions · O), the last layer's outputs, both directions concatenated
      (forward first). Zero at padded steps.
    * ``final_state``: the cell's state with every tensor stacked as (num_layers · num_directions, B, ...)
      in torch's order: index ``2·l`` is layer l forward (its state at each sequence's last real step),
      ``2·l + 1`` is layer l backward (its state after step 0). For LSTMs that is ``LSTMState(h_n, c_n)``,
      so ``out, (h_n, c_n) = rnn(x)`` works as with torch.nn.LSTM.
    * ``lengths``: (B,) ints in [1, T] for padded batches (no sorting or packing needed).
    * ``return_states=True`` adds a third result: the last layer's state after every step, each field
      (B, T, num_directions · size) (every c_t of an LSTM). This runs rnnkit's loop, not a fused kernel.

    Speed: when every cell is a standard LSTM / torch-form GRU / tanh or relu Elman cell (``native_mode``),
    the whole stack runs in torch's fused kernel (oneDNN for LSTM on CPU) with rnnkit's parameters, except where
    rnnkit's own native kernel measured faster on the CPU (GRU, Elman: ``rnnkit.native.FASTER_THAN_TORCH``);
    every other cell declaring a ``kernel_family`` runs rnnkit's native kernel (``rnnkit.native``), the rest
    rnnkit's Python loop. ``use_native=False`` turns torch's kernels off (rnnkit's own then run).

    Args:
        input_size: D. hidden_size: H. num_layers: stacked layers.
        cell: a registry name (``"lstm"``, ``"gru"``, ``"mut1"``, ...; see ``rnnkit.CELLS``) or a Cell class.
        dropout: dropout on the outputs of every layer but the last (as torch.nn).
        variational_dropout: that dropout with one mask per sequence, the same at every step (Gal & Ghahramani
            2016), instead of a new mask per step.
        weight_dropout: DropConnect on every cell's recurrent matrices (``Cell.recurrent_weights``; the
            weight-dropped LSTM of AWD-LSTM, Merity et al. 2018), one mask per forward call shared by all steps and
            rows; the fused kernels still run. ``rnnkit.layers.regularization`` has the equations.
        zoneout: a rate p, or one per tensor of the cell's state (an LSTM's h, c): each unit keeps its previous
            value with probability p at every step in training, p·old + (1 − p)·new in evaluation (Krueger et al.
            2017). The stack then runs rnnkit's Python loop, in training and in evaluation.
        bidirectional: add a backward-in-time layer per level.
        **cell_kwargs: passed to every cell (e.g. ``forget_bias=1.0``, ``delays=(1, 4)``).

    Example::

        rnn = RNN(16, 32, num_layers=2, cell="mut2", bidirectional=True)
        out, h_n = rnn(torch.randn(4, 10, 16), lengths=[10, 7, 3, 1])   # out (4, 10, 64), h_n (4, 4, 32)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, cell="lstm",
                 dropout: float = 0.0, bidirectional: bool = False, batch_first: bool = True,
                 use_native: bool = True, weight_dropout: float = 0.0, variational_dropout: bool = False,
                 zoneout=0.0, **cell_kwargs):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1; got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        if not 0.0 <= weight_dropout < 1.0:
            raise ValueError(f"weight_dropout must be in [0, 1); got {weight_dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.dropout, self.bidirectional, self.batch_first = dropout, bidirectional, batch_first
        self.use_native = use_native
        self.weight_dropout, self.variational_dropout = float(weight_dropout), bool(variational_dropout)
        self.num_directions = 2 if bidirectional else 1
        make = (lambda d: build_cell(cell, d, hidden_size, **cell_kwargs)) if isinstance(cell, str) else (
            lambda d: cell(d, hidden_size, **cell_kwargs))
        cells: list[Cell] = []
        layer_input = input_size
        for _ in range(num_layers):
            for _ in range(self.num_directions):
                cells.append(make(layer_input))
            layer_input = cells[-1].output_size * self.num_directions
        self.cells = nn.ModuleList(cells)  # index 2·l + d, as torch's state layout
        if self.weight_dropout:
            check_recurrent_weights(cells, f"RNN(cell={type(cells[0]).__name__})")
        # one rate per state tensor, or None; a zoned-out stack runs only rnnkit's loop (no kernel has the masks)
        self.zoneout = zoneout_rates(cells[0], zoneout, f"RNN(cell={type(cells[0]).__name__})")
        self._state_templates: dict[int, State] = {}
        family = stack_family(cells)
        self._fused_steps = FusedSteps(family or "lstm")  # LSTM / GRU steps without autograd (generation)
        self._input_term_size: int | None = None
        modes = {c.native_mode for c in cells}
        mode = modes.pop() if len(modes) == 1 else None
        self._torch_kernel = None if self.zoneout else TORCH_KERNELS.get(mode)  # torch's kernels run every cell
        self._fused_steps_apply = family is not None and not self.zoneout
        self._no_projection = all(getattr(c, "weight_hr", None) is None for c in cells)
        self.output_size = layer_input

    # ---- public --------------------------------------------------------------------------------
    def forward(self, x, state: State | None = None, lengths=None, return_states: bool = False):
        with self._weights_for_this_call():
            return self._forward(x, state, lengths, return_states)

    def _forward(self, x, state: State | None, lengths, return_states: bool):
        packed = isinstance(x, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError("pass either a PackedSequence or lengths, not both")
            x, lengths = pad_packed_sequence(x, batch_first=True)
        owner = f"RNN(cell={type(self.cells[0]).__name__})"
        batch_first = self.batch_first or packed
        dtype = module_dtype(self)
        B, T = check_sequence(x, self.input_size, batch_first, owner, dtype)
        lengths = check_lengths(lengths, B, T, owner)
        if not batch_first:
            x = x.transpose(0, 1)
        if state is not None:
            state = self._check_state(state, B)
            check_dtype(state_tensors(state), dtype, owner, "initial state")

        if self._native_ok(return_states, x.device.type) and not self._own_kernel_preferred(x):
            if x.shape[1] == 1 and lengths is None and self._native_step_ok(x):
                step = self._run_fused_stack_step if self._fused_stack_ok(x) else self._run_native_step
                out, final = step(x[:, 0], state)
                out = out.unsqueeze(1)
            else:
                out, final = self._run_native(x, state, lengths)
            states = None
        else:
            out, final, states = self._run_loop(x, state, lengths, return_states)

        final = _state_in(final, dtype, x.device.type)
        if packed:
            out = pack_padded_sequence(out, lengths if lengths is not None else torch.full((B,), T),
                                       batch_first=True, enforce_sorted=False)
        elif not batch_first:
            out = out.transpose(0, 1)
            states = None if states is None else map_state(lambda s: s.transpose(0, 1), states)
        return (out, final, states) if return_states else (out, final)

    def step(self, x: Tensor, state: State | None = None, projected: bool = False) -> tuple[Tensor, State]:
        """One time step of the whole stack, x (B, D) → (output (B, O), state): the same as ``forward`` on a
        length-1 sequence without its sequence handling, for loops that feed each output back (generation).
        The state has the layout of ``forward``'s.

        ``projected=True``: x is the first cell's input term already, ``cells[0].input_projection(input)``
        (B, G): a caller that feeds the same few inputs again and again (a language model's tokens) computes that
        term once per input and passes rows of it (``LanguageModel.step``), and the first layer reads only its
        recurrent weights. In training with ``weight_dropout``, each call draws its own mask (as ``forward`` does)."""
        with self._weights_for_this_call():
            return self._step(x, state, projected)

    def _step(self, x: Tensor, state: State | None, projected: bool) -> tuple[Tensor, State]:
        if projected:
            if self.num_directions != 1:
                raise ValueError("RNN.step with projected=True needs a unidirectional RNN")
            size = self._projected_size()
            if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != size:
                got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ValueError(f"RNN.step with projected=True expected the first cell's input term (batch, {size}); "
                                 f"got {got}")
        elif not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.input_size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"RNN.step expected x (batch, {self.input_size}); got {got}")
        B = x.shape[0]
        dtype = module_dtype(self)
        check_dtype([x], dtype, "RNN.step", "x")
        if state is not None:
            state = self._check_state(state, B)
            check_dtype(state_tensors(state), dtype, "RNN.step", "state")
        if self._fused_stack_ok(x):
            out, final = self._run_fused_stack_step(x, state, projected)
            return out, _state_in(final, dtype, x.device.type)
        if projected:  # rnnkit's loop takes the input term as it is (torch's kernels want the input itself)
            out, final, _ = self._run_loop(x.unsqueeze(1), state, None, False, projected=True)
        elif self._native_ok(False, x.device.type) and not self._own_kernel_preferred(x.unsqueeze(1)):
            if self._native_step_ok(x):
                out, final = self._run_native_step(x, state)
                return out, _state_in(final, dtype, x.device.type)
            out, final = self._run_native(x.unsqueeze(1), state, None)
        else:
            out, final, _ = self._run_loop(x.unsqueeze(1), state, None, False)
        return out[:, 0], _state_in(final, dtype, x.device.type)

    def stepper(self, projected: bool = False,
                head: nn.Linear | None = None) -> Callable[[Tensor, State | None], tuple[Tensor, State]]:
        """:meth:`step` prepared for a run of steps over which the parameters and the autocast setting do not
        change (generation): a function ``(x, state) -> (output, state)`` equal to ``self.step(x, state,
        projected)``, or with ``head`` (a linear layer on the output, e.g. a language model's) ``(head(output),
        state)`` (``rnnkit.precision.step_linear``: few rows in float32 under CPU autocast). Where the fused LSTM
        stack runs the steps, its weights are prepared here once, a state is checked only when it is not the one the
        previous call returned, and on the CPU a step is one native call, head included
        (``benchmarks/bench_generation.py``). Take a new one after changing a parameter."""
        def general(x: Tensor, state: State | None) -> tuple[Tensor, State]:
            out, state = self.step(x, state, projected)
            return (out if head is None else step_linear(head, out)), state

        if not (self._fused_steps_apply and self.num_directions == 1):
            return general
        self._fused_steps.prepare(self.cells)
        steps, dtype = self._fused_steps, module_dtype(self)
        returned: list[State | None] = [None]

        def fused(x: Tensor, state: State | None) -> tuple[Tensor, State]:
            if state is None or not self._fused_stack_ok(x):
                return general(x, state)
            if state is not returned[0]:  # from outside: checked as step checks it
                size = self._projected_size() if projected else self.input_size
                if x.dim() != 2 or x.shape[1] != size:
                    return general(x, state)  # step raises the error
                state = self._check_state(state, x.shape[0])
                check_dtype([x, *state_tensors(state)], dtype, "RNN.step", "x and state")
            out, finals = steps.step_stack(x, state_tensors(state), projected=projected, head=head)
            returned[0] = state_from_tensors(state, finals)
            if finals[0].dtype != dtype:
                returned[0] = _state_in(returned[0], dtype, x.device.type)
            return out, returned[0]
        return fused

    def sampling_stack(self, rows: int, device: torch.device) -> FusedSteps | None:
        """The fused LSTM or GRU stack, prepared, when a run of steps of ``rows`` rows on ``device`` can go through
        rnnkit's native step kernel without leaving it (a language model's token loop, ``FusedSteps.sample_stack``);
        else None. Take a new one after changing a parameter."""
        if not (torch.device(device).type == "cpu" and self._fused_stack_runs(rows, cuda=False)):
            return None
        self._fused_steps.prepare(self.cells)
        return self._fused_steps if self._fused_steps.native else None

    def stack_state(self, state: State, rows: int) -> tuple[Tensor, ...]:
        """``state`` checked as :meth:`step` checks it, as the fused stack's tensors ((h, c) for an LSTM stack, (h,)
        for a GRU's), each (L, B, H)."""
        state = self._check_state(state, rows)
        tensors = state_tensors(state)
        check_dtype(list(tensors), module_dtype(self), "RNN.step", "state")
        return tensors

    def state_from_stack(self, template: State, tensors: tuple[Tensor, ...]) -> State:
        """The stack's tensors as a state of the form of ``template`` (:meth:`stack_state`'s inverse)."""
        state = state_from_tensors(template, tensors)
        dtype = module_dtype(self)
        return state if tensors[0].dtype == dtype else _state_in(state, dtype, tensors[0].device.type)

    def native_stack_steps(self) -> bool:
        """Whether generation steps run the whole stack in rnnkit's native step kernel, which reads the weights as
        bfloat16 under bf16 autocast (a one-direction stack of cells of one ``stack_step_family``; on the CPU, the
        kernels built): ``rnnkit.precision.resolve(..., step_kernel=...)`` lets ``auto`` pick bf16 for such steps."""
        weight = self.cells[0].weight_ih
        return (self._fused_steps_apply and self.use_native
                and self.num_directions == 1 and native.step_applies(weight, torch.bfloat16))

    def step_takes_input_term(self, x: Tensor) -> bool:
        """Whether a step of a batch like ``x`` (B, ...) gains from being fed the first cell's input term
        (``step(..., projected=True)``): when the fused LSTM step or rnnkit's own loop runs it, which take the term
        as it is; not where torch's kernels run the stack, which want the input itself."""
        if self.num_directions != 1:
            return False
        weight = next(self.cells[0].parameters())  # (x may hold token ids: the kernels see the cell's dtype)
        return (self._fused_stack_ok(x) or not self._native_ok(False, x.device.type)
                or self._own_kernel_runs(1, x.shape[0], weight))

    def _projected_size(self) -> int:
        """G, the width of the first cell's input term (computed once on a zero input)."""
        if self._input_term_size is None:
            w = next(self.cells[0].parameters())
            with torch.no_grad():
                probe = torch.zeros(1, self.input_size, dtype=w.dtype, device=w.device)
                self._input_term_size = int(self.cells[0].input_projection(probe).shape[-1])
        return self._input_term_size

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        """Zeros in the stacked (num_layers · num_directions, B, ...) layout."""
        return stack_states([c.initial_state(batch_size, device=device, dtype=dtype) for c in self.cells])

    def extra_repr(self) -> str:
        extra = (f", weight_dropout={self.weight_dropout}" if self.weight_dropout else "") + (
            ", variational_dropout=True" if self.variational_dropout else "") + (
            f", zoneout={list(self.zoneout)}" if self.zoneout else "")
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"dropout={self.dropout}{extra}, bidirectional={self.bidirectional}, batch_first={self.batch_first}")

    def _weights_for_this_call(self):
        """The recurrent matrices DropConnect-ed for one call when training with ``weight_dropout``."""
        if self.training and self.weight_dropout:
            return recurrent_weights_dropped(self.cells, self.weight_dropout)
        return contextlib.nullcontext()

    # ---- internals -----------------------------------------------------------------------------
    def _check_state(self, state, B: int) -> State:
        expected = self._state_templates.get(B)
        if expected is None:  # shapes only (meta tensors), built once per batch size: stepping calls this a lot
            expected = self._state_templates[B] = self.initial_state(B, device="meta")
        if type(state) is type(expected) and same_structure(state, expected):
            return state  # already in form (the state a step returned): nothing to check further or rebuild
        n = len(self.cells)
        return conform_state(state, expected, f"RNN (num_layers·num_directions={n}, batch={B})", "initial state")

    def _run_loop(self, x: Tensor, state: State | None, lengths: Tensor | None, return_states: bool,
                  projected: bool = False):
        B = x.shape[0]
        per_cell = (unstack_states(state, len(self.cells)) if state is not None else
                    [c.initial_state(B, device=x.device, dtype=x.dtype) for c in self.cells])
        finals, layer_input, states = [], x, None
        for layer in range(self.num_layers):
            outs, layer_states = [], []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                want = return_states and layer == self.num_layers - 1
                out, final, st = run_cell(self.cells[k], layer_input, per_cell[k], lengths, reverse=d == 1,
                                          return_states=want, projected=projected and layer == 0,
                                          zoneout=self.zoneout, training=self.training)
                outs.append(out)
                finals.append(final)
                layer_states.append(st)
            layer_input = self._between_layers(outs[0] if len(outs) == 1 else torch.cat(outs, -1), layer)
            if return_states and layer == self.num_layers - 1:
                states = map_state(lambda *s: torch.cat(s, -1), *layer_states)
        return layer_input, stack_states(finals), states

    def _native_ok(self, return_states: bool, device_type: str) -> bool:
        return (self.use_native and not return_states and self._torch_kernel is not None
                and self._torch_kernel.runs_under(device_type) and not StepRecorder.active)

    def _own_kernel_preferred(self, x: Tensor) -> bool:
        """Whether rnnkit's native sequence kernel (rnnkit.native, through the loop of :meth:`_run_loop`) should run
        instead of torch's: for the cell families it measured faster than torch's own on the CPU (GRU, Elman; not
        the LSTM, whose torch kernel is oneDNN's), in float32, and under bf16 autocast where the kernels' products run
        in bf16 too (native.bf16_products); with float32 products torch's bf16 kernels measured faster. For single
        steps of a few rows (generation) only the families of native.STEPS_FASTER_THAN_TORCH (the GRU); other single
        steps keep torch's one-step kernels."""
        return self._own_kernel_runs(x.shape[1], x.shape[0], x)

    def _own_kernel_runs(self, steps: int, rows: int, like: Tensor) -> bool:
        """:meth:`_own_kernel_preferred` for ``steps`` steps of ``rows`` rows of inputs like ``like`` (its device and
        dtype)."""
        family = self.cells[0].kernel_family
        steps_ok = steps > 1 or (rows <= native.DOT_MAX_ROWS and family in native.STEPS_FASTER_THAN_TORCH)
        return (steps_ok and family in native.FASTER_THAN_TORCH
                and (not torch.is_autocast_enabled(like.device.type) or native.bf16_products())
                and native.applies(self.cells[0], like))

    def _native_step_ok(self, x: Tensor) -> bool:
        """Whether one step of the batch ``x`` should skip the sequence kernel (no projection): on the CPU at small
        batches, where oneDNN's set-up per call costs more than the step; on CUDA at every batch (STEP_KERNEL_ON_CUDA),
        where a cuDNN call on rnnkit's separate weight tensors costs more than the few launches of a step."""
        small = x.shape[0] <= STEP_KERNEL_MAX_BATCH or (x.is_cuda and STEP_KERNEL_ON_CUDA)
        return small and self._no_projection

    def _fused_stack_ok(self, x: Tensor) -> bool:
        """Whether one step can run the whole stack through ``rnnkit.native.steps.FusedSteps.step_stack``: LSTMs (or
        GRUs where the native kernel runs them) without autograd, one direction, no dropout to apply, a batch that
        :meth:`_native_step_ok` steps."""
        return self._fused_stack_runs(x.shape[0], x.is_cuda)

    def _fused_stack_runs(self, rows: int, cuda: bool) -> bool:
        """:meth:`_fused_stack_ok` for a batch of ``rows`` rows, on CUDA or not."""
        rows_ok = rows <= FUSED_STEP_MAX_BATCH or (cuda and STEP_KERNEL_ON_CUDA)
        return (self._fused_steps_apply and self.use_native and not torch.is_grad_enabled()
                and self.num_directions == 1 and rows_ok
                and (not self.training or (self.dropout == 0 and self.weight_dropout == 0))
                and self._fused_steps.covers(self.cells, cuda))

    def _run_fused_stack_step(self, x: Tensor, state: State | None, projected: bool = False):
        """The generation hot path, in the fewest calls: x (B, D), or the first cell's input term (B, 4H)."""
        self._fused_steps.prepare(self.cells)
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        out, finals = self._fused_steps.step_stack(x, state_tensors(state), projected=projected)
        return out, state_from_tensors(state, finals)

    def _run_native_step(self, x: Tensor, state: State | None):
        """One time step, x (B, D), layer by layer: the same math as :meth:`_run_native`, without its per-call
        set-up. LSTMs without autograd use fused, thread-split weights (``rnnkit.native.steps.FusedSteps``);
        otherwise torch's one-step kernels (those of nn.LSTMCell & co.)."""
        fused = (self._fused_steps.family == "lstm" and self._fused_steps_apply and not torch.is_grad_enabled()
                 and not (self.training and self.weight_dropout))  # its cache is keyed on the parameters
        if fused:
            self._fused_steps.prepare(self.cells)
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        hx = state_tensors(state)
        finals: list[list[Tensor]] = [[] for _ in hx]
        layer_input = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                h_k = tuple(t[k] for t in hx)
                if fused:
                    new = self._fused_steps.step(k, layer_input, *h_k)
                else:
                    new = self._torch_kernel.run_step(layer_input, h_k, self.cells[k].native_weights())
                for f, t in zip(finals, new):
                    f.append(t)
                outs.append(new[0])
            layer_input = self._between_layers(outs[0] if len(outs) == 1 else torch.cat(outs, -1), layer)
        return layer_input, state_from_tensors(state, tuple(torch.stack(f) for f in finals))

    def _run_native(self, x: Tensor, state: State | None, lengths: Tensor | None):
        """The whole stack in one call of torch's fused kernel, on rnnkit's own parameters."""
        kernel = self._torch_kernel
        weights = [w for c in self.cells for w in c.native_weights()]
        has_biases = getattr(self.cells[0], "bias_ih", None) is not None
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        hx = state_tensors(state)
        if lengths is not None:
            return self._run_native_by_length(x, hx, lengths, state)
        if self._dropout_outside_kernel(x):
            D, layer_input, finals = self.num_directions, x, []
            for layer in range(self.num_layers):
                ids = range(layer * D, (layer + 1) * D)
                h = tuple(t[layer * D:(layer + 1) * D] for t in hx)
                with self._kernel_warnings():
                    out, final = kernel.run_sequence(layer_input, h,
                                                     [w for k in ids for w in self.cells[k].native_weights()],
                                                     has_biases, 1, 0.0, self.training, self.bidirectional)
                finals.append(final)
                layer_input = self._between_layers(out, layer)
            return layer_input, state_from_tensors(state, tuple(torch.cat(f) for f in zip(*finals)))
        with self._kernel_warnings():
            out, final = kernel.run_sequence(x, hx, weights, has_biases, self.num_layers,
                                             self._kernel_dropout(self.num_layers), self.training, self.bidirectional)
        return out, state_from_tensors(state, final)

    def _dropout_outside_kernel(self, x: Tensor) -> bool:
        """cuDNN draws the dropout masks between layers from a generator state of its own that no checkpoint holds
        (a resumed run would draw other masks): on CUDA, training with that dropout, every layer runs as its own
        kernel call with torch's dropout between them (the same masks torch's CPU kernel draws). Variational dropout
        is rnnkit's own, so it too runs between per-layer calls, on every device."""
        return (x.is_cuda or self.variational_dropout) and self.training and self.dropout > 0 and self.num_layers > 1

    def _kernel_dropout(self, layers: int) -> float:
        """The dropout a fused-kernel call over ``layers`` stacked layers gets: none for one layer (there is no
        between), so that cuDNN never sets up its dropout state: that draws a seed on the first call after every
        reseed, which shifted a resumed run's random numbers against the uninterrupted run's (check_cuda.py)."""
        return float(self.dropout) if layers > 1 else 0.0

    def _between_layers(self, out: Tensor, layer: int) -> Tensor:
        """Dropout on a layer's output (every layer but the last, as torch.nn), variational if asked."""
        if layer < self.num_layers - 1 and self.dropout > 0:
            return sequence_dropout(out, self.dropout, self.training, self.variational_dropout)
        return out

    def _run_native_by_length(self, x: Tensor, hx: tuple, lengths: Tensor, template: State):
        """Padded batches through the fused kernel without packing: rows sorted by length, time cut at every
        distinct length, one kernel call per piece over the rows still running (torch's packed CPU path runs
        step by step: 1.9-4.5x slower on sequences of 120-295 steps, benchmarks/bench_lengths.py). A backward
        direction runs forward over each row reversed within its length."""
        B, T = x.shape[:2]
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_lengths = lengths[order]
        restore = torch.argsort(order).to(x.device)
        order_d = order.to(x.device)
        x = x.index_select(0, order_d)
        hx = tuple(h.index_select(1, order_d) for h in hx)
        if not self.bidirectional and not self._dropout_outside_kernel(x):
            out, finals = self._run_pieces(x, hx, sorted_lengths, list(range(len(self.cells))))
        elif not self.bidirectional:
            layer_input, per_layer = x, []
            for k in range(self.num_layers):
                out, fin = self._run_pieces(layer_input, tuple(h[k:k + 1] for h in hx), sorted_lengths, [k])
                per_layer.append(fin)
                layer_input = self._between_layers(out, k)
            out, finals = layer_input, tuple(torch.cat(f) for f in zip(*per_layer))
        else:
            flip = _reverse_index(sorted_lengths, T).to(x.device)  # (B, T): each row reversed within its length
            finals_per_cell: list[tuple] = []
            layer_input = x
            for layer in range(self.num_layers):
                outs = []
                for d in range(2):
                    k = 2 * layer + d
                    inp = layer_input if d == 0 else _gather_time(layer_input, flip)
                    out, fin = self._run_pieces(inp, tuple(h[k:k + 1] for h in hx), sorted_lengths, [k])
                    outs.append(out if d == 0 else _gather_time(out, flip))
                    finals_per_cell.append(fin)
                layer_input = self._between_layers(torch.cat(outs, -1), layer)
            out = layer_input
            finals = tuple(torch.cat([f[i] for f in finals_per_cell]) for i in range(len(hx)))
        out = out.index_select(0, restore)
        mask = (torch.arange(T)[None] < lengths[:, None]).to(out.device)
        out = out * mask.unsqueeze(-1).to(out.dtype)  # zero at padded steps (the reversed pass wrote there)
        return out, state_from_tensors(template, tuple(f.index_select(1, restore) for f in finals))

    def _run_pieces(self, x: Tensor, hx: tuple, sorted_lengths: Tensor, cell_ids: list[int]):
        """One direction of the stacked cells ``cell_ids`` over rows sorted by decreasing length: returns (outputs
        (B, T, O), final state tensors (len(cell_ids), B, ...)), each row's state taken at its last real step."""
        kernel = self._torch_kernel
        weights = [w for k in cell_ids for w in self.cells[k].native_weights()]
        has_biases = getattr(self.cells[0], "bias_ih", None) is not None
        B, T = x.shape[:2]
        ends = sorted(set(sorted_lengths.tolist()))  # piece boundaries, increasing
        pieces, start, state = [], 0, hx
        for end in ends:
            n = int((sorted_lengths >= end).sum())  # rows still running through [start, end)
            h_in = tuple(h[:, :n] for h in state)
            with self._kernel_warnings():
                out, new_state = kernel.run_sequence(x[:n, start:end].contiguous(), h_in, weights, has_biases,
                                                     len(cell_ids), self._kernel_dropout(len(cell_ids)), self.training,
                                                     False)
            if n < B:
                out = torch.cat([out, out.new_zeros(B - n, *out.shape[1:])])
            pieces.append(out)
            state = tuple(torch.cat([new, old[:, n:]], 1) for new, old in zip(new_state, state))
            start = end
        out = torch.cat(pieces, 1)
        if start < T:
            out = torch.cat([out, out.new_zeros(B, T - start, out.shape[-1])], 1)
        return out, state


    def _kernel_warnings(self):
        return _quiet_projection_warning(not self._no_projection)


@contextlib.contextmanager
def _quiet_projection_warning(active: bool):
    """Projected LSTMs run torch's own (non-oneDNN) kernel, which warns so on every call: expected here."""
    if not active:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
        yield


def _reverse_index(lengths: Tensor, T: int) -> Tensor:
    """(B, T) time indices that reverse each row within its length and leave the padding in place."""
    t = torch.arange(T)[None]
    return torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
