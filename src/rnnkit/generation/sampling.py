"""Sampling from a recurrent language model (seed 004: argmax, top-k, multinomial; Karpathy's char-rnn
temperature; Holtzman et al. 2020 nucleus sampling) and beam search.

The prompt is read once; every new token is fed with the carried state, so a token costs the same at step 10
and at step 10,000 (never re-encoding the prefix). The model needs the task-model contract
``model(ids (B, T), state=state) -> Output(logits (B, T, V), loss, state)`` and ``model.select_state(state, index)``
to reorder or repeat states along the batch (beam search, several samples of one prompt). A model with
``model.step(ids (B,), state) -> (logits (B, V), state)`` (as :class:`~rnnkit.models.LanguageModel`) is stepped
through it: the same result without the sequence handling of ``forward`` (at batch 1 that handling costs
about as much as the arithmetic).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import native


def choose_next(logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, greedy: bool = False,
                banned: list[int] | Tensor | None = None, generator: torch.Generator | None = None,
                noise: Tensor | None = None) -> Tensor:
    """One token per row from logits (B, V).

    ``banned`` ids never come out (e.g. ``<unk>``, as seed 004's sampler). ``greedy`` takes the argmax.
    Otherwise: divide by ``temperature``, keep the ``top_k`` most likely (0: all), keep the smallest set whose
    probability reaches ``top_p`` (nucleus; 1: all), renormalise and draw. ``noise``: this draw's standard Gumbel
    noise (B, V) drawn beforehand (:class:`GumbelNoise`), instead of drawing it from ``generator`` here.
    """
    _check_strategy(temperature, top_k, top_p)
    logits = logits.float()
    if greedy:
        return _ban(logits, banned).argmax(-1)
    if noise is not None:  # every step below in one native pass (draw_rows / keep_row), where it runs
        ids = None if banned is None else torch.as_tensor(banned, dtype=torch.long, device=logits.device)
        drawn = native.gumbel_argmax(logits, noise, temperature, top_k, top_p, ids)
        if drawn is not None:
            return drawn
    if banned is not None or top_k or top_p < 1.0:  # before top-k / top-p, so the kept set holds allowed tokens only
        logits = _ban(logits, banned)
    if temperature != 1.0:
        logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, -1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -torch.inf)
    if top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) >= top_p  # tokens after the nucleus is complete
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, -torch.inf))
    logits = _ban(logits, banned)  # again last: scaling can turn −inf into NaN
    return gumbel_argmax(logits, generator) if noise is None else (logits + noise).argmax(-1)


def _check_strategy(temperature: float, top_k: int, top_p: float) -> None:
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0; got {temperature}")
    if top_k < 0 or not 0 < top_p <= 1:  # (a NaN top_p fails the comparison too)
        raise ValueError(f"top_k must be >= 0 and top_p in (0, 1]; got {top_k}, {top_p}")


def _ban(logits: Tensor, banned) -> Tensor:
    """``logits`` with NaN (which argmax would pick) and the ``banned`` ids set to −inf: never chosen."""
    logits = logits.nan_to_num(nan=-torch.inf, posinf=torch.finfo(logits.dtype).max)
    if banned is not None and len(banned):
        logits = logits.index_fill(-1, torch.as_tensor(banned, device=logits.device), -torch.inf)
    return logits


def gumbel_argmax(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One index per row of ``logits`` (B, V), distributed as softmax(logits): argmax_i (logits_i + G_i) with
    G_i = −log(−log U_i), U_i ~ U[0, 1) i.i.d. standard Gumbel (the Gumbel-max trick; Gumbel 1954, Maddison
    et al. 2014). The same distribution as ``torch.multinomial(logits.softmax(-1), 1)`` in fewer, cheaper calls
    (sampling was a tenth of a batch-1 generation step). U < 1 keeps G finite above, so a −inf logit is never
    chosen."""
    device = generator.device if generator is not None else logits.device
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=device).to(logits.device)
    return (logits - u.log_().neg_().log_()).argmax(-1)


