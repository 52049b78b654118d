"""Language-model tasks: next character and next word over a text stream (seed 004's char-RNN and RNN LM)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import nn

from ..config import RunConfig, recurrent_kwargs
from ..data.streams import StreamBatches
from ..data.text import read_text
from ..data.tokenizers import EOS, char_tokenize, word_tokenize_lines
from ..data.vocab import Vocabulary
from ..models import LanguageModel
from .base import Task, load_corpus, split_point

UNKNOWN_CHAR = "\ufffd"  # stands for characters never seen in the training text


class CharLMTask(Task):
    """Next-character prediction (seed 004's char-RNN). Metrics: loss (nats/char), perplexity, bits per char,
    accuracy. The text is ``data.path`` (default: Python's documentation text); validation is its last
    ``data.val_fraction``, or the file ``data.val_path``. :class:`WordLMTask` changes only the tokens."""

    name = "char-lm"
    unknown = UNKNOWN_CHAR

    def __init__(self, config: RunConfig, vocab: Vocabulary | None = None, with_data: bool = True):
        """``with_data=False`` (a trained run's ``vocab`` given): no text is read; for generation and for scoring
        other files (``file_batches``)."""
        d = config.data
        self.config = config
        if not with_data:
            if vocab is None:
                raise ValueError("a language-model task without data needs the run's vocabulary")
            self.vocab, self.description = vocab, f"vocabulary {len(vocab)}"
            return
        text = load_corpus(d.path)
        if d.max_chars:
            text = text[: d.max_chars]
        if d.val_path:
            train_text, val_text = text, read_text(d.val_path)
        else:
            cut = split_point(len(text), d.val_fraction)
            train_text, val_text = text[:cut], text[cut:]
        train_tokens, val_tokens = self.tokenize(train_text), self.tokenize(val_text)
        self.vocab = vocab or self.make_vocab(train_tokens)  # from the training part only
        train = torch.from_numpy(self.vocab.encode(train_tokens))
        val = torch.from_numpy(self.vocab.encode(val_tokens))
        self.train = StreamBatches(train, d.batch_size, d.seq_length, seed=config.train.seed)
        self.val = StreamBatches.validation(val, d.batch_size, d.seq_length)
        unit = type(self).unit
        self.description = (f"{len(train_tokens):,} training and {len(val_tokens):,} validation {unit}s, "
                            f"vocabulary {len(self.vocab)}")

    def file_batches(self, path: str) -> StreamBatches:
        """The whole file as one stream in ``data.batch_size`` rows, every next-token target scored once."""
        ids = self.encode(read_text(path))
        if len(ids) < 2:
            raise ValueError(f"{path}: fewer than two {self.unit}s; nothing to predict")
        return StreamBatches(ids, self.config.data.batch_size, self.config.data.seq_length, shuffle_offset=False,
                             cover_all=True)

    unit = "character"

    def tokenize(self, text: str) -> list[str]:
        return char_tokenize(text)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def make_vocab(self, tokens: list[str]) -> Vocabulary:
        return Vocabulary(sorted(set(tokens)), unk=self.unknown)

    def build_model(self) -> nn.Module:
        m = self.config.model
        if m.bidirectional == "true":
            raise ValueError("model.bidirectional: a language model predicts the next token and must not see it; "
                             "use bidirectional networks for classify and tag tasks")
        model = LanguageModel(len(self.vocab), m.embedding_size, m.hidden_size, m.num_layers, cell=m.cell,
                              dropout=m.dropout, tie_weights=m.tie_weights, init_range=m.init_range,
                              embedding_dropout=m.embedding_dropout, **recurrent_kwargs(m))
        if m.embeddings:  # pretrained word vectors for the words both vocabularies share
            from ..word2vec import Embeddings, load_embeddings_

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

    def save_artifacts(self, run_dir: Path) -> list[str]:
        self.vocab.save(run_dir / "vocab.json")
        return ["vocab.json"]

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path, with_data: bool = True) -> CharLMTask:
        return cls(config, Vocabulary.load(run_dir / "vocab.json"), with_data=with_data)

    def encode(self, text: str) -> torch.Tensor:
        return torch.from_numpy(self.vocab.encode(self.tokenize(text)))

    def decode(self, ids) -> str:
        return self.detokenize([self.vocab.tokens[int(i)] for i in ids])

    def sample(self, model: nn.Module, length: int = 200, prompt: str = "\n", temperature: float = 0.8,
               seed: int = 0) -> str:
        """Sample with the state carried token to token (never re-reading the prefix); never emits the unknown
        token."""
        from ..generation import generate

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
