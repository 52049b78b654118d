"""``seq2seq``: an output sequence of another length for each input sequence (seeds 002/003's encoder-decoder;
translation-style tasks), on parallel text or a generated task.

Data: ``source<TAB>target`` lines or SCAN's ``IN: ... OUT: ...`` lines (``rnnkit.data.examples.read_parallel``),
or a generated task named by ``data.path`` (``reverse``, ``sort``, ``addition``, ``dates``:
``rnnkit.data.synthetic``). Separate source and target vocabularies, the tokenizer and the longest target are
saved in the run, so ``rnnkit translate`` / ``evaluate`` / ``predict`` read nothing else. Metrics: loss, token
accuracy (teacher-forced), and from greedy decoding exact match and corpus BLEU (sacrebleu, on the tokens as
they are: ``tokenize="none"``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ..config import RunConfig, cell_kwargs
from ..data.batches import IGNORE_INDEX, ExampleBatches, pad_sequences
from ..data.examples import read_parallel
from ..data.synthetic import SYNTHETIC, synthetic_pairs
from ..data.tokenizers import char_tokenize, whitespace_tokenize, word_tokenize
from ..data.vocab import Vocabulary
from ..io import write_json_atomic
from ..models.seq2seq import Seq2Seq
from .base import Task, hold_out, teacher_forcing_at
from .sequences import _read_json

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
log = logging.getLogger("rnnkit")


def corpus_bleu(hypotheses: list[list[str]], references: list[list[str]]) -> float:
    """Corpus BLEU-4 (Papineni et al. 2002) in [0, 100] of token lists, by sacrebleu on the tokens as given."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu([" ".join(h) for h in hypotheses], [[" ".join(r) for r in references]],
                                       tokenize="none").score)


class _DecodedScores:
    """Greedy decoding of every evaluated source: exact-sequence match and corpus BLEU against the targets."""

    def __init__(self, task: Seq2SeqTask):
        self.task, self.hypotheses, self.references = task, [], []

    def add(self, prediction, batch, model) -> None:
        from ..generation.seq2seq import greedy_decode

        hyps = greedy_decode(model, batch.inputs, batch.lengths, self.task.max_length)
        for r, h in enumerate(hyps):
            true = [int(t) for t in batch.targets[r] if int(t) != IGNORE_INDEX][:-1]  # without <eos>
            self.hypotheses.append([self.task.target_vocab.tokens[t] for t in h.tokens])
            self.references.append([self.task.target_vocab.tokens[t] for t in true])

    def metrics(self) -> dict:
        exact = sum(h == r for h, r in zip(self.hypotheses, self.references)) / max(len(self.references), 1)
        return {"exact_match": exact, "bleu": corpus_bleu(self.hypotheses, self.references)}


