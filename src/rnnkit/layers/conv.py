"""A stack of convolutional LSTM layers over sequences of images (Shi et al. 2015), in rnnkit's one time loop."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..cells.base import LSTMState, check_dtype, module_dtype
from ..cells.conv import ConvLSTMCell
from .recurrent import check_lengths, run_cell
from .regularization import zoneout_rates


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM: ``forward(x, state=None, lengths=None) -> (outputs, final states)``.

    * ``x``: (B, T, C, height, width) (``batch_first``, the default) or (T, B, C, height, width).
    * ``outputs``: the last layer's H_t at every step, (B, T, C_h, height, width); zero at padded steps.
    * ``state``: one ``LSTMState(h, c)`` per layer, each tensor (B, C_h of that layer, height, width) (zeros when
      None); the final states come in that form, each row's at its last real step (layers may differ in C_h).
    * ``lengths``: (B,) ints in [1, T] for padded batches.

    Args:
        input_size: C. hidden_size: C_h, or one per layer (Shi et al.'s stacks narrow: (128, 64, 64)).
        kernel_size: odd k, or one per layer. num_layers: when ``hidden_size`` is one number.
        zoneout: as ``RNN``'s (``rnnkit.layers.regularization.zone_out``): a rate, or (p_h, p_c).
        **cell_kwargs: to every :class:`~rnnkit.cells.conv.ConvLSTMCell` (``bias``, ``forget_bias``).

    Example::

        net = ConvLSTM(1, (32, 32), kernel_size=5)
        out, states = net(torch.rand(4, 10, 1, 16, 16))   # out (4, 10, 32, 16, 16); states[1].h (4, 32, 16, 16)
    """

    def __init__(self, input_size: int, hidden_size: int | Sequence[int], kernel_size: int | Sequence[int] = 3,
                 num_layers: int = 1, batch_first: bool = True, zoneout=0.0, **cell_kwargs):
        super().__init__()
        sizes = [hidden_size] * num_layers if isinstance(hidden_size, int) else list(hidden_size)
        kernels = [kernel_size] * len(sizes) if isinstance(kernel_size, int) else list(kernel_size)
        if not sizes or len(kernels) != len(sizes):
            raise ValueError(f"ConvLSTM needs one kernel_size per layer ({len(sizes)}); got {kernels}")
        self.input_size, self.batch_first, self.num_layers = input_size, batch_first, len(sizes)
        channels = [input_size, *sizes]
        self.cells = nn.ModuleList(ConvLSTMCell(channels[k], sizes[k], kernels[k], **cell_kwargs)
                                   for k in range(len(sizes)))
        self.zoneout = zoneout_rates(self.cells[0], zoneout, "ConvLSTM")
        self.output_size = sizes[-1]

    def forward(self, x: Tensor, state: Sequence[LSTMState] | None = None,
                lengths=None) -> tuple[Tensor, list[LSTMState]]:
        if not isinstance(x, Tensor) or x.dim() != 5 or x.shape[2] != self.input_size:
            layout = "(batch, time, channels, height, width)" if self.batch_first else \
                "(time, batch, channels, height, width)"
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"ConvLSTM expected a 5-D input {layout} with channels={self.input_size}; got {got}")
        check_dtype([x], module_dtype(self), "ConvLSTM", "input")
        if not self.batch_first:
            x = x.transpose(0, 1)
        B, T, _, height, width = x.shape
        lengths = check_lengths(lengths, B, T, "ConvLSTM")
        starts = self._initial_states(state, B, (height, width), x)
        finals, layer_input = [], x
        for cell, start in zip(self.cells, starts):
            layer_input, final, _ = run_cell(cell, layer_input, start, lengths, zoneout=self.zoneout,
                                             training=self.training)
            finals.append(final)
        return (layer_input if self.batch_first else layer_input.transpose(0, 1)), finals

    def _initial_states(self, state, B: int, size: tuple[int, int], x: Tensor) -> list[LSTMState]:
        """Zeros, or the given per-layer states checked against the shapes the layers need."""
        if state is None:
            return [cell.initial_state(B, x.device, x.dtype, size) for cell in self.cells]
        expected = [(B, cell.hidden_size, *size) for cell in self.cells]
        form = ", ".join(f"LSTMState(h, c) of {e}" for e in expected)
        ok = (isinstance(state, (list, tuple)) and len(state) == self.num_layers
              and all(isinstance(s, tuple) and len(s) == 2 and all(isinstance(t, Tensor) and tuple(t.shape) == e
                                                                   for t in s) for s, e in zip(state, expected)))
        if not ok:
            raise ValueError(f"ConvLSTM expected the state as one (h, c) per layer: [{form}]")
        check_dtype([t for s in state for t in s], module_dtype(self), "ConvLSTM", "initial state")
        return [LSTMState(*s) for s in state]

    def extra_repr(self) -> str:
        zoneout = f", zoneout={list(self.zoneout)}" if self.zoneout else ""
        return f"input_size={self.input_size}, num_layers={self.num_layers}, batch_first={self.batch_first}{zoneout}"
