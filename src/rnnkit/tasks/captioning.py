"""``caption``: a caption for each image (seed 004's one-to-many conditioned generation), with
:class:`rnnkit.models.ImageCaptioner`.

Data (``rnnkit.data.images``): a captions file of ``image<TAB>caption`` lines beside the pictures, an ``.npz`` of
images or precomputed features with captions, or ``digit-strips`` (generated from scikit-learn's digits; held-out
digit sequences for test with ``rnnkit synth digit-strips --part test``). The caption side is a seq2seq target:
same vocabulary handling, metrics (exact caption match, token accuracy, BLEU) and decoding as ``seq2seq``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import cell_kwargs
from ..data.images import digit_strips, read_captions, read_image
from ..data.vocab import Vocabulary
from ..io import write_json_atomic
from ..models.captioning import ImageCaptioner
from .seq2seq import BOS, EOS, PAD, Seq2SeqTask
from .sequences import _read_json

log = logging.getLogger("rnnkit")
GENERATED = "digit-strips"


class CaptionTask(Seq2SeqTask):
    """Image (or feature array) → caption. Every input of a run has the shape of the first training input (saved
    in the run); an image of another size is refused by name."""

    name = "caption"
    missing_path = ("data.task=caption needs data.path: a captions file (image<TAB>caption lines), an .npz file "
                    f"(images or features, and captions), or {GENERATED!r}")

    def __init__(self, config, run_dir: Path | None = None, with_data: bool = True):
        self.input_shape: tuple[int, ...] | None = None
        super().__init__(config, run_dir, with_data)

    @staticmethod
    def _synthetic(path: str) -> bool:
        return path == GENERATED and not Path(path).exists()

    def default_tokenizer(self) -> str:
        return self.config.data.tokenizer

    def read(self, path: str):
        if self._synthetic(path):
            pairs = digit_strips(self.config.data.num_examples or 10_000, self.config.train.seed, "train")
        else:
            pairs = read_captions(path)
        return [(image, self.tokenize(caption)) for image, caption in pairs]

    def _fit_vocabularies(self, train) -> None:
        self.input_shape = tuple(train[0][0].shape)
        self._fit_targets(train)

    @property
    def kind(self) -> str:
        return "images" if len(self.input_shape) == 3 else "features"

    def describe_sources(self) -> str:
        shape = "×".join(map(str, self.input_shape))
        return f"{self.kind} of shape {shape}, caption vocabulary {len(self.target_vocab)} ({self.tokenizer} tokens)"

    def encode_source(self, array) -> torch.Tensor:
        if tuple(array.shape) != self.input_shape:
            what = "channels, height, width" if self.kind == "images" else "positions, features"
            raise ValueError(f"an input of shape {tuple(array.shape)} does not fit this run: it was trained on "
                             f"{self.kind} of shape {self.input_shape} ({what}); resize it first")
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def describe_source(self, batch, row: int) -> str:
        return f"{self.kind[:-1]} {int(batch.index[row]) if batch.index is not None else row}"

    def build_model(self) -> nn.Module:
        m = self.config.model
        tv = self.target_vocab.index
        try:
            channels = tuple(int(c) for c in m.cnn_channels.split(","))
            if not channels or min(channels) < 1:
                raise ValueError
        except ValueError:
            raise ValueError(f"model.cnn_channels must be positive integers separated by commas, e.g. '32,64,128'; "
                             f"got {m.cnn_channels!r}") from None
        source = ({"image_channels": self.input_shape[0], "channels": channels} if self.kind == "images" else
                  {"image_channels": None, "feature_size": self.input_shape[-1]})
        return ImageCaptioner(len(self.target_vocab), **source, embedding_size=m.embedding_size,
                              hidden_size=m.hidden_size, num_layers=m.num_layers, cell=m.cell, attention=m.attention,
                              context=m.context, input_feeding=m.input_feeding, dropout=m.dropout, pad_id=tv[PAD],
                              bos_id=tv[BOS], eos_id=tv[EOS], **cell_kwargs(m))

    # ---- captioning files ------------------------------------------------------------------------------------
    def load_images(self, paths: list[str]) -> list[np.ndarray]:
        """Picture files as this run's inputs (its channels), each checked against the training size."""
        if self.kind != "images":
            raise ValueError(f"this run captions features of shape {self.input_shape}, not images; give an .npz "
                             "with a 'features' array")
        arrays = [read_image(p, channels=self.input_shape[0]) for p in paths]
        for p, a in zip(paths, arrays):
            if a.shape != self.input_shape:
                raise ValueError(f"{p}: the image is {a.shape[1]}×{a.shape[2]} (height×width); this run was trained "
                                 f"on {self.input_shape[1]}×{self.input_shape[2]} images: resize it first")
        return arrays

    @torch.no_grad()
    def caption(self, model: nn.Module, inputs: list[np.ndarray], beam: int = 1, length_penalty: float = 1.0,
                max_length: int = 0) -> list[dict]:
        """A caption per input: ``output`` text and tokens, ``log_prob``, and ``attention`` (words × grid cells,
        row-major over the encoder's ``grid``) when the model attends."""
        from ..generation.seq2seq import beam_decode, greedy_decode

        if not inputs:
            raise ValueError("nothing to caption: give one or more images")
        model.eval()
        device = next(model.parameters()).device
        batch = torch.stack([self.encode_source(a) for a in inputs]).to(device)
        max_length = max_length or self.max_length
        hyps = (greedy_decode(model, batch, None, max_length) if beam <= 1 else
                beam_decode(model, batch, None, beam, max_length, length_penalty))
        rows = []
        for h in hyps:
            out = [self.target_vocab.tokens[t] for t in h.tokens]
            row = {"output": self.detokenize(out), "output_tokens": out, "log_prob": round(h.log_prob, 5),
                   "finished": h.finished}
            if h.attention is not None:
                row["attention"] = h.attention
                row["grid"] = model.grid
            rows.append(row)
        return rows

    # ---- artifacts -------------------------------------------------------------------------------------------
    def save_artifacts(self, run_dir: Path) -> list[str]:
        self.target_vocab.save(run_dir / "target_vocab.json")
        write_json_atomic(run_dir / "caption.json", {"tokenizer": self.tokenizer, "input_shape": self.input_shape,
                                                     "max_target_length": self.max_target_length})
        return ["target_vocab.json", "caption.json"]

    def _load_artifacts(self, run_dir: Path) -> None:
        self.target_vocab = Vocabulary.load(run_dir / "target_vocab.json")
        saved = _read_json(run_dir / "caption.json", "caption settings")
        try:
            self.tokenizer = saved["tokenizer"]
            self.input_shape = tuple(int(v) for v in saved["input_shape"])
            self.max_target_length = int(saved["max_target_length"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{run_dir}/caption.json: expected tokenizer, input_shape, max_target_length ({e})") \
                from None