class Seq2SeqTask(Task):
    """Sequence → sequence with an attentional encoder-decoder (:class:`rnnkit.models.Seq2Seq`), trained with
    teacher forcing or scheduled sampling (``train.teacher_forcing`` → ``train.teacher_forcing_final``)."""

    name = "seq2seq"

    def __init__(self, config: RunConfig, run_dir: Path | None = None, with_data: bool = True):
        self.config = config
        d = config.data
        self.source_vocab = self.target_vocab = None
        self.tokenizer = self.default_tokenizer()
        self.max_target_length = 0
        if run_dir is not None:
            self._load_artifacts(Path(run_dir))
        if not with_data:
            self.description = self.describe_sources()
            return
        if not d.path:
            raise ValueError(self.missing_path)
        train = self.read(d.path)
        if d.val_path:
            val = self.read(d.val_path)
        else:
            train, val = hold_out(train, d.val_fraction, config.train.seed, d.path)
        if self.target_vocab is None:
            self._fit_vocabularies(train)
        self.train = self.batches(train, d.batch_size, seed=config.train.seed)
        self.val = self.batches(val, min(d.batch_size, len(val)))
        self.description = f"{len(train):,} training and {len(val):,} validation pairs, {self.describe_sources()}"

    missing_path = ("data.task=seq2seq needs data.path: a file of source<TAB>target or SCAN 'IN: ... OUT: ...' lines, "
                    f"or a generated task ({', '.join(SYNTHETIC)})")

    def describe_sources(self) -> str:
        return (f"source vocabulary {len(self.source_vocab)}, target vocabulary {len(self.target_vocab)} "
                f"({self.tokenizer} tokens)")

    # ---- reading and encoding ----------------------------------------------------------------------------
    @staticmethod
    def _synthetic(path: str) -> bool:
        return path in SYNTHETIC and not Path(path).exists()

    def default_tokenizer(self) -> str:
        """data.tokenizer; a generated task's own (characters for addition and dates)."""
        path = self.config.data.path
        return SYNTHETIC[path].tokenizer if path in SYNTHETIC and self._synthetic(path) else self.config.data.tokenizer

    def tokenize(self, text: str) -> list[str]:
        lower = self.config.data.lower
        if self.tokenizer == "chars":
            return char_tokenize(text.lower() if lower else text)
        return whitespace_tokenize(text, lower) if self.tokenizer == "whitespace" else word_tokenize(text, lower)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens) if self.tokenizer == "chars" else " ".join(tokens)

    def read(self, path: str) -> list[tuple[list[str], list[str]]]:
        """Tokenized (source, target) pairs of a file, or of the generated task ``path`` (drawn with train.seed)."""
        pairs = (synthetic_pairs(path, self.config.data.num_examples, self.config.train.seed)
                 if self._synthetic(path) else read_parallel(path))
        return [(self.tokenize(s), self.tokenize(t)) for s, t in pairs]

    def _fit_vocabularies(self, train) -> None:
        d = self.config.data
        self.source_vocab = Vocabulary.from_counts((t for s, _ in train for t in s), max_size=d.max_vocab or None,
                                                   min_count=d.min_count, unk=UNK, specials=(PAD,))
        self._fit_targets(train)

    def _fit_targets(self, train) -> None:
        d = self.config.data
        self.target_vocab = Vocabulary.from_counts((t for _, y in train for t in y), max_size=d.max_vocab or None,
                                                   min_count=d.min_count, unk=UNK, specials=(PAD, BOS, EOS))
        self.max_target_length = max(len(y) for _, y in train)

    @property
    def max_length(self) -> int:
        """Decoding stops after this many steps: twice the longest training target, plus 10."""
        return 2 * self.max_target_length + 10

    def encode_source(self, tokens: list[str]) -> torch.Tensor:
        return torch.from_numpy(self.source_vocab.encode(tokens))

    def batches(self, pairs, batch_size: int, seed: int = 0) -> ExampleBatches:
        eos = self.target_vocab.index[EOS]
        inputs = [self.encode_source(s) for s, _ in pairs]
        targets = [torch.cat([torch.from_numpy(self.target_vocab.encode(y)), torch.tensor([eos])]) for _, y in pairs]
        return ExampleBatches(inputs, targets, batch_size, seed=seed, pad_id=0)

    def file_batches(self, path: str) -> ExampleBatches:
        pairs = self.read(path)
        return self.batches(pairs, min(self.config.data.batch_size, len(pairs)))

    # ---- model, metrics, samples ---------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        m = self.config.model
        tv = self.target_vocab.index
        return Seq2Seq(len(self.source_vocab), len(self.target_vocab), embedding_size=m.embedding_size,
                       hidden_size=m.hidden_size, num_layers=m.num_layers, cell=m.cell,
                       bidirectional=m.bidirectional != "false", attention=m.attention, context=m.context,
                       input_feeding=m.input_feeding, dropout=m.dropout, pad_id=tv[PAD], bos_id=tv[BOS],
                       eos_id=tv[EOS], **cell_kwargs(m))

    def forward_kwargs(self, progress: float, step: int = 0) -> dict:
        return {"teacher_forcing": teacher_forcing_at(self.config.train, progress)}

    def batch_terms(self, prediction, targets) -> dict:
        real = targets != IGNORE_INDEX
        return {"token_accuracy": float(((prediction.argmax(-1) == targets) & real).sum())}

    def collector(self) -> _DecodedScores:
        return _DecodedScores(self)

    def sample(self, model: nn.Module, seed: int = 0, **kwargs) -> str:
        """The first validation source and its greedy translation."""
        from ..generation.seq2seq import greedy_decode

        batch = next(iter(self.val.sequential(1)))
        device = next(model.parameters()).device
        (h,) = greedy_decode(model, batch.inputs[:1].to(device), None if batch.lengths is None else
                             batch.lengths[:1], self.max_length)
        return f"{self.describe_source(batch, 0)} → {self.detokenize([self.target_vocab.tokens[t] for t in h.tokens])}"

    def describe_source(self, batch, row: int) -> str:
        """The source of row ``row`` of a batch, as text."""
        n = int(batch.lengths[row]) if batch.lengths is not None else batch.inputs.shape[1]
        return self.detokenize([self.source_vocab.tokens[int(i)] for i in batch.inputs[row, :n]])

    # ---- translation ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, model: nn.Module, sources: list[str], beam: int = 1, length_penalty: float = 1.0,
                  max_length: int = 0, batch_size: int = 64) -> list[dict]:
        """Decode each source text (greedy for ``beam`` 1, else beam search): one dict per text with the
        ``source``, its ``tokens``, the ``output`` text and tokens, ``log_prob`` and the ``attention`` matrix
        (output step × source token) when the model attends. Unknown source tokens become <unk> (warned once);
        a source longer than any seen in training is decoded, with a warning."""
        from ..generation.seq2seq import beam_decode, greedy_decode

        if not sources:
            raise ValueError("nothing to translate: give one or more source texts")
        tokenized = [self.tokenize(s) for s in sources]
        for s, t in zip(sources, tokenized):
            if not t:
                raise ValueError(f"the source {s!r} has no tokens; every source needs at least one")
        unknown = sorted({t for ts in tokenized for t in ts if t not in self.source_vocab.index})
        if unknown:
            log.warning("tokens not seen in training, read as %s: %s", UNK, unknown[:20])
        longest = max(len(t) for t in tokenized)
        if longest > self.max_source_length:
            log.warning("a source of %d tokens is longer than any in training (%d): the output may be poor",
                        longest, self.max_source_length)
        model.eval()
        device = next(model.parameters()).device
        max_length = max_length or self.max_length
        rows = []
        for start in range(0, len(sources), batch_size):
            part = tokenized[start:start + batch_size]
            ids, lengths = pad_sequences([self.encode_source(t) for t in part], 0)
            ids = ids.to(device)
            hyps = (greedy_decode(model, ids, lengths, max_length) if beam <= 1 else
                    beam_decode(model, ids, lengths, beam, max_length, length_penalty))
            for text, toks, h in zip(sources[start:], part, hyps):
                out = [self.target_vocab.tokens[t] for t in h.tokens]
                row = {"source": text, "source_tokens": toks, "output": self.detokenize(out), "output_tokens": out,
                       "log_prob": round(h.log_prob, 5), "finished": h.finished}
                if h.attention is not None:
                    row["attention"] = h.attention
                rows.append(row)
        return rows

    @torch.no_grad()
    def predict(self, model: nn.Module, batches: ExampleBatches, beam: int = 1) -> list[dict]:
        """One dict per pair in file order: the source, the greedy output and the true target."""
        from ..generation.seq2seq import beam_decode, greedy_decode

        rows = {}
        for batch in batches.sequential():
            hyps = (greedy_decode(model, batch.inputs, batch.lengths, self.max_length) if beam <= 1 else
                    beam_decode(model, batch.inputs, batch.lengths, beam, self.max_length))
            for r, i in enumerate(batch.index.tolist()):
                true = [self.target_vocab.tokens[int(t)] for t in batch.targets[r] if int(t) != IGNORE_INDEX][:-1]
                out = [self.target_vocab.tokens[t] for t in hyps[r].tokens]
                rows[i] = {"index": i, "source": self.describe_source(batch, r), "output": self.detokenize(out),
                           "true": self.detokenize(true), "correct": out == true}
        return [rows[i] for i in sorted(rows)]

    # ---- artifacts -----------------------------------------------------------------------------------------
    def save_artifacts(self, run_dir: Path) -> list[str]:
        self.source_vocab.save(run_dir / "source_vocab.json")
        self.target_vocab.save(run_dir / "target_vocab.json")
        write_json_atomic(run_dir / "seq2seq.json", {"tokenizer": self.tokenizer,
                                                     "max_target_length": self.max_target_length,
                                                     "max_source_length": self.max_source_length})
        return ["source_vocab.json", "target_vocab.json", "seq2seq.json"]

    @property
    def max_source_length(self) -> int:
        return int(self.train.lengths.max()) if hasattr(self, "train") else self._max_source_length

    def _load_artifacts(self, run_dir: Path) -> None:
        self.source_vocab = Vocabulary.load(run_dir / "source_vocab.json")
        self.target_vocab = Vocabulary.load(run_dir / "target_vocab.json")
        saved = _read_json(run_dir / "seq2seq.json", "seq2seq settings")
        try:
            self.tokenizer = saved["tokenizer"]
            self.max_target_length = int(saved["max_target_length"])
            self._max_source_length = int(saved["max_source_length"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{run_dir}/seq2seq.json: expected tokenizer, max_target_length, max_source_length "
                             f"({e})") from None

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path, with_data: bool = True) -> Seq2SeqTask:
        return cls(config, run_dir, with_data=with_data)
