"""Encoder-decoder networks (seeds 002/003: "encoder: reader, input RNN → emits C as a simple function of its final
state; decoder: writer, output RNN → conditions on C to emit y = (y_1, ..., y_n); condition either as starting state
or extra input"; "when |C| is too small ... introduce an attention mechanism").

* :class:`Attention`: global attention of a decoder state over the encoder outputs (Bahdanau et al. 2014's additive
  score, Luong et al. 2015's dot and general scores), source padding masked out of every distribution.
* :class:`Bridge`: the encoder's final state → the decoder's initial state, both directions and any sizes.
* :class:`Decoder`: any registered cell, stacked, conditioned on C as initial state, per-step input or both, and/or
  attending with input feeding (Luong et al. 2015, as OpenNMT's global attention).
* :class:`EncoderDecoder`: a decoder with the task-model contract, trained with teacher forcing, free running or
  scheduled sampling (Bengio et al. 2015); :class:`Seq2Seq` reads token sequences with an RNN encoder
  (``rnnkit.models.captioning.ImageCaptioner`` reads images). Decoding (greedy, sampling, beam search) is in
  ``rnnkit.generation.seq2seq``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..cells.base import State, map_state, state_from_tensors, state_tensors
from ..data.batches import IGNORE_INDEX
from ..layers.sequence import RNN
from ..registry import build_cell
from .classifier import SequenceEncoder, _step_mask
from .output import Output, cross_entropy

ATTENTIONS = ("none", "additive", "dot", "general")
CONTEXTS = ("init", "input", "both")


class Attention(nn.Module):
    """Scores of a query q (the decoder's top hidden state) against every encoder output k_s, normalised over the
    real source positions (padding gets exactly α = 0), and the context they weigh:

        additive (Bahdanau et al. 2014):  e_s = vᵀ tanh(W_q q + W_k k_s)
        dot (Luong et al. 2015):          e_s = qᵀ k_s            (needs equal sizes)
        general (Luong et al. 2015):      e_s = qᵀ W_a k_s
        α = softmax(e),   c = Σ_s α_s k_s

    The query-free half (W_k k_s, W_a k_s) is computed once per source by :meth:`prepare`, not at every step.
    ``forward(query (B, Q) or (B, T, Q), keys (B, S, K), prepared, mask (B, S)) -> (context, α)`` with the
    query's leading shape: (B, K) and (B, S), or (B, T, K) and (B, T, S).
    """

    def __init__(self, kind: str, query_size: int, key_size: int, attention_size: int | None = None):
        super().__init__()
        if kind not in ATTENTIONS[1:]:
            raise ValueError(f"attention must be one of {list(ATTENTIONS[1:])}; got {kind!r}")
        if kind == "dot" and query_size != key_size:
            raise ValueError(f"dot attention needs the decoder's hidden size ({query_size}) to equal the encoder's "
                             f"output size ({key_size}, both directions); use 'general' or 'additive'")
        self.kind = kind
        if kind == "additive":
            size = attention_size or query_size
            self.query_proj = nn.Linear(query_size, size, bias=False)
            self.key_proj = nn.Linear(key_size, size)
            self.v = nn.Linear(size, 1, bias=False)
        elif kind == "general":
            self.key_proj = nn.Linear(key_size, query_size, bias=False)

    def prepare(self, keys: Tensor) -> Tensor:
        """The part of the scores that depends on the source only: W_k k (additive), W_a k (general), k (dot)."""
        return keys if self.kind == "dot" else self.key_proj(keys)

    def forward(self, query: Tensor, keys: Tensor, prepared: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query  # (B, T, Q)
        if self.kind == "additive":
            scores = self.v(torch.tanh(self.query_proj(q).unsqueeze(2) + prepared.unsqueeze(1))).squeeze(-1)
        else:
            scores = torch.bmm(q, prepared.transpose(1, 2))  # (B, T, S)
        alpha = scores.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(-1)
        context = torch.bmm(alpha, keys)  # (B, T, K)
        return (context[:, 0], alpha[:, 0]) if single else (context, alpha)


class Memory(NamedTuple):
    """What the decoder reads of the source: every encoder output, which of them are real, their attention keys
    (:meth:`Attention.prepare`), and the summary C (the top layer's final states, both directions)."""

    outputs: Tensor  # (B, S, K)
    mask: Tensor  # (B, S) True at real positions
    keys: Tensor | None  # (B, S, ·) or None without attention
    summary: Tensor  # (B, C)

    def select(self, index: Tensor) -> Memory:
        """Rows ``index`` (beam search repeats every example beam-width times)."""
        return Memory(*(None if t is None else t.index_select(0, index) for t in self))


class DecoderState(NamedTuple):
    rnn: State  # the decoder RNN's state, stacked (num_layers, B, ...)
    feed: Tensor | None  # the previous attentional vector ã_{t-1} (input feeding), or None


class Bridge(nn.Module):
    """An encoder's final state → the decoder's initial state, field by field (h, and c for LSTMs):

        s_0^(l) = tanh(W [h_enc→^(l'); h_enc←^(l')] + b)   (the hidden field; other fields without the tanh)

    where layer l of the decoder reads encoder layer l' (the top layers aligned when the depths differ) and both
    directions of a bidirectional encoder are concatenated; a decoder field with no counterpart (an LSTM's c from a
    vector) reads the encoder's first field. When the encoder state has the decoder's layout, it passes unchanged
    (no parameters), as in Sutskever et al. 2014. ``Bridge.between(encoder_rnn, decoder_rnn)`` for two RNNs;
    ``Bridge(decoder_rnn, [C])`` maps one vector (B, C), given as (1, B, C), to every layer and field (an image
    summary: Xu et al. 2015's h_0 = f_init,h(mean a_i), c_0 = f_init,c(mean a_i)).
    """

    def __init__(self, decoder: RNN, field_sizes: list[int], layers: int = 1, directions: int = 1,
                 identity_allowed: bool = True):
        super().__init__()
        dec = state_tensors(decoder.initial_state(1, device="meta"))
        self.enc_layers, self.enc_dirs, self.dec_layers = layers, directions, decoder.num_layers
        self.sources = [min(i, len(field_sizes) - 1) for i in range(len(dec))]  # encoder field of each decoder field
        in_sizes = [field_sizes[s] * directions for s in self.sources]
        out_sizes = [d.shape[-1] for d in dec]
        self.identity = (identity_allowed and directions == 1 and layers == self.dec_layers
                         and in_sizes == out_sizes and len(field_sizes) == len(dec) and all(d.dim() == 3 for d in dec))
        self.proj = None if self.identity else nn.ModuleList(nn.Linear(i, o) for i, o in zip(in_sizes, out_sizes))
        self._template = decoder.initial_state(1, device="meta")
        self.layer_of = [max(0, layers - self.dec_layers + layer) for layer in range(self.dec_layers)]

    @classmethod
    def between(cls, encoder: RNN, decoder: RNN) -> Bridge:
        enc = state_tensors(encoder.initial_state(1, device="meta"))
        return cls(decoder, [t.shape[-1] for t in enc], encoder.num_layers, encoder.num_directions,
                   identity_allowed=all(t.dim() == 3 for t in enc))

    def forward(self, final: State) -> State:
        tensors = state_tensors(final)
        out = []
        for f, s in enumerate(self.sources):
            t = tensors[s]  # (L·D, B, size)
            if self.identity:
                out.append(t)
                continue
            L, D = self.enc_layers, self.enc_dirs
            t = t.reshape(L, D, *t.shape[1:]).movedim(1, -2).flatten(-2)  # (L, B, D·size): directions side by side
            t = self.proj[f](t[self.layer_of])
            out.append(torch.tanh(t) if f == 0 else t)
        return state_from_tensors(self._template, out)


def _cell_output_size(cell, hidden_size: int, cell_kwargs: dict) -> int:
    """What a cell emits per step (hidden_size, or a projection's / a Jordan net's output size), read from one built
    on the meta device: no memory, and no draw from the random-number stream."""
    with torch.device("meta"):
        made = build_cell(cell, 1, hidden_size, **cell_kwargs) if isinstance(cell, str) else cell(1, hidden_size,
                                                                                                  **cell_kwargs)
    return made.output_size


class Decoder(nn.Module):
    """The writer: y_{t-1} embedded, the RNN stepped, and an output layer to the target vocabulary.

    * ``context`` ``init``: C enters as the initial state (through :class:`Bridge`); ``input``: C is appended to
      every step's input (Cho et al. 2014); ``both``.
    * ``attention`` (not ``none``): at each step the top hidden state h_t attends over the encoder outputs,
      ã_t = tanh(W_c [h_t; c_t]) and logits = W_o ã_t (Luong et al. 2015, eq. 5-6); with ``input_feeding`` ã_{t-1}
      is appended to the next input, so the alignment decisions see the previous ones.
    * no attention: logits = W_o h_t.
    """

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, num_layers: int, cell, key_size: int,
                 summary_size: int, attention: str = "additive", context: str = "init", input_feeding: bool = True,
                 dropout: float = 0.0, padding_idx: int = 0, **cell_kwargs):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {list(ATTENTIONS)}; got {attention!r}")
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {list(CONTEXTS)}; got {context!r}")
        self.context, self.input_feeding = context, input_feeding and attention != "none"
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=padding_idx)
        self.summary_size = summary_size if context in ("input", "both") else 0
        self.feed_size = _cell_output_size(cell, hidden_size, cell_kwargs) if self.input_feeding else 0
        self.rnn = RNN(embedding_size + self.summary_size + self.feed_size, hidden_size, num_layers, cell=cell,
                       dropout=dropout, **cell_kwargs)
        self.attention = None if attention == "none" else Attention(attention, self.rnn.output_size, key_size)
        self.combine = None if self.attention is None else nn.Linear(self.rnn.output_size + key_size,
                                                                    self.rnn.output_size, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.rnn.output_size, vocab_size)

    def start(self, initial: State | None, batch_size: int, like: Tensor) -> DecoderState:
        feed = like.new_zeros(batch_size, self.feed_size) if self.input_feeding else None
        return DecoderState(initial, feed)

    def _output(self, h: Tensor, memory: Memory) -> tuple[Tensor, Tensor | None, Tensor]:
        """(logits, α, ã) from top hidden states h (B, Q) or (B, T, Q)."""
        if self.attention is None:
            return self.head(self.dropout(h)), None, h
        ctx, alpha = self.attention(h, memory.outputs, memory.keys, memory.mask)
        attentional = torch.tanh(self.combine(torch.cat([h, ctx], -1)))
        return self.head(self.dropout(attentional)), alpha, attentional

    def _inputs(self, embedded: Tensor, memory: Memory, feed: Tensor | None) -> Tensor:
        parts = [embedded]
        if self.summary_size:
            s = memory.summary
            parts.append(s if embedded.dim() == 2 else s.unsqueeze(1).expand(-1, embedded.shape[1], -1))
        if feed is not None:
            parts.append(feed)
        return parts[0] if len(parts) == 1 else torch.cat(parts, -1)

    def step(self, tokens: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One output step: previous tokens (B,) → (logits (B, V), new state, α (B, S) or None)."""
        x = self._inputs(self.dropout(self.embedding(tokens)), memory, state.feed)
        h, rnn_state = self.rnn.step(x, state.rnn)
        logits, alpha, attentional = self._output(h, memory)
        return logits, DecoderState(rnn_state, attentional if self.input_feeding else None), alpha

    def forward(self, tokens: Tensor, state: DecoderState, memory: Memory,
                teacher_forcing: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """Decoder inputs (B, T) (y_0 = <bos>, y_1, ...) → (logits (B, T, V), α (B, T, S) or None).

        With ``teacher_forcing`` = 1 every step reads the true previous token; without input feeding the whole
        sequence then runs in one call of the sequence layer, attention over all steps at once. Below 1 each row
        reads, at each step t ≥ 1, the true token with that probability and its own previous argmax otherwise
        (scheduled sampling; 0: free running)."""
        if teacher_forcing >= 1.0 and not self.input_feeding:
            x = self._inputs(self.dropout(self.embedding(tokens)), memory, None)
            h, _ = self.rnn(x, state.rnn)
            logits, alpha, _ = self._output(h, memory)
            return logits, alpha
        logits, alphas, previous = [], [], None
        for t in range(tokens.shape[1]):
            tok = tokens[:, t]
            if previous is not None and teacher_forcing < 1.0:
                own = previous.argmax(-1)
                use_true = torch.rand(tok.shape, device=tok.device) < teacher_forcing
                tok = torch.where(use_true, tok, own)
            step_logits, state, alpha = self.step(tok, state, memory)
            logits.append(step_logits)
            alphas.append(alpha)
            previous = step_logits.detach()
        return torch.stack(logits, 1), None if alphas[0] is None else torch.stack(alphas, 1)


class EncoderDecoder(nn.Module):
    """What every conditioned decoder shares (:class:`Seq2Seq`, :class:`rnnkit.models.ImageCaptioner`): a
    :class:`Decoder` and training by teacher forcing / scheduled sampling; subclasses implement ``encode(inputs,
    lengths) -> (Memory, DecoderState)``.

    ``forward(inputs, targets (B, T), state=None, lengths=None, teacher_forcing=1.0) -> Output(logits (B, T, V),
    mean cross-entropy over the real target tokens, None)``: ``targets`` are the output tokens followed by
    ``eos_id`` (padding: IGNORE_INDEX); the decoder reads ``<bos>, y_1, ..., y_{n-1}`` and is trained to emit
    ``y_1, ..., y_n, <eos>``, i.e. to maximise log P(y | x)."""

    decoder: Decoder
    pad_id: int
    bos_id: int
    eos_id: int

    def encode(self, inputs: Tensor, lengths: Tensor | None = None) -> tuple[Memory, DecoderState]:
        raise NotImplementedError

    @staticmethod
    def select(state: DecoderState, index: Tensor) -> DecoderState:
        """Rows ``index`` of a decoder state (batch is dim 1 of the RNN state, dim 0 of the feed)."""
        rnn = None if state.rnn is None else map_state(lambda s: s.index_select(1, index), state.rnn)
        return DecoderState(rnn, None if state.feed is None else state.feed.index_select(0, index))

    def decoder_inputs(self, targets: Tensor) -> Tensor:
        """<bos> followed by the targets shifted right, padding as ``pad_id``."""
        shifted = targets[:, :-1].masked_fill(targets[:, :-1] == IGNORE_INDEX, self.pad_id)
        return torch.cat([torch.full_like(targets[:, :1], self.bos_id), shifted], 1)

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None, lengths: Tensor | None = None,
                teacher_forcing: float = 1.0) -> Output:
        if targets is None:
            raise ValueError(f"{type(self).__name__}.forward needs the targets (teacher forcing); to decode without "
                             "them use rnnkit.generation.seq2seq.greedy_decode / beam_decode")
        memory, start = self.encode(inputs, lengths)
        logits, _ = self.decoder(self.decoder_inputs(targets), start, memory, teacher_forcing)
        loss = cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
        return Output(logits, loss, None)


class Seq2Seq(EncoderDecoder):
    """Encoder-decoder over token ids: the encoder is any registered cell, stacked and optionally bidirectional,
    over a padded batch with ``lengths`` (B,); the decoder uses the same cell and depth. Training and the output
    contract are :class:`EncoderDecoder`'s.

    Example::

        model = Seq2Seq(20, 12, hidden_size=64, attention="general", bidirectional=True)
        out = model(source, targets, lengths=source_lengths)          # out.loss: the training loss
        memory, state = model.encode(source, source_lengths)         # decoding: rnnkit.generation.seq2seq
    """

    def __init__(self, source_vocab_size: int, target_vocab_size: int, embedding_size: int = 64,
                 hidden_size: int = 128, num_layers: int = 1, cell: str = "lstm", bidirectional: bool = True,
                 attention: str = "additive", context: str = "init", input_feeding: bool = True,
                 dropout: float = 0.0, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2, **cell_kwargs):
        super().__init__()
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.encoder = SequenceEncoder(vocab_size=source_vocab_size, embedding_size=embedding_size,
                                       hidden_size=hidden_size, num_layers=num_layers, cell=cell,
                                       bidirectional=bidirectional, dropout=dropout, padding_idx=pad_id,
                                       **cell_kwargs)
        enc = self.encoder.rnn
        self.decoder = Decoder(target_vocab_size, embedding_size, hidden_size, num_layers, cell,
                               key_size=enc.output_size, summary_size=enc.output_size, attention=attention,
                               context=context, input_feeding=input_feeding, dropout=dropout, padding_idx=pad_id,
                               **cell_kwargs)
        self.bridge = Bridge.between(enc, self.decoder.rnn) if context in ("init", "both") else None

    def encode(self, source: Tensor, lengths: Tensor | None = None) -> tuple[Memory, DecoderState]:
        """Read the source once: (what the decoder attends to, its start state)."""
        if source.dim() != 2 or source.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"Seq2Seq expected source token ids (batch, steps) of int64; got {source.dtype} "
                             f"{tuple(source.shape)}")
        outputs, final = self.encoder.encode(source, lengths)
        B, S = source.shape
        h = state_tensors(final)[0]  # (L·D, B, H)
        D = self.encoder.rnn.num_directions
        summary = h[-D:].movedim(0, 1).flatten(1)  # the top layer's final states, both directions (B, D·H)
        mask = _step_mask(lengths, B, S, source.device)
        keys = None if self.decoder.attention is None else self.decoder.attention.prepare(outputs)
        memory = Memory(outputs, mask, keys, summary)
        initial = self.bridge(final) if self.bridge is not None else None
        return memory, self.decoder.start(initial, B, outputs)
