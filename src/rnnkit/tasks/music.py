"""``music``: polyphonic music modelling on piano rolls (Boulanger-Lewandowski et al. 2012): the negative
log-likelihood per time step of 88 binary keys, with an RNN of independent Bernoulli outputs (``model.music_model
rnn``, any cell) or the deep Markov model (``dmm``, :mod:`rnnkit.latent`).

Data: a ``.mat`` or ``.json`` file holding the benchmark's train / valid / test split (:mod:`rnnkit.data.music`);
training reads ``train``, validation ``valid`` (or the ``valid`` part of ``data.val_path``), and
``rnnkit evaluate RUN --data.path FILE`` scores the part ``data.split`` names (default ``test``). The metric is the
papers': the summed NLL over the scored sequences divided by their number of time steps. For the DMM the loss is
the negative ELBO per step (a bound), reported with its KL and reconstruction parts; ``train.eval_samples K``
adds ``iw_nll``, the importance-sampled estimate with K posterior samples per sequence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import RunConfig, recurrent_kwargs
from ..data.batches import ExampleBatches
from ..data.music import KEYS, read_music
from ..latent import DeepMarkovModel
from ..models.music import PianoRollRNN
from .base import Task


def roll_batches(rolls: list[np.ndarray], batch_size: int, seed: int = 0) -> ExampleBatches:
    """Piano rolls as padded batches: inputs padded with 0, targets (the same rolls) with NaN."""
    tensors = [torch.from_numpy(r) for r in rolls]
    return ExampleBatches(tensors, tensors, min(batch_size, len(tensors)), seed=seed, target_pad=float("nan"))


class ImportanceNLL:
    """The importance-sampled NLL per time step of a DMM over an evaluation (``train.eval_samples`` samples)."""

    def __init__(self, samples: int):
        self.samples, self.total, self.steps = samples, 0.0, 0

    def add(self, prediction, batch, model) -> None:
        log_p = model.importance_log_likelihood(batch.inputs, batch.lengths, self.samples)
        self.total -= float(log_p.double().sum())
        self.steps += batch.num_targets

    def metrics(self) -> dict:
        return {"iw_nll": self.total / max(self.steps, 1)}


class MusicTask(Task):
    name = "music"

    def __init__(self, config: RunConfig, run_dir: Path | None = None, with_data: bool = True):
        self.config = config
        d, m = config.data, config.model
        self.description = f"piano rolls of {KEYS} keys, model {m.music_model}"
        if not with_data:
            return
        if not d.path:
            raise ValueError("data.task=music needs data.path: a Boulanger-Lewandowski .mat file or a .json of MIDI "
                             "pitches per step (e.g. ../shared/data/jsb_chorales/JSB_Chorales.mat)")
        parts = read_music(d.path)
        val = read_music(d.val_path)["valid"] if d.val_path else parts["valid"]
        self.train = roll_batches(parts["train"], d.batch_size, seed=config.train.seed)
        self.val = roll_batches(val, d.batch_size)
        steps = sum(len(r) for r in parts["train"])
        self.description += (f"; {len(parts['train'])} training sequences ({steps:,} steps), {len(val)} validation "
                             "sequences")

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path, with_data: bool = True) -> MusicTask:
        return cls(config, run_dir, with_data=with_data)

    @property
    def is_dmm(self) -> bool:
        return self.config.model.music_model == "dmm"

    def build_model(self) -> nn.Module:
        m = self.config.model
        if self.is_dmm:
            return DeepMarkovModel(KEYS, m.latent_size, "bernoulli", m.transition, m.transition_size, m.emission_size,
                                   m.inference, m.cell, m.hidden_size, m.num_layers, flows=m.flows,
                                   dropout=m.dropout, **recurrent_kwargs(m))
        return PianoRollRNN(KEYS, m.hidden_size, m.num_layers, m.cell, m.dropout, **recurrent_kwargs(m))

    def forward_kwargs(self, progress: float, step: int = 0) -> dict:
        """KL annealing (Bowman et al. 2016; Krishnan et al. 2017): β rises linearly from train.kl_start to 1 over
        the first train.kl_anneal updates."""
        t = self.config.train
        if not self.is_dmm or t.kl_anneal == 0:
            return {}
        return {"kl_weight": min(1.0, t.kl_start + (1 - t.kl_start) * step / t.kl_anneal)}

    def batch_terms(self, prediction, targets) -> dict:
        if not self.is_dmm:
            return {}
        return {"reconstruction": -float(prediction[..., 0].sum()), "kl": float(prediction[..., 1].sum())}

    def collector(self):
        samples = self.config.train.eval_samples
        return ImportanceNLL(samples) if self.is_dmm and samples > 0 else None

    def file_batches(self, path: str) -> ExampleBatches:
        return roll_batches(read_music(path)[self.config.data.split], self.config.data.batch_size)

    def rolls(self, path: str, part: str) -> list[np.ndarray]:
        return read_music(path)[part]