class GumbelNoise:
    """Standard Gumbel noise G = −log(−log U), U ~ U[0, 1), for the draws of a generation, (B, V) per draw: drawn
    from ``generator`` ``chunk`` draws at a time (the same numbers, in the same order, as one ``torch.rand`` per
    draw), so that a draw costs one addition and an argmax (:func:`choose_next`'s ``noise``)."""

    def __init__(self, shape: tuple[int, int], draws: int, generator: torch.Generator | None = None,
                 device=None, chunk: int = 64):
        self.shape, self.left, self.generator, self.chunk = tuple(shape), draws, generator, chunk
        self.device = torch.device(device) if device is not None else None
        self._block: Tensor | None = None
        self._next = self._size = 0

    def next(self) -> Tensor:
        """The next draw's noise (B, V)."""
        return self.take(1)[0]

    def take(self, n: int) -> Tensor:
        """The next draws' noise (k, B, V), 1 <= k <= n: as many as are left of the block drawn last (a new block
        is drawn when it is used up)."""
        if self._next == self._size:
            size = self._size = max(1, min(self.chunk, self.left))
            device = self.generator.device if self.generator is not None else self.device
            u = torch.rand((size, *self.shape), generator=self.generator, device=device, dtype=torch.float32)
            self._block = u.log_().neg_().log_().neg_().to(self.device)
            self._next = 0
        k = max(1, min(n, self._size - self._next))
        self.left -= k
        self._next += k
        return self._block[self._next - k: self._next]


def _stepper(model):
    """``(ids (B,), state) -> (logits (B, V), state)`` for ``model``: its ``stepper()`` (a step prepared for a run of
    steps) or its ``step`` when it has one, else ``forward`` on (B, 1) ids."""
    prepared = getattr(model, "stepper", None)
    if callable(prepared):
        return prepared()
    step = getattr(model, "step", None)
    if callable(step):
        return step

    def forward_step(ids: Tensor, state):
        out = model(ids.view(-1, 1), state=state)
        return out.prediction[:, -1], out.state
    return forward_step


def _token_loop(model, rows: int, strategy: dict):
    """The model's native token loop (``model.sampler(rows)``, e.g. :meth:`LanguageModel.sampler`) where the model
    offers one for ``rows`` rows (any strategy of :func:`choose_next`); else None."""
    unknown = set(strategy) - {"temperature", "top_k", "top_p", "greedy", "banned"}
    if unknown:
        raise TypeError(f"unknown sampling option(s) {sorted(unknown)}; expected temperature, top_k, top_p, greedy "
                        "or banned")
    _check_strategy(strategy.get("temperature", 1.0), strategy.get("top_k", 0), strategy.get("top_p", 1.0))
    sampler = getattr(model, "sampler", None)
    return sampler(rows) if callable(sampler) else None


