"""Recurrent language model: embedding → stacked recurrent layers with dropout → output layer
(seed 004, "RNN language model"; Zaremba et al. 2014; Press & Wolf 2017 for weight tying)."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from ..cells.base import map_state
from ..layers.sequence import RNN
from .output import Output


class LanguageModel(nn.Module):
    """p(x_{t+1} | x_{≤t}) over a vocabulary, with any registered cell.

    ``forward(inputs (B, T) ids, targets (B, T) ids | None, state) -> Output(logits (B, T, V), mean
    cross-entropy in nats, state)``.
    """

    def __init__(self, vocab_size: int, embedding_size: int = 64, hidden_size: int = 256, num_layers: int = 2,
                 cell: str = "lstm", dropout: float = 0.0, tie_weights: bool = False, init_range: float = 0.0,
                 **cell_kwargs):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rnn = RNN(embedding_size, hidden_size, num_layers, cell=cell, dropout=dropout, **cell_kwargs)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.rnn.output_size, vocab_size)
        if tie_weights:
            if self.rnn.output_size != embedding_size:
                raise ValueError(f"tie_weights needs the recurrent output size ({self.rnn.output_size}) to equal "
                                 f"embedding_size ({embedding_size})")
            self.head.weight = self.embedding.weight
        if init_range > 0:  # Zaremba et al. 2014: every parameter ~ U(-0.1, 0.1)
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range)

    def initial_state(self, batch_size: int, device=None, dtype=None):
        """The zero state of the recurrent stack (the template a saved state is rebuilt on)."""
        return self.rnn.initial_state(batch_size, device=device, dtype=dtype)

    @staticmethod
    def select_state(state, index: Tensor):
        """Rows ``index`` of a state (batch is dim 1 of every tensor): beam reordering, repeating a prompt."""
        return map_state(lambda s: s.index_select(1, index), state)

    def step(self, ids: Tensor, state=None) -> tuple[Tensor, object]:
        """One token per row, ids (B,) → (logits (B, V), state): ``forward`` on (B, 1) ids without the
        sequence handling, the inner loop of generation."""
        if self.training and self.dropout.p > 0:
            h, state = self.rnn.step(self.dropout(self.embedding(ids)), state)
            return self.head(self.dropout(h)), state
        h, state = self.rnn.step(ids, state, embedding=self.embedding.weight)  # the lookup inside: see RNN.step
        return self.head(h), state

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None) -> Output:
        h, state = self.rnn(self.dropout(self.embedding(inputs)), state)
        logits = self.head(self.dropout(h))  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return Output(logits, loss, state)
