"""Binary vectors in, binary vectors out, one step at a time: the model of the algorithmic memory tasks (copy,
repeat copy, associative recall; Graves et al. 2014 §4), over any cell — the neural Turing machine (``cell="ntm"``)
or an LSTM baseline.

    y_t = σ(W_o o_t + b_o),  o_t the sequence layer's output (for the NTM [h_t; r_t])

trained with the binary cross-entropy of every output bit at the steps that have a target (NaN targets mark the
steps where the network only reads).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..layers.sequence import RNN
from .output import Output


def target_mask(targets: Tensor) -> Tensor:
    """(B, T) True at the steps whose target row is finite."""
    return torch.isfinite(targets).all(-1)


class BitSequenceModel(nn.Module):
    """The sequence layer (any cell) and a linear output layer to ``output_size`` logits per step.

    ``forward(inputs (B, T, D), targets (B, T, F) or None, state=None, lengths=None) -> Output(logits (B, T, F),
    loss, None)``: the loss is the mean binary cross-entropy over the bits of the steps with finite targets. Every
    sequence is a separate example, so no state is carried to the next batch.
    """

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 100, num_layers: int = 1,
                 cell: str = "ntm", dropout: float = 0.0, **cell_kwargs):
        super().__init__()
        self.rnn = RNN(input_size, hidden_size, num_layers, cell=cell, dropout=dropout, **cell_kwargs)
        self.head = nn.Linear(self.rnn.output_size, output_size)

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None, lengths=None) -> Output:
        out, _ = self.rnn(inputs, state, lengths=lengths)
        logits = self.head(out)  # (B, T, F)
        loss = None
        if targets is not None:
            mask = target_mask(targets)
            if not bool(mask.any()):
                raise ValueError("the batch has no steps with targets (every target row is NaN)")
            loss = F.binary_cross_entropy_with_logits(logits[mask], targets[mask])
        return Output(logits, loss, None)

    @torch.no_grad()
    def trace(self, inputs: Tensor):
        """Output probabilities (B, T, F) and the state after every step (every field (B, T, ...); for the NTM the
        memory, read vectors and head weightings), for plots."""
        out, _, states = self.rnn(inputs, return_states=True)
        return torch.sigmoid(self.head(out)), states


def bit_errors(logits: Tensor, targets: Tensor) -> Tensor:
    """Wrong output bits per sequence (B,): the thresholded outputs (logit > 0) against the targets, at the steps
    with finite targets (the literature's "bit errors per sequence")."""
    mask = target_mask(targets)
    wrong = ((logits > 0).to(targets.dtype) != torch.nan_to_num(targets)) & mask.unsqueeze(-1)
    return wrong.sum((1, 2))
