"""A recurrent model of polyphonic music with independent Bernoulli outputs per key (Boulanger-Lewandowski et al.
2012's RNN baseline; Chung et al. 2014's GRU/LSTM comparison):

    h_t = RNN(x_{t−1}, h_{t−1}) with x_0 = 0,   p(x_t | x_{<t}) = Π_i Bernoulli(x_t,i; σ(W h_t + b)_i)

trained by the negative log-likelihood per time step (the sum over the 88 keys), the metric of the papers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..layers.sequence import RNN
from .output import Output


def bernoulli_nll_per_step(logits: Tensor, targets: Tensor) -> Tensor:
    """Σ_keys −log Bernoulli(target; σ(logit)) summed over the steps whose target rows are finite (NaN rows are
    padding), divided by their number: the NLL per time step."""
    mask = torch.isfinite(targets).all(-1)
    if not bool(mask.any()):
        raise ValueError("the batch has no steps with targets (every target row is NaN)")
    return F.binary_cross_entropy_with_logits(logits[mask], targets[mask], reduction="sum") / mask.sum()


class PianoRollRNN(nn.Module):
    """``forward(inputs (B, T, K) piano rolls, targets (B, T, K) or None, state=None, lengths=None) ->
    Output(logits (B, T, K) of x_t given x_{<t}, NLL per step, state)``: the model reads the roll shifted by one
    step itself, so inputs and targets are the same roll (targets NaN at padded steps)."""

    def __init__(self, keys: int = 88, hidden_size: int = 256, num_layers: int = 1, cell: str = "lstm",
                 dropout: float = 0.0, **cell_kwargs):
        super().__init__()
        self.keys = keys
        self.rnn = RNN(keys, hidden_size, num_layers, cell=cell, dropout=dropout, **cell_kwargs)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.rnn.output_size, keys)

    def initial_state(self, batch_size: int, device=None, dtype=None):
        return self.rnn.initial_state(batch_size, device=device, dtype=dtype)

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None, lengths=None) -> Output:
        shifted = torch.cat([torch.zeros_like(inputs[:, :1]), inputs[:, :-1]], 1)
        out, state = self.rnn(shifted, state, lengths=lengths)
        logits = self.head(self.dropout(out))
        loss = None if targets is None else bernoulli_nll_per_step(logits, targets)
        return Output(logits, loss, state)

    @torch.no_grad()
    def sample(self, num: int, length: int, generator: torch.Generator | None = None,
               mean: bool = False) -> tuple[Tensor, None]:
        """Ancestral samples (num, length, K): every step's keys drawn from p(x_t | x_{<t}) and fed back (``mean``:
        the probabilities of each step, still feeding back a draw)."""
        p = next(self.parameters())
        x = torch.zeros(num, self.keys, dtype=p.dtype, device=p.device)
        state, rows = None, []
        for _ in range(length):
            h, state = self.rnn.step(x, state)
            probs = torch.sigmoid(self.head(h))
            x = (torch.rand(probs.shape, generator=generator, dtype=p.dtype, device=p.device) < probs).to(p.dtype)
            rows.append(probs if mean else x)
        return torch.stack(rows, 1), None
