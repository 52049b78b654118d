"""Recurrent language model: embedding → stacked recurrent layers with dropout → output layer
(seed 004, "RNN language model"; Zaremba et al. 2014; Press & Wolf 2017 for weight tying; Merity et al. 2018 for
the AWD-LSTM regularisation: variational dropout, weight-dropped recurrent matrices, embedding dropout)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..cells.base import map_state, tensor_version
from ..layers.regularization import embedding_dropout, sequence_dropout
from ..layers.sequence import RNN
from .output import Output, cross_entropy

#: The largest input table (vocabulary x G entries, G the first cell's input term) :meth:`LanguageModel.step` builds:
#: 16 MB of fp32. Beyond it, a row costs less to compute than the table to hold.
INPUT_TABLE_MAX_ENTRIES = 1 << 22


class LanguageModel(nn.Module):
    """p(x_{t+1} | x_{≤t}) over a vocabulary, with any registered cell.

    ``forward(inputs (B, T) ids, targets (B, T) ids | None, state) -> Output(logits (B, T, V), mean
    cross-entropy in nats, state)``.

    ``dropout`` applies to the embeddings, between the recurrent layers and before the output layer;
    ``variational_dropout`` makes it one mask per sequence at all those places (``rnnkit.layers.regularization``);
    ``weight_dropout`` DropConnects the recurrent matrices (``RNN``); ``embedding_dropout`` drops whole token types.
    """

    def __init__(self, vocab_size: int, embedding_size: int = 64, hidden_size: int = 256, num_layers: int = 2,
                 cell: str = "lstm", dropout: float = 0.0, tie_weights: bool = False, init_range: float = 0.0,
                 variational_dropout: bool = False, weight_dropout: float = 0.0, embedding_dropout: float = 0.0,
                 **cell_kwargs):
        super().__init__()
        if not 0.0 <= embedding_dropout < 1.0:
            raise ValueError(f"embedding_dropout must be in [0, 1); got {embedding_dropout}")
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rnn = RNN(embedding_size, hidden_size, num_layers, cell=cell, dropout=dropout,
                       variational_dropout=variational_dropout, weight_dropout=weight_dropout, **cell_kwargs)
        self.dropout = nn.Dropout(dropout)
        self.embedding_dropout = float(embedding_dropout)
        self.head = nn.Linear(self.rnn.output_size, vocab_size)
        if tie_weights:
            if self.rnn.output_size != embedding_size:
                raise ValueError(f"tie_weights needs the recurrent output size ({self.rnn.output_size}) to equal "
                                 f"embedding_size ({embedding_size})")
            self.head.weight = self.embedding.weight
        if init_range > 0:  # Zaremba et al. 2014: every parameter ~ U(-0.1, 0.1)
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range)
            for module in self.modules():  # but layer normalisation's gains and shifts start at 1 and 0
                if hasattr(module, "reset_normalization"):
                    module.reset_normalization()

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
        if self.training and self._regularised():
            h, state = self.rnn.step(self._dropped(self._embed(ids)), state)
            return self.head(self._dropped(h)), state
        table = self.input_table() if self.rnn.step_takes_input_term(ids) else None
        if table is not None:  # the first cell's input term for these tokens is a row lookup
            h, state = self.rnn.step(table[ids], state, projected=True)
        else:
            h, state = self.rnn.step(self.embedding(ids), state)
        return self.head(h), state

    def stepper(self):
        """:meth:`step` prepared for a run of steps with the parameters unchanged (generation, under one autocast
        setting): ``(ids (B,), state) -> (logits (B, V), state)``, the logits of :meth:`step`, with the input table
        and the recurrent stack's stepper (:meth:`RNN.stepper`, the output layer included) built once instead of
        checked at every token. Under CPU autocast the output layer of a step of few rows runs in float32
        (``rnnkit.precision.step_linear``)."""
        if self.training and self._regularised():
            return self.step
        table = self.input_table()
        from_table = self.rnn.stepper(projected=True, head=self.head) if table is not None else None
        from_embedding = self.rnn.stepper(head=self.head)

        def step(ids: Tensor, state=None):
            if from_table is not None and self.rnn.step_takes_input_term(ids):
                return from_table(table.index_select(0, ids), state)
            return from_embedding(self.embedding(ids), state)
        return step

    def sampler(self, rows: int):
        """Generation's token loop in native calls, for a batch of ``rows`` rows, or None where it does not run (it
        needs an LSTM or GRU stack that rnnkit's native step kernel runs, see :meth:`RNN.sampling_stack`, and float32
        weights): ``(logits (B, V), state, draws, noise (draws, B, V) | None, temperature, banned, stop_id, done,
        step_after_last, top_k, top_p) -> (ids (m, B), logits, state)``, each call drawing up to ``draws`` tokens as
        :func:`rnnkit.generation.sampling.choose_next` does (Gumbel noise over what top-k and top-p keep, or the
        argmax without; never a banned id) and
        stepping the model on each, token lookup, stack and output layer inside one native call
        (``rnnkit.native.stack_sample``; the same numbers as :meth:`stepper` and ``choose_next``, without a
        Python call per token)."""
        if (self.training and self._regularised()) or self.head.weight.dtype != torch.float32:
            return None
        stack = self.rnn.sampling_stack(rows, self.head.weight.device)
        if stack is None:
            return None
        table = self.input_table()  # each token's first input term, else its embedding (a large vocabulary)
        projected = table is not None
        if not projected:
            table = self.embedding.weight.detach()
            if self.embedding.max_norm is not None or table.dtype != torch.float32 or not table.is_contiguous():
                return None

        def run(logits: Tensor, state, draws: int, noise: Tensor | None, temperature: float = 1.0,
                banned: Tensor | None = None, stop_id: int | None = None, done: Tensor | None = None,
                step_after_last: bool = True, top_k: int = 0, top_p: float = 1.0):
            ids, logits, finals = stack.sample_stack(table, projected, self.rnn.stack_state(state, rows), self.head,
                                                     logits, noise, draws, temperature, banned, stop_id, done,
                                                     step_after_last, top_k, top_p)
            return ids, logits, self.rnn.state_from_stack(state, finals)
        return run

    def input_table(self) -> Tensor | None:
        """The first cell's input term for every token, T = input_projection(E) (V, G) (for an LSTM, W_ih E + b):
        in a step, row x of T replaces the embedding lookup and the first layer's input product. Built once and
        rebuilt when the embedding or the first cell changes (storage or write counter), in float32 outside any
        autocast. None with autograd on (gradients must reach E and W_ih), for a bidirectional stack, or beyond
        :data:`INPUT_TABLE_MAX_ENTRIES`."""
        cell = self.rnn.cells[0]
        if torch.is_grad_enabled() or self.rnn.bidirectional:
            return None
        sources = [self.embedding.weight, *cell.parameters()]
        key = (INPUT_TABLE_MAX_ENTRIES, *((t.data_ptr(), tensor_version(t), t.device) for t in sources))
        cached = getattr(self, "_input_table", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        table = None
        if self.embedding.num_embeddings * self.rnn._projected_size() <= INPUT_TABLE_MAX_ENTRIES:
            with torch.autocast(self.embedding.weight.device.type, enabled=False):
                table = cell.input_projection(self.embedding.weight)
        self._input_table = (key, table)
        return table

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None) -> Output:
        h, state = self.rnn(self._dropped(self._embed(inputs)), state)
        # the output layer on (B·T, H) rows: one product with the bias added inside it (on (B, T, H) torch adds the
        # bias in a pass of its own and sums its gradient over a 3-D tensor: 5% of a bf16 PTB update)
        logits = self.head(self._dropped(h).flatten(0, 1))  # (B·T, V)
        loss = None if targets is None else cross_entropy(logits, targets.flatten())
        return Output(logits.view(*h.shape[:2], -1), loss, state)

    def _regularised(self) -> bool:
        return self.dropout.p > 0 or self.embedding_dropout > 0 or self.rnn.weight_dropout > 0

    def _embed(self, ids: Tensor) -> Tensor:
        return embedding_dropout(self.embedding, ids, self.embedding_dropout, self.training)

    def _dropped(self, x: Tensor) -> Tensor:
        """The dropout on the embeddings and before the output layer: per step, or variational as the stack's."""
        return sequence_dropout(x, self.dropout.p, self.training, self.rnn.variational_dropout)
