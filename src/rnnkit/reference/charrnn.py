"""A character-level language model trained from scratch in NumPy: the path min-char-rnn made famous,
on the reference models and their hand-written BPTT.

Training (seed 004, "Char-RNN"; Karpathy's min-char-rnn): the text is read in chunks of ``seq_length``
characters; the hidden state is carried from chunk to chunk (truncated BPTT); gradients are clipped
element-wise to [-5, 5] (or by norm); parameters follow Adagrad. Sampling feeds each sampled character
back in with the state carried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..data.vocab import Vocabulary
from .base import ReferenceRNN, clip_by_norm, clip_elementwise, random_step_if_above, softmax
from .models import GRU, LSTM, VanillaRNN

log = logging.getLogger("rnnkit.reference")

MODELS = {"rnn": VanillaRNN, "lstm": LSTM, "gru": GRU}


def sample(model: ReferenceRNN, vocab: Vocabulary, prime: str, length: int, temperature: float = 1.0,
           rng: np.random.Generator | None = None, state: tuple | None = None) -> str:
    """Feed ``prime`` (may be empty when ``state`` is given), then draw ``length`` characters from
    softmax(o / temperature), carrying the state."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    rng = rng or np.random.default_rng()
    V, c = model.params["V"], model.params["c"]
    if state is None:
        if not prime:
            raise ValueError("give a non-empty prime or a state to start sampling from")
        state = model.initial_state()
    for i in vocab.encode(prime):
        state, _ = model._step(i, state)
    out = []
    for _ in range(length):
        p = softmax((V @ state[0] + c) / temperature)
        nxt = int(rng.choice(len(p), p=p))
        out.append(nxt)
        state, _ = model._step(nxt, state)
    return vocab.decode(out)


@dataclass
class CharRNNRun:
    """What :func:`train_char_rnn` returns."""

    model: ReferenceRNN
    vocab: Vocabulary
    losses: list[tuple[int, float]] = field(default_factory=list)  # (iteration, mean nats/char since last log)
    samples: list[tuple[int, str]] = field(default_factory=list)  # (iteration, text)


def build_char_model(text: str, model: str = "rnn", hidden_size: int = 100,
                     seed: int = 0) -> tuple[ReferenceRNN, Vocabulary]:
    """An untrained NumPy char model for ``text`` and its vocabulary (the start of :func:`train_char_rnn`)."""
    if model not in MODELS:
        raise ValueError(f"unknown reference model {model!r}; expected one of {sorted(MODELS)}")
    vocab = Vocabulary.from_text(text)
    return MODELS[model](len(vocab), hidden_size, len(vocab), output="softmax", seed=seed), vocab


def train_char_rnn(text: str, model: str = "rnn", hidden_size: int = 100, seq_length: int = 25,
                   learning_rate: float = 0.1, iterations: int = 2000, clip: float = 5.0, clip_mode: str = "value",
                   sample_every: int = 500, sample_length: int = 200, log_every: int = 100,
                   seed: int = 0) -> CharRNNRun:
    """Train a NumPy char model on ``text`` with truncated BPTT over ``seq_length`` chunks and Adagrad.

    ``clip_mode`` (seed 003's three variants): ``"value"`` clips each entry to [-clip, clip] (min-char-rnn),
    ``"norm"`` rescales the whole gradient to norm ``clip``, ``"random"`` takes a random step of norm ``clip``
    when the gradient's norm exceeds it.
    """
    rng = np.random.default_rng(seed)
    clippers = {"value": lambda g: clip_elementwise(g, clip), "norm": lambda g: clip_by_norm(g, clip)[0],
                "random": lambda g: random_step_if_above(g, clip, rng)[0]}
    if clip_mode not in clippers:
        raise ValueError(f"clip_mode must be one of {sorted(clippers)}; got {clip_mode!r}")
    if len(text) < seq_length + 1:
        raise ValueError(f"the text has {len(text)} characters; at least seq_length + 1 = {seq_length + 1} needed")
    net, vocab = build_char_model(text, model, hidden_size, seed)
    data = vocab.encode(text)
    memory = {k: np.zeros_like(v) for k, v in net.params.items()}  # Adagrad accumulators
    run = CharRNNRun(net, vocab)
    window: list[float] = []
    position, state = 0, net.initial_state()
    for it in range(1, iterations + 1):
        if position + seq_length + 1 > len(data):
            position, state = 0, net.initial_state()  # back to the start of the text
        x = data[position:position + seq_length]
        y = data[position + 1:position + seq_length + 1]
        loss, grads, state = net.backward(x, y, state=state)
        grads = clippers[clip_mode](grads)
        for k, g in grads.items():
            memory[k] += g * g
            net.params[k] -= learning_rate * g / np.sqrt(memory[k] + 1e-8)
        window.append(loss / seq_length)
        position += seq_length
        if it % log_every == 0 or it == iterations:
            run.losses.append((it, float(np.mean(window))))
            window.clear()
            log.info("iteration %d: loss %.3f nats/char (uniform guess: %.3f)", it, run.losses[-1][1],
                     np.log(len(vocab)))
        if sample_every and (it % sample_every == 0 or it == iterations):
            # from the carried state, as min-char-rnn does: the net is trained on carried states only
            text_sample = sample(net, vocab, "", sample_length, rng=rng, state=state)
            run.samples.append((it, text_sample))
            log.info("---- sample at iteration %d ----\n%s\n----", it, text_sample)
    return run
