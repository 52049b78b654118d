"""Decoding an encoder-decoder: greedy, sampling, and batched beam search with length normalisation.

The source is read once (``model.encode``); every output step feeds one token per hypothesis through
``model.decoder.step`` with the carried state, never re-running the prefix. The model needs:

* ``encode(source (B, S), lengths) -> (memory, state)`` with ``memory.select(index)`` (rows),
* ``decoder.step(tokens (B,), state, memory) -> (logits (B, V), state, α (B, S) or None)``,
* ``select(state, index)``, and ``bos_id`` / ``eos_id``,

as :class:`rnnkit.models.Seq2Seq` has. Each result is a :class:`Hypothesis`: the tokens before ``<eos>``, the
sum of their log-probabilities (``<eos>`` included when emitted), and the attention matrix (output step × source
position) when the model attends.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .sampling import choose_next


@dataclass
class Hypothesis:
    tokens: list[int]  # the output before <eos>
    log_prob: float  # log P(tokens, <eos> | source) (without <eos> when max_length cut it)
    attention: Tensor | None  # (steps, source length): α of every emitted step, <eos> included
    finished: bool  # ended with <eos> (False: cut at max_length)

    def score(self, length_penalty: float = 1.0) -> float:
        """log P / (steps ** length_penalty): 0 ranks by raw probability, 1 by the mean per step."""
        steps = len(self.tokens) + int(self.finished)
        return self.log_prob / max(steps, 1) ** length_penalty


def _check(source: Tensor, lengths, max_length: int):
    if not isinstance(source, Tensor) or source.dim() < 2:
        got = tuple(source.shape) if isinstance(source, Tensor) else type(source).__name__
        raise ValueError(f"expected a batch of sources (token ids (batch, steps), or images); got {got}")
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1; got {max_length}")
    if lengths is not None:
        lengths = torch.as_tensor(lengths)
    return source, lengths


def _hypotheses(tokens: Tensor, log_probs: Tensor, finished: Tensor, steps: Tensor, alphas: Tensor | None,
                positions: Tensor) -> list[Hypothesis]:
    """One Hypothesis per row; α cut to the row's real source positions (``positions``: the memory's count)."""
    out = []
    for r in range(tokens.shape[0]):
        n = int(steps[r])
        emitted = tokens[r, :n].tolist()
        done = bool(finished[r])
        kept = emitted[:-1] if done else emitted
        att = None if alphas is None else alphas[r, :n, : int(positions[r])].cpu()
        out.append(Hypothesis(kept, float(log_probs[r]), att, done))
    return out


@torch.no_grad()
def greedy_decode(model, source: Tensor, lengths=None, max_length: int = 100, sample: bool = False,
                  temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  generator: torch.Generator | None = None) -> list[Hypothesis]:
    """One hypothesis per source row: the most likely token at every step, or a draw (``sample``, with the
    temperature / top-k / nucleus controls of ``choose_next``), until ``<eos>`` or ``max_length`` steps."""
    source, lengths = _check(source, lengths, max_length)
    was_training = model.training
    model.eval()
    memory, state = model.encode(source, lengths)
    B = source.shape[0]
    tokens = torch.full((B,), model.bos_id, dtype=torch.long, device=source.device)
    emitted, log_probs = [], torch.zeros(B, dtype=torch.float64, device=source.device)
    finished = torch.zeros(B, dtype=torch.bool, device=source.device)
    steps = torch.zeros(B, dtype=torch.long, device=source.device)
    alphas = []
    for _ in range(max_length):
        logits, state, alpha = model.decoder.step(tokens, state, memory)
        tokens = choose_next(logits, temperature, top_k, top_p, greedy=not sample, generator=generator)
        logp = logits.double().log_softmax(-1).gather(1, tokens[:, None])[:, 0]
        live = ~finished
        log_probs += torch.where(live, logp, 0.0)
        steps += live.long()
        emitted.append(tokens)
        alphas.append(alpha)
        finished |= tokens == model.eos_id
        if bool(finished.all()):
            break
    model.train(was_training)
    stacked_alpha = None if alphas[0] is None else torch.stack(alphas, 1)
    return _hypotheses(torch.stack(emitted, 1), log_probs, finished, steps, stacked_alpha, memory.mask.sum(1))


@torch.no_grad()
def beam_decode(model, source: Tensor, lengths=None, beam_width: int = 5, max_length: int = 100,
                length_penalty: float = 1.0) -> list[Hypothesis]:
    """The best of ``beam_width`` hypotheses per source row, all rows searched as one batch of B · K.

    Every step extends each live hypothesis by every token and keeps the K best by log-probability; a finished
    hypothesis stays in its beam with its score frozen (it can only be followed by ``<eos>`` at no cost). The
    search stops when every beam is finished or at ``max_length``; the result is the hypothesis with the best
    ``Hypothesis.score(length_penalty)`` (log P / steps^α). K = 1 is greedy decoding."""
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1; got {beam_width}")
    source, lengths = _check(source, lengths, max_length)
    was_training = model.training
    model.eval()
    B, K, device = source.shape[0], beam_width, source.device
    memory, state = model.encode(source, lengths)
    rows = torch.arange(B, device=device).repeat_interleave(K)
    memory, state = memory.select(rows), model.select(state, rows)
    scores = torch.full((B, K), float("-inf"), dtype=torch.float64, device=device)
    scores[:, 0] = 0.0  # one live hypothesis per row at the start (the others are copies of it)
    tokens = torch.full((B * K,), model.bos_id, dtype=torch.long, device=device)
    finished = torch.zeros(B * K, dtype=torch.bool, device=device)
    steps = torch.zeros(B * K, dtype=torch.long, device=device)
    history = torch.zeros(B * K, 0, dtype=torch.long, device=device)
    att_history = None
    for _ in range(max_length):
        logits, state, alpha = model.decoder.step(tokens, state, memory)
        logp = logits.double().log_softmax(-1)  # (B·K, V)
        V = logp.shape[1]
        frozen = torch.full_like(logp[0], float("-inf"))
        frozen[model.eos_id] = 0.0
        logp = torch.where(finished[:, None], frozen, logp)
        candidates = (scores.view(-1, 1) + logp).view(B, K * V)
        scores, flat = candidates.topk(K, -1)  # (B, K)
        parent = (torch.arange(B, device=device)[:, None] * K + flat // V).view(-1)
        tokens = (flat % V).view(-1)
        state = model.select(state, parent)
        was_finished = finished[parent]
        steps = steps[parent] + (~was_finished).long()
        finished = was_finished | (tokens == model.eos_id)
        history = torch.cat([history[parent], tokens[:, None]], 1)
        if alpha is not None:
            step_alpha = alpha[parent].unsqueeze(1)
            att_history = step_alpha if att_history is None else torch.cat([att_history[parent], step_alpha], 1)
        if bool(finished.all()):
            break
    model.train(was_training)
    hyps = _hypotheses(history, scores.view(-1), finished, steps, att_history, memory.mask.sum(1))
    best = []
    for b in range(B):
        group = [h for h in hyps[b * K:(b + 1) * K] if h.log_prob > float("-inf")]
        best.append(max(group, key=lambda h: h.score(length_penalty)))
    return best