@torch.inference_mode()  # no autograd bookkeeping at all: a batch-1 step is ~10% faster than under no_grad
def generate(model, prompt: Tensor, max_new_tokens: int, num_samples: int = 1, stop_id: int | None = None,
             generator: torch.Generator | None = None, **strategy) -> list[list[int]]:
    """Continue ``prompt`` (T0,) ids ``num_samples`` times (a batch), up to ``max_new_tokens`` each, stopping a
    row at ``stop_id``. ``strategy``: the options of :func:`choose_next`. Returns the new ids per sample."""
    if prompt.dim() != 1 or len(prompt) == 0:
        raise ValueError(f"prompt must be a non-empty 1-D tensor of ids; got shape {tuple(prompt.shape)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = model(prompt.to(device).view(1, -1))
    state = model.select_state(out.state, torch.zeros(num_samples, dtype=torch.long, device=device))
    logits = out.prediction[:, -1].expand(num_samples, -1)
    if strategy.get("banned") is not None:  # one index tensor for all steps
        strategy["banned"] = torch.as_tensor(strategy["banned"], dtype=torch.long, device=device)
    chosen, done = [], torch.zeros(num_samples, dtype=torch.bool, device=device)  # chosen: blocks (k, B) of ids
    noise = GumbelNoise(logits.shape, max_new_tokens, generator, device) if not strategy.get("greedy") else None
    loop = _token_loop(model, num_samples, strategy)
    if loop is not None:  # many tokens per native call, the same numbers as the loop below
        produced = 0
        while produced < max_new_tokens and not (stop_id is not None and bool(done.all())):
            left = max_new_tokens - produced
            block = noise.take(left) if noise is not None else None
            draws = len(block) if block is not None else min(left, 64)
            greedy = strategy.get("greedy", False)  # the argmax: temperature, top-k and top-p change nothing
            ids, logits, state = loop(logits, state, draws, block, 1.0 if greedy else strategy.get("temperature", 1.0),
                                      strategy.get("banned"), stop_id, done,
                                      step_after_last=produced + draws < max_new_tokens,
                                      top_k=0 if greedy else strategy.get("top_k", 0),
                                      top_p=1.0 if greedy else strategy.get("top_p", 1.0))
            chosen.append(ids)
            produced += draws
    else:
        step = _stepper(model)
        for i in range(max_new_tokens):
            nxt = choose_next(logits, generator=generator, noise=None if noise is None else noise.next(), **strategy)
            chosen.append(nxt.view(1, -1))
            if stop_id is not None:
                done |= nxt == stop_id
                if bool(done.all()):
                    break
            if i + 1 < max_new_tokens:
                logits, state = step(nxt, state)  # one step, state carried
    rows = torch.cat(chosen).t().tolist() if chosen else [[] for _ in range(num_samples)]
    tokens = [row[: row.index(stop_id) + 1] if stop_id in row else row for row in rows]  # each row up to its stop
    model.train(was_training)
    return tokens


@torch.inference_mode()
def beam_search(model, prompt: Tensor, max_new_tokens: int, beam_width: int = 5, stop_id: int | None = None,
                banned: list[int] | None = None, length_penalty: float = 0.0) -> list[tuple[list[int], float]]:
    """The ``beam_width`` most probable continuations of ``prompt`` by beam search, best first, as
    (ids, log-probability / length^length_penalty). Beams that emit ``stop_id`` are finished."""
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1; got {beam_width}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = model(prompt.to(device).view(1, -1))
    state, logp = out.state, out.prediction[:, -1].float().log_softmax(-1)  # (1, V)
    step = _stepper(model)
    beams: list[list[int]] = [[]]
    scores = torch.zeros(1, device=device)
    finished: list[tuple[list[int], float]] = []
    for _ in range(max_new_tokens):
        if banned:
            logp[:, banned] = -torch.inf
        V = logp.shape[-1]
        total = (scores[:, None] + logp).view(-1)  # (beams · V)
        best = total.topk(min(beam_width, total.numel())).indices
        parent, token = best // V, best % V
        new_beams, keep, new_scores = [], [], []
        for p, t, s in zip(parent.tolist(), token.tolist(), total[best].tolist()):
            seq = beams[p] + [t]
            if stop_id is not None and t == stop_id:
                finished.append((seq, s / max(len(seq), 1) ** length_penalty))
            else:
                new_beams.append(seq)
                keep.append(p)
                new_scores.append(s)
        if not new_beams or len(finished) >= beam_width:
            break
        index = torch.tensor(keep, device=device)
        state = model.select_state(state, index)
        logits, state = step(torch.tensor([b[-1] for b in new_beams], device=device), state)
        beams, scores = new_beams, torch.tensor(new_scores, device=device)
        logp = logits.float().log_softmax(-1)
    finished += [(b, s / max(len(b), 1) ** length_penalty) for b, s in zip(beams, scores.tolist())]
    model.train(was_training)
    return sorted(finished, key=lambda x: -x[1])[:beam_width]
