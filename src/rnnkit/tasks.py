"""Tasks tie a config to data, a model, metrics and the files a run directory needs to be reloaded.

Each task builds its training and validation :class:`~rnnkit.data.streams.StreamBatches` and its model,
turns a mean loss into the metrics users read, and saves what evaluation needs besides the weights (the
vocabulary, the scaler). ``TASKS`` maps ``data.task`` names to task classes.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import RunConfig
from .data.datasets import load_series
from .data.series import read_csv_column
from .data.streams import StreamBatches
from .data.text import default_text, read_text
from .data.tokenizers import EOS, char_tokenize, word_tokenize_lines
from .data.vocab import Vocabulary
from .io import write_json_atomic
from .models import Forecaster, LanguageModel

UNKNOWN_CHAR = "\ufffd"  # stands for characters never seen in the training text


def load_corpus(path: str) -> str:
    """``""``: Python's documentation text; ``"tinyshakespeare"``: downloaded once into the cache and checked by
    SHA-256 (``rnnkit.data.download``); anything else: a UTF-8 text file."""
    if not path:
        return default_text()
    if path == "tinyshakespeare":
        from .data.download import tinyshakespeare

        return tinyshakespeare()
    return read_text(path)


def _split(n: int, val_fraction: float) -> int:
    return n - max(1, int(n * val_fraction))


class Task:
    """What the trainer needs from a task. Subclasses set ``train`` / ``val`` streams and ``description`` and
    implement ``build_model``; the rest has defaults: metrics are the mean loss plus the means of
    ``batch_terms``, no extra model arguments, nothing to save besides the weights, no samples."""

    description = ""

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def metrics(self, loss: float, means: dict | None = None) -> dict:
        return {"loss": loss, **(means or {})}

    def batch_terms(self, prediction, targets) -> dict:
        """Per-batch sums that ``metrics`` receives as means over the evaluated targets."""
        return {}

    def forward_kwargs(self, progress: float) -> dict:
        """Extra model arguments for the update at ``progress`` ∈ [0, 1] of training."""
        return {}

    def save_artifacts(self, run_dir: Path) -> None:
        """Files besides the weights that a run directory needs to be reloaded."""

    def sample(self, model: nn.Module, **kwargs) -> str:
        """A short text showing what the model does now (logged at evaluations)."""
        return ""


class CharLMTask(Task):
    """Next-character prediction (seed 004's char-RNN). Metrics: loss (nats/char), perplexity, bits per char,
    accuracy. The text is ``data.path`` (default: Python's documentation text); validation is its last
    ``data.val_fraction``, or the file ``data.val_path``. :class:`WordLMTask` changes only the tokens."""

    name = "char-lm"
    unknown = UNKNOWN_CHAR

    def __init__(self, config: RunConfig, vocab: Vocabulary | None = None):
        d = config.data
        text = load_corpus(d.path)
        if d.max_chars:
            text = text[: d.max_chars]
        if d.val_path:
            train_text, val_text = text, read_text(d.val_path)
        else:
            cut = _split(len(text), d.val_fraction)
            train_text, val_text = text[:cut], text[cut:]
        self.config = config
        train_tokens, val_tokens = self.tokenize(train_text), self.tokenize(val_text)
        self.vocab = vocab or self.make_vocab(train_tokens)  # from the training part only
        train = torch.from_numpy(self.vocab.encode(train_tokens))
        val = torch.from_numpy(self.vocab.encode(val_tokens))
        self.train = StreamBatches(train, d.batch_size, d.seq_length, seed=config.train.seed)
        self.val = StreamBatches(val, min(d.batch_size, max(1, (len(val) - 1) // d.seq_length)), d.seq_length,
                                 shuffle_offset=False)
        unit = type(self).unit
        self.description = (f"{len(train_tokens):,} training and {len(val_tokens):,} validation {unit}s, "
                            f"vocabulary {len(self.vocab)}")

    unit = "character"

    def tokenize(self, text: str) -> list[str]:
        return char_tokenize(text)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def make_vocab(self, tokens: list[str]) -> Vocabulary:
        return Vocabulary(sorted(set(tokens)), unk=self.unknown)

    def build_model(self) -> nn.Module:
        m = self.config.model
        model = LanguageModel(len(self.vocab), m.embedding_size, m.hidden_size, m.num_layers, cell=m.cell,
                              dropout=m.dropout, tie_weights=m.tie_weights, init_range=m.init_range)
        if m.embeddings:  # pretrained word vectors for the words both vocabularies share
            from .word2vec import Embeddings, load_embeddings_

            shared = load_embeddings_(model.embedding, Embeddings.load(m.embeddings), self.vocab)
            logging.getLogger("rnnkit.train").info("embedding initialised from %s for %d of %d tokens",
                                                   m.embeddings, shared, len(self.vocab))
        return model

    @staticmethod
    def batch_terms(prediction, targets) -> dict:
        """Per-batch sums that :meth:`metrics` turns into means: correct next-token guesses."""
        return {"accuracy": (prediction.argmax(-1) == targets).sum().item()}

    @staticmethod
    def metrics(loss: float, means: dict | None = None) -> dict:
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bpc": loss / math.log(2), **(means or {})}

    def save_artifacts(self, run_dir: Path) -> None:
        self.vocab.save(run_dir / "vocab.json")

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path) -> CharLMTask:
        return cls(config, Vocabulary.load(run_dir / "vocab.json"))

    def encode(self, text: str) -> torch.Tensor:
        return torch.from_numpy(self.vocab.encode(self.tokenize(text)))

    def decode(self, ids) -> str:
        return self.detokenize([self.vocab.tokens[int(i)] for i in ids])

    def sample(self, model: nn.Module, length: int = 200, prompt: str = "\n", temperature: float = 0.8,
               seed: int = 0) -> str:
        """Sample with the state carried token to token (never re-reading the prefix); never emits the unknown
        token."""
        from .generation import generate

        ids = self.encode(prompt)
        if len(ids) == 0:
            ids = torch.tensor([self.vocab.index[self.start_token()]])
        (tokens,) = generate(model, ids, length, temperature=temperature, banned=self.banned_ids(),
                             generator=torch.Generator().manual_seed(seed))
        return self.decode(tokens)

    def start_token(self) -> str:
        return "\n" if "\n" in self.vocab.index else self.vocab.tokens[-1]

    def banned_ids(self) -> list[int]:
        return [self.vocab.index[self.unknown]]


class WordLMTask(CharLMTask):
    """Next-word prediction: words and punctuation as tokens (``data.lower`` to lower-case), ``<eos>`` closing each
    line (Penn Treebank convention), a vocabulary of the words seen ``data.min_count`` times in training (at most
    ``data.max_vocab``), the rest ``<unk>``. Metrics: loss (nats/word), perplexity, accuracy."""

    name = "word-lm"
    unit = "word"
    unknown = "<unk>"

    def tokenize(self, text: str) -> list[str]:
        d = self.config.data
        return word_tokenize_lines(text, lower=d.lower, whitespace=d.tokenizer == "whitespace")

    def detokenize(self, tokens: list[str]) -> str:
        return " ".join(tokens).replace(f" {EOS} ", "\n").replace(EOS, "\n")

    def make_vocab(self, tokens: list[str]) -> Vocabulary:
        d = self.config.data
        return Vocabulary.from_counts(tokens, max_size=d.max_vocab or None, min_count=d.min_count,
                                      unk=self.unknown, specials=(EOS,))

    def start_token(self) -> str:
        return EOS

    @staticmethod
    def metrics(loss: float, means: dict | None = None) -> dict:
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), **(means or {})}


class ForecastTask(Task):
    """Next-value prediction of a series (a CSV column, or generated Mackey-Glass τ = 17). The series is scaled
    with the training part's mean and standard deviation. Metrics: loss (MSE, scaled), rmse and mae in the
    series' own units."""

    name = "forecast"

    def __init__(self, config: RunConfig, scaler: dict | None = None, series: np.ndarray | None = None):
        d = config.data
        if series is not None:
            self.column = d.column or "series"
        elif d.path:
            series, self.column = read_csv_column(d.path, d.column)
        else:
            series, self.column = load_series(d.dataset), d.dataset
        cut = _split(len(series), d.val_fraction)
        self.scaler = scaler or {"mean": float(series[:cut].mean()), "std": float(series[:cut].std() or 1.0)}
        scaled = torch.from_numpy((series - self.scaler["mean"]) / self.scaler["std"]).float().unsqueeze(-1)
        self.config = config
        self.train = StreamBatches(scaled[:cut], d.batch_size, d.seq_length, seed=config.train.seed)
        val = scaled[cut - 1:]
        self.val = StreamBatches(val, min(d.batch_size, max(1, (len(val) - 1) // d.seq_length)), d.seq_length,
                                 shuffle_offset=False)
        self.description = f"series {self.column!r}: {cut:,} training and {len(series) - cut:,} validation steps"

    def build_model(self) -> nn.Module:
        m = self.config.model
        return Forecaster(1, m.hidden_size, m.num_layers, cell=m.cell, dropout=m.dropout)

    def forward_kwargs(self, progress: float) -> dict:
        """Scheduled sampling: the teacher-forcing probability, annealed linearly over training."""
        t = self.config.train
        return {"teacher_forcing": t.teacher_forcing + (t.teacher_forcing_final - t.teacher_forcing) * progress}

    def batch_terms(self, prediction, targets) -> dict:
        """Per-batch sums that :meth:`metrics` turns into means: absolute errors in the series' units."""
        return {"mae": (prediction - targets).abs().sum().item() * self.scaler["std"]}

    def metrics(self, loss: float, means: dict | None = None) -> dict:
        rmse = math.sqrt(max(loss, 0.0)) * self.scaler["std"]
        return {"loss": loss, "rmse": rmse, **(means or {})}

    def save_artifacts(self, run_dir: Path) -> None:
        write_json_atomic(run_dir / "scaler.json", self.scaler)

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path) -> ForecastTask:
        try:
            scaler = json.loads((run_dir / "scaler.json").read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{run_dir}: cannot read scaler.json ({e})") from None
        return cls(config, scaler)

    def sample(self, model, **kwargs) -> str:
        """The free-running forecast of the first validation steps, as a one-line report."""
        horizon = min(10, len(self.val.data) // 2)
        history, actual = self.val.data[:-horizon], self.val.data[-horizon:]
        forecast = model.rollout(history[None].to(next(model.parameters()).device), horizon).cpu()[0]
        err = (forecast - actual).squeeze(-1).numpy() * self.scaler["std"]
        return f"{horizon}-step free-running forecast at the end of validation: RMSE {np.sqrt((err ** 2).mean()):.4f}"


TASKS = {"char-lm": CharLMTask, "word-lm": WordLMTask, "forecast": ForecastTask}
