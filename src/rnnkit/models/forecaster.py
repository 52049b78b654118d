"""Recurrent one-step forecaster with teacher forcing, free running and scheduled sampling
(seed 003: "teacher forcing: back-fed inputs are actual targets, not outputs ... mix outputs and actual
targets during training"; Bengio et al. 2015, scheduled sampling)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..layers.sequence import RNN
from .output import Output


class Forecaster(nn.Module):
    """Predicts y_{t+1} from the values up to t: stacked recurrent layers → linear head.

    ``forward(inputs (B, T, F), targets (B, T, F) | None, state, teacher_forcing=1.0)``. The input at step t
    is the true value ``inputs[:, t]`` with probability ``teacher_forcing`` and otherwise the model's own
    prediction for that step (made at t - 1, detached as in scheduled sampling); step 0 always sees the true
    value. ``teacher_forcing=1`` runs the whole chunk in one call of the sequence layer; ``0`` is free running.
    """

    def __init__(self, num_features: int = 1, hidden_size: int = 64, num_layers: int = 1, cell: str = "lstm",
                 dropout: float = 0.0, **cell_kwargs):
        super().__init__()
        self.rnn = RNN(num_features, hidden_size, num_layers, cell=cell, dropout=dropout, **cell_kwargs)
        self.head = nn.Linear(self.rnn.output_size, num_features)

    def initial_state(self, batch_size: int, device=None, dtype=None):
        """The zero state of the recurrent stack (the template a saved state is rebuilt on)."""
        return self.rnn.initial_state(batch_size, device=device, dtype=dtype)

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None,
                teacher_forcing: float = 1.0) -> Output:
        if teacher_forcing >= 1.0:
            h, state = self.rnn(inputs, state)
            prediction = self.head(h)
        else:
            prediction, state = self._feedback_loop(inputs, state, teacher_forcing)
        loss = None if targets is None else F.mse_loss(prediction, targets)
        return Output(prediction, loss, state)

    def _feedback_loop(self, inputs: Tensor, state, teacher_forcing: float):
        B, T, _ = inputs.shape
        if state is None:
            state = self.rnn.initial_state(B, device=inputs.device, dtype=inputs.dtype)
        predictions, previous = [], None
        for t in range(T):
            x_t = inputs[:, t]
            if previous is not None:
                use_true = torch.rand(B, 1, device=inputs.device) < teacher_forcing
                x_t = torch.where(use_true, x_t, previous.detach())
            h, state = self.rnn.step(x_t, state)
            previous = self.head(h)  # (B, F): the prediction for step t + 1
            predictions.append(previous)
        return torch.stack(predictions, 1), state

    @torch.no_grad()
    def rollout(self, history: Tensor, horizon: int, state=None) -> Tensor:
        """Free-running forecast: read ``history`` (B, T, F), then feed each prediction back for ``horizon`` steps."""
        h, state = self.rnn(history, state)
        nxt = self.head(h[:, -1])  # (B, F)
        out = [nxt]
        for _ in range(horizon - 1):
            h, state = self.rnn.step(nxt, state)
            nxt = self.head(h)
            out.append(nxt)
        return torch.stack(out, 1)


class DirectForecaster(nn.Module):
    """Direct multi-step forecasting: read a window, predict all ``horizon`` future values at once, so no
    prediction is fed back (no error build-up).

    ``mode="heads"``: the encoder's last output → one linear head per horizon step (stacked as one matrix).
    ``mode="seq2seq"``: an encoder-decoder (seed 003: the encoder's final state conditions the decoder); the
    decoder reads the known future covariates (``future`` (B, h, C)) or zeros, one step per horizon.

    ``forward(inputs (B, T, F), targets (B, h, F_out) | None, state=None, future=None)``.
    """

    def __init__(self, num_features: int, horizon: int, num_targets: int = 1, hidden_size: int = 64,
                 num_layers: int = 1, cell: str = "lstm", mode: str = "heads", num_future: int = 0,
                 dropout: float = 0.0):
        super().__init__()
        if mode not in ("heads", "seq2seq"):
            raise ValueError(f"mode must be 'heads' or 'seq2seq'; got {mode!r}")
        self.horizon, self.num_targets, self.mode, self.num_future = horizon, num_targets, mode, num_future
        self.encoder = RNN(num_features, hidden_size, num_layers, cell=cell, dropout=dropout)
        if mode == "heads":
            self.head = nn.Linear(self.encoder.output_size, horizon * num_targets)
        else:
            self.decoder = RNN(max(num_future, 1), hidden_size, num_layers, cell=cell, dropout=dropout)
            self.head = nn.Linear(self.decoder.output_size, num_targets)

    def initial_state(self, batch_size: int, device=None, dtype=None):
        return self.encoder.initial_state(batch_size, device=device, dtype=dtype)

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None, future: Tensor | None = None):
        h, state = self.encoder(inputs, state)
        B = inputs.shape[0]
        if self.mode == "heads":
            prediction = self.head(h[:, -1]).view(B, self.horizon, self.num_targets)
        else:
            if future is None:
                future = inputs.new_zeros(B, self.horizon, max(self.num_future, 1))
            d, _ = self.decoder(future, state)
            prediction = self.head(d)
        loss = None if targets is None else F.mse_loss(prediction, targets)
        return Output(prediction, loss, state)
