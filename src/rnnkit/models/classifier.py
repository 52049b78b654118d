"""Many-to-one and many-to-many aligned models (seeds 000/004: "sentence → sentiment", frame-level labels,
tagging): an input layer, the sequence layer over padded batches with lengths, and a head on a pooled
summary (classification) or on every step (tagging).

References: Graves & Schmidhuber 2005 (bidirectional networks for framewise labelling); Bahdanau et al. 2014 and
Yang et al. 2016 (additive attention, here as attention pooling over one sequence's outputs).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..data.batches import IGNORE_INDEX
from ..layers.sequence import RNN
from .output import Output, cross_entropy

POOLINGS = ("last", "mean", "max", "attention")


def _step_mask(lengths: Tensor | None, B: int, T: int, device) -> Tensor:
    """(B, T) True at real steps."""
    if lengths is None:
        return torch.ones(B, T, dtype=torch.bool, device=device)
    return torch.arange(T, device=device)[None] < lengths.to(device)[:, None]


class SequenceEncoder(nn.Module):
    """Token ids (B, T) through an embedding, or features (B, T, D) as they are, then the sequence layer:
    ``forward(inputs, lengths=None) -> outputs (B, T, num_directions · O)`` (zero at padded steps).

    Give ``vocab_size`` for token inputs (id ``padding_idx`` is padding) or ``input_size`` for features;
    ``input_noise`` σ adds N(0, σ²) noise to features while training (Keras' ``GaussianNoise``; jitter augmentation).
    """

    def __init__(self, input_size: int | None = None, vocab_size: int | None = None, embedding_size: int = 64,
                 hidden_size: int = 128, num_layers: int = 1, cell: str = "lstm", bidirectional: bool = False,
                 dropout: float = 0.0, padding_idx: int = 0, input_noise: float = 0.0, **cell_kwargs):
        super().__init__()
        if (input_size is None) == (vocab_size is None):
            raise ValueError("give exactly one of input_size (feature sequences) or vocab_size (token sequences)")
        if input_noise and vocab_size is not None:
            raise ValueError("input_noise applies to feature sequences, not token ids")
        self.input_noise = input_noise
        self.embedding = None if vocab_size is None else nn.Embedding(vocab_size, embedding_size,
                                                                      padding_idx=padding_idx)
        self.dropout = nn.Dropout(dropout)
        self.rnn = RNN(embedding_size if vocab_size else input_size, hidden_size, num_layers, cell=cell,
                       dropout=dropout, bidirectional=bidirectional, **cell_kwargs)
        self.output_size = self.rnn.output_size

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.encode(inputs, lengths)[0]

    def encode(self, inputs: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, object]:
        """(outputs (B, T, num_directions · O), the final state in the sequence layer's stacked layout)."""
        if self.embedding is not None:
            x = self.dropout(self.embedding(inputs))
        elif self.training and self.input_noise > 0:
            x = inputs + self.input_noise * torch.randn_like(inputs)
        else:
            x = inputs
        return self.rnn(x, lengths=lengths)


class AttentionPooling(nn.Module):
    """Additive attention over one sequence's outputs o_t (Bahdanau et al. 2014's score against a learned query):

        e_t = vᵀ tanh(W o_t + b),   α = softmax(e) over the real steps,   s = Σ_t α_t o_t

    ``forward(outputs (B, T, O), mask (B, T)) -> (s (B, O), α (B, T))``; padded steps get α = 0.
    """

    def __init__(self, size: int, attention_size: int | None = None):
        super().__init__()
        self.proj = nn.Linear(size, attention_size or size)
        self.v = nn.Linear(attention_size or size, 1, bias=False)

    def forward(self, outputs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.v(torch.tanh(self.proj(outputs))).squeeze(-1)  # (B, T)
        alpha = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        return torch.einsum("bt,bto->bo", alpha, outputs), alpha


def pool(outputs: Tensor, lengths: Tensor | None, how: str, num_directions: int = 1,
         attention: AttentionPooling | None = None) -> tuple[Tensor, Tensor | None]:
    """Summarise (B, T, O) outputs over time → ((B, O), attention weights or None).

    ``last``: the forward direction's output at each sequence's last real step, and for a BiRNN the backward
    direction's output at step 0 (the end of its pass). ``mean`` / ``max``: over the real steps only.
    ``attention``: :class:`AttentionPooling`.
    """
    B, T, size = outputs.shape
    mask = _step_mask(lengths, B, T, outputs.device)
    if how == "last":
        last = (lengths.to(outputs.device) - 1) if lengths is not None else torch.full((B,), T - 1,
                                                                                     device=outputs.device)
        forward = outputs[torch.arange(B, device=outputs.device), last]  # (B, O)
        if num_directions == 1:
            return forward, None
        half = size // 2
        return torch.cat([forward[:, :half], outputs[:, 0, half:]], -1), None
    if how == "mean":
        m = mask.unsqueeze(-1).to(outputs.dtype)
        return (outputs * m).sum(1) / m.sum(1), None
    if how == "max":
        return outputs.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1), None
    if how == "attention":
        return attention(outputs, mask)
    raise ValueError(f"pooling must be one of {list(POOLINGS)}; got {how!r}")


class SequenceClassifier(nn.Module):
    """Sequence → class: :class:`SequenceEncoder`, pooling over time (``last``, ``mean``, ``max`` or
    ``attention``), dropout, a linear layer to ``num_classes`` logits.

    ``forward(inputs, targets (B,) | None, state=None, lengths=None) -> Output(logits (B, C), mean cross-entropy,
    None)``; independent examples carry no state. ``encode`` also returns the attention weights.
    """

    def __init__(self, num_classes: int, pooling: str = "last", **encoder_kwargs):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}; got {pooling!r}")
        self.encoder = SequenceEncoder(**encoder_kwargs)
        self.pooling = pooling
        self.attention = AttentionPooling(self.encoder.output_size) if pooling == "attention" else None
        self.dropout = nn.Dropout(encoder_kwargs.get("dropout", 0.0))
        self.head = nn.Linear(self.encoder.output_size, num_classes)

    def encode(self, inputs: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(pooled summary (B, O), attention weights (B, T) or None)."""
        out = self.encoder(inputs, lengths)
        return pool(out, lengths, self.pooling, self.encoder.rnn.num_directions, self.attention)

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None,
                lengths: Tensor | None = None) -> Output:
        summary, _ = self.encode(inputs, lengths)
        logits = self.head(self.dropout(summary))
        return Output(logits, None if targets is None else cross_entropy(logits, targets), None)


class SequenceTagger(nn.Module):
    """One class per step: :class:`SequenceEncoder` (bidirectional in the usual setting: a tag may depend on
    what follows), dropout, a linear layer on every step.

    ``forward(inputs, targets (B, T) | None, state=None, lengths=None) -> Output(logits (B, T, C), mean
    cross-entropy over the real steps (targets IGNORE_INDEX at padding), None)``.
    """

    def __init__(self, num_tags: int, **encoder_kwargs):
        super().__init__()
        self.encoder = SequenceEncoder(**encoder_kwargs)
        self.dropout = nn.Dropout(encoder_kwargs.get("dropout", 0.0))
        self.head = nn.Linear(self.encoder.output_size, num_tags)

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None,
                lengths: Tensor | None = None) -> Output:
        logits = self.head(self.dropout(self.encoder(inputs, lengths)))  # (B, T, C)
        loss = None if targets is None else cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                            ignore_index=IGNORE_INDEX)
        return Output(logits, loss, None)


class SequenceRegressor(SequenceClassifier):
    """Sequence → one value (the adding problem): :class:`SequenceClassifier`'s encoder and pooling, a linear layer
    to one output. ``forward(...) -> Output(values (B,), mean squared error, None)``."""

    def __init__(self, pooling: str = "last", **encoder_kwargs):
        super().__init__(1, pooling, **encoder_kwargs)

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None,
                lengths: Tensor | None = None) -> Output:
        summary, _ = self.encode(inputs, lengths)
        values = self.head(self.dropout(summary)).squeeze(-1)
        return Output(values, None if targets is None else F.mse_loss(values, targets), None)
