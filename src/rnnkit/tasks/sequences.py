"""Tasks over datasets of independent examples: ``classify`` (many-to-one: a label per sequence) and ``tag``
(many-to-many aligned: a label per step), on numeric sequences or tokens (seeds 000/004's input/output patterns).

Both read a file of examples (``rnnkit.data.examples``), hold out a validation part, encode it with what the
training part alone defines (label set, vocabulary, feature scaling: saved in the run directory, so evaluation and
prediction read nothing else) and train on length-bucketed padded batches.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import RunConfig, recurrent_kwargs
from ..data import examples as readers
from ..data.batches import ExampleBatches
from ..data.tokenizers import whitespace_tokenize, word_tokenize
from ..data.vocab import Vocabulary
from ..io import write_json_atomic
from ..metrics import confusion_matrix, f1_from_counts, is_bio, macro_f1, span_counts
from ..models.classifier import SequenceClassifier, SequenceTagger
from .base import Task, hold_out

NUMERIC_FORMATS = ("ts", "csv", "jsonl")
FORMATS = (*NUMERIC_FORMATS, "text", "sst", "conll", "segment")
PAD, UNK = "<pad>", "<unk>"


def _sorted_labels(labels) -> list[str]:
    """Numeric labels in numeric order ("2" before "10"), others alphabetically."""
    labels = set(labels)
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the run's {what} ({e})") from None


class ExampleTask(Task):
    """Shared by :class:`ClassifyTask` and :class:`TagTask`: reading, splitting, encoding, artifacts, batches.

    ``ExampleTask(config)`` reads ``data.path`` (and ``data.val_path``); ``from_run(config, run_dir,
    with_data=False)`` restores the encoders from a run directory without reading any data.
    """

    per_step = False  # one target per step (tag) or per sequence (classify)

    def __init__(self, config: RunConfig, run_dir: Path | None = None, with_data: bool = True):
        self.config = config
        d = config.data
        self.format = self._detect_format(d.path) if d.format == "auto" else d.format
        self.numeric = self.format in NUMERIC_FORMATS
        self.vocab, self.scaler, self.labels = None, None, None
        if run_dir is not None:
            self._load_artifacts(Path(run_dir))
        if not with_data:
            self.description = f"{len(self.labels)} labels"
            return
        if not d.path:
            raise ValueError(f"data.task={self.name} needs data.path: a file of examples (see data.format)")
        train = self.read(d.path, training=True)
        if d.val_path:
            val = self.read(d.val_path)
        else:  # a random part of the training file, drawn with the seed
            train, val = hold_out(train, d.val_fraction, config.train.seed, d.path)
        if self.labels is None:
            self._fit_encoders(train)
        self.train = self.batches(train, d.batch_size, seed=config.train.seed)
        self.val = self.batches(val, min(d.batch_size, len(val)))
        kind = f"{self.num_features} features" if self.numeric else f"vocabulary {len(self.vocab)}"
        self.description = (f"{len(train):,} training and {len(val):,} validation examples ({self.format}), "
                            f"{len(self.labels)} {'tags' if self.per_step else 'classes'}, {kind}")

    # ---- reading and encoding ----------------------------------------------------------------------------
    def _detect_format(self, path: str) -> str:
        suffix = Path(path).suffix.lower()
        by_suffix = {".ts": "ts", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}
        if suffix in by_suffix:
            return by_suffix[suffix]
        first = ""
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                first = next((line for line in f if line.strip()), "")
        except OSError:
            pass  # the reader reports a missing file
        if first.lstrip().startswith("("):
            return "sst"
        return "conll" if self.per_step else "text"

    def _tokenize(self, text: str) -> list[str]:
        d = self.config.data
        return whitespace_tokenize(text, d.lower) if d.tokenizer == "whitespace" else word_tokenize(text, d.lower)

    def read(self, path: str, training: bool = False) -> list[readers.LabeledSequence]:
        d = self.config.data
        fmt = self.format
        allowed = ("segment", "conll") if self.per_step else ("ts", "csv", "jsonl", "text", "sst")
        if fmt not in allowed:
            raise ValueError(f"data.format={fmt} does not fit data.task={self.name}; expected one of {list(allowed)}")
        if fmt == "ts":
            return readers.read_ts(path)
        if fmt == "csv":
            return readers.read_csv_sequences(path)
        if fmt == "jsonl":
            return readers.read_jsonl_sequences(path)
        if fmt == "text":
            return readers.read_labeled_text(path, self._tokenize)
        if fmt == "sst":
            return readers.read_sst(path, d.sst_labels, phrases=d.phrases and training, lower=d.lower)
        if fmt == "conll":
            out = readers.read_conll(path)
            return out if not d.lower else [readers.LabeledSequence([t.lower() for t in ex.steps], ex.label)
                                            for ex in out]
        return readers.read_segmentation(path, d.boundary, whitespace=d.tokenizer == "whitespace")

    def _fit_encoders(self, train: list[readers.LabeledSequence]) -> None:
        d = self.config.data
        labels = [t for ex in train for t in ex.label] if self.per_step else [ex.label for ex in train]
        self.labels = _sorted_labels(labels)
        if len(self.labels) < 2 and not self.per_step:
            raise ValueError(f"{d.path}: the training examples have only one class ({self.labels}); need two or more")
        if self.numeric:
            steps = np.concatenate([ex.steps for ex in train])
            std = steps.std(0)
            self.scaler = {"mean": steps.mean(0).tolist() if d.standardize else [0.0] * steps.shape[1],
                           "std": np.where(std > 0, std, 1.0).tolist() if d.standardize else [1.0] * steps.shape[1]}
        else:
            self.vocab = Vocabulary.from_counts((t for ex in train for t in ex.steps), max_size=d.max_vocab or None,
                                                min_count=d.min_count, unk=UNK, specials=(PAD,))

    @property
    def num_features(self) -> int:
        return len(self.scaler["mean"])

    def encode(self, examples: list[readers.LabeledSequence]) -> tuple[list[torch.Tensor], list]:
        """Inputs as tensors (ids, or scaled float32 features) and targets as label ids."""
        index = {label: i for i, label in enumerate(self.labels)}
        if self.numeric:
            mean, std = np.asarray(self.scaler["mean"]), np.asarray(self.scaler["std"])
            if examples[0].steps.shape[1] != len(mean):
                raise ValueError(f"the examples have {examples[0].steps.shape[1]} features; this run was trained "
                                 f"on {len(mean)}")
            inputs = [torch.from_numpy((ex.steps - mean) / std).float() for ex in examples]
        else:
            inputs = [torch.from_numpy(self.vocab.encode(ex.steps)) for ex in examples]

        def ids(labels):
            try:
                return [index[label] for label in labels]
            except KeyError as e:
                raise ValueError(f"label {e.args[0]!r} was not seen in training; known labels: {self.labels}") from None

        if self.per_step:
            return inputs, [torch.tensor(ids(ex.label)) for ex in examples]
        return inputs, ids([ex.label for ex in examples])

    def batches(self, examples, batch_size: int, seed: int = 0) -> ExampleBatches:
        inputs, targets = self.encode(examples)
        return ExampleBatches(inputs, targets, batch_size, seed=seed, pad_id=0)

    def file_batches(self, path: str) -> ExampleBatches:
        examples = self.read(path)
        return self.batches(examples, min(self.config.data.batch_size, len(examples)))

    # ---- artifacts -----------------------------------------------------------------------------------------
    def save_artifacts(self, run_dir: Path) -> list[str]:
        write_json_atomic(run_dir / "labels.json", {"labels": self.labels, "format": self.format})
        if self.numeric:
            write_json_atomic(run_dir / "scaler.json", self.scaler)
            return ["labels.json", "scaler.json"]
        self.vocab.save(run_dir / "vocab.json")
        return ["labels.json", "vocab.json"]

    def _load_artifacts(self, run_dir: Path) -> None:
        saved = _read_json(run_dir / "labels.json", "label set")
        if not isinstance(saved.get("labels"), list) or saved.get("format") not in FORMATS:
            raise ValueError(f"{run_dir}/labels.json: expected {{\"labels\": [...], \"format\": ...}}")
        self.labels = saved["labels"]
        if self.config.data.format == "auto":
            self.format = saved["format"]
            self.numeric = self.format in NUMERIC_FORMATS
        if self.numeric:
            self.scaler = _read_json(run_dir / "scaler.json", "feature scaling")
        else:
            self.vocab = Vocabulary.load(run_dir / "vocab.json")

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path, with_data: bool = True) -> ExampleTask:
        return cls(config, run_dir, with_data=with_data)

    # ---- model ---------------------------------------------------------------------------------------------
    def encoder_kwargs(self) -> dict:
        m = self.config.model
        bidirectional = m.bidirectional == "true" or (m.bidirectional == "auto" and self.per_step)
        kwargs = dict(hidden_size=m.hidden_size, num_layers=m.num_layers, cell=m.cell, bidirectional=bidirectional,
                      dropout=m.dropout, **recurrent_kwargs(m))
        if self.numeric:
            return {**kwargs, "input_size": self.num_features, "input_noise": m.input_noise}
        if m.input_noise:
            raise ValueError("model.input_noise applies to numeric sequences; these examples are tokens")
        return {**kwargs, "vocab_size": len(self.vocab), "embedding_size": m.embedding_size}

    def _init_embeddings(self, model: nn.Module) -> nn.Module:
        m = self.config.model
        if m.embeddings:
            if self.numeric:
                raise ValueError("model.embeddings initialises token embeddings; these examples are numeric")
            from ..word2vec import Embeddings, load_embeddings_

            shared = load_embeddings_(model.encoder.embedding, Embeddings.load(m.embeddings), self.vocab)
            logging.getLogger("rnnkit.train").info("embedding initialised from %s for %d of %d tokens",
                                                   m.embeddings, shared, len(self.vocab))
        return model

    def decode_inputs(self, batch, row: int) -> list[str] | None:
        if self.numeric:
            return None
        n = int(batch.lengths[row]) if batch.lengths is not None else batch.inputs.shape[1]
        return [self.vocab.tokens[int(i)] for i in batch.inputs[row, :n]]


class _ClassCounts:
    """A confusion matrix accumulated over evaluation batches (classification), with accuracy and macro-F1."""

    def __init__(self, num_classes: int):
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)

    def add(self, prediction, batch, model=None) -> None:
        self.confusion += confusion_matrix(batch.targets.cpu().numpy(), prediction.argmax(-1).cpu().numpy(),
                                           len(self.confusion))

    def metrics(self) -> dict:
        c = self.confusion
        return {"accuracy": float(np.trace(c) / max(c.sum(), 1)), "macro_f1": macro_f1(c)}


class ClassifyTask(ExampleTask):
    """Sequence → label (many-to-one). Metrics: loss (cross-entropy), accuracy, macro-F1; the confusion matrix is
    drawn as a PNG after training and by ``rnnkit evaluate``."""

    name = "classify"

    def build_model(self) -> nn.Module:
        model = SequenceClassifier(len(self.labels), pooling=self.config.model.pooling, **self.encoder_kwargs())
        return self._init_embeddings(model)

    def collector(self) -> _ClassCounts:
        return _ClassCounts(len(self.labels))

    @torch.no_grad()
    def predict(self, model: nn.Module, batches: ExampleBatches):
        """One dict per example in file order: the predicted label, every label's probability, the true label
        when the file has one, and the attention weights with attention pooling."""
        rows = {}
        for batch in batches.sequential():
            summary, alpha = model.encode(batch.inputs, batch.lengths)
            probs = model.head(summary).softmax(-1)
            for r, i in enumerate(batch.index.tolist()):
                row = {"index": i, "label": self.labels[int(probs[r].argmax())],
                       "probabilities": {lab: round(float(p), 6) for lab, p in zip(self.labels, probs[r])}}
                if batch.targets is not None:
                    row["true"] = self.labels[int(batch.targets[r])]
                if alpha is not None:
                    n = int(batch.lengths[r]) if batch.lengths is not None else alpha.shape[1]
                    row["attention"] = [round(float(a), 5) for a in alpha[r, :n]]
                rows[i] = row
        return [rows[i] for i in sorted(rows)]


class _TagCounts:
    """Token accuracy, per-tag confusion and (for BIO tags) chunk counts over evaluation batches."""

    def __init__(self, labels: list[str], boundary: bool):
        self.labels, self.boundary = labels, boundary
        self.bio = is_bio(labels)
        self.confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
        self.spans = np.zeros(3, dtype=np.int64)  # correct, predicted, actual

    def add(self, prediction, batch, model=None) -> None:
        predicted, actual = prediction.argmax(-1).cpu(), batch.targets.cpu()
        real = actual != -100
        self.confusion += confusion_matrix(actual[real].numpy(), predicted[real].numpy(), len(self.labels))
        if self.bio:
            for r in range(len(actual)):
                keep = real[r]
                a = [self.labels[i] for i in actual[r][keep].tolist()]
                p = [self.labels[i] for i in predicted[r][keep].tolist()]
                self.spans += span_counts(a, p)

    def metrics(self) -> dict:
        c = self.confusion
        out = {"accuracy": float(np.trace(c) / max(c.sum(), 1))}
        if self.bio:
            out["span_f1"] = f1_from_counts(*self.spans.tolist())
        if self.boundary and readers.BOUNDARY in self.labels:
            b = self.labels.index(readers.BOUNDARY)
            out["boundary_f1"] = f1_from_counts(int(c[b, b]), int(c[:, b].sum()), int(c[b].sum()))
        return out


class TagTask(ExampleTask):
    """A label per step (many-to-many aligned), bidirectional by default: CoNLL token/tag files, or text with
    boundary markers to restore (``data.format segment``). Metrics: loss, token accuracy, span F1 for BIO tags,
    boundary F1 for segmentation."""

    name = "tag"
    per_step = True

    def build_model(self) -> nn.Module:
        return self._init_embeddings(SequenceTagger(len(self.labels), **self.encoder_kwargs()))

    def collector(self) -> _TagCounts:
        return _TagCounts(self.labels, boundary=self.format == "segment")

    @torch.no_grad()
    def predict(self, model: nn.Module, batches: ExampleBatches):
        """One dict per sequence in file order: its tokens and predicted tags (and the true tags when given)."""
        rows = {}
        for batch in batches.sequential():
            tags = model(batch.inputs, None, None, **batch.model_inputs()).prediction.argmax(-1)
            for r, i in enumerate(batch.index.tolist()):
                n = int(batch.lengths[r]) if batch.lengths is not None else tags.shape[1]
                row = {"index": i, "tokens": self.decode_inputs(batch, r),
                       "tags": [self.labels[int(t)] for t in tags[r, :n]]}
                if batch.targets is not None:
                    row["true"] = [self.labels[int(t)] for t in batch.targets[r, :n]]
                rows[i] = row
        return [rows[i] for i in sorted(rows)]
