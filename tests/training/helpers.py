"""Small tasks for engine tests: the trainer sees tasks only through this interface."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit import RNN
from rnnkit.config import build_config
from rnnkit.data.streams import IndependentBatches, StreamBatches
from rnnkit.models import Output


def config(**overrides):
    """A RunConfig from dotted overrides, small by default."""
    base = {"model.hidden_size": "16", "model.num_layers": "1", "model.dropout": "0", "data.batch_size": "4",
            "data.seq_length": "10", "train.steps": "20", "train.eval_every": "10", "train.checkpoint_every": "5",
            "train.log_every": "5", "train.lr": "0.01"}
    base.update({k.replace("__", "."): str(v) for k, v in overrides.items()})
    return build_config(None, base)


class SineStreamTask:
    """Many-to-many regression on a long noisy sine, read as a stream with the state carried (TBPTT)."""

    description = "sine stream"

    def __init__(self, cfg, length=2000):
        self.config = cfg
        t = torch.arange(length, dtype=torch.float32)
        series = (torch.sin(0.1 * t) + 0.1 * torch.sin(1.3 * t)).unsqueeze(-1)
        cut = length - 500
        self.train = StreamBatches(series[:cut], cfg.data.batch_size, cfg.data.seq_length, seed=cfg.train.seed,
                                   shuffle_offset=cut > 2 * cfg.data.seq_length)
        self.val = StreamBatches(series[cut:], 2, min(cfg.data.seq_length, 100), shuffle_offset=False)

    def build_model(self):
        from rnnkit.models import Forecaster

        m = self.config.model
        return Forecaster(1, m.hidden_size, m.num_layers, cell=m.cell, dropout=m.dropout)

    def metrics(self, loss):
        return {"loss": loss}

    def forward_kwargs(self, progress):
        return {}

    def save_artifacts(self, run_dir):
        pass

    def sample(self, model, **kw):
        return ""


class SignClassifier(nn.Module):
    """Many-to-one: the class of a whole sequence from the last output."""

    def __init__(self, hidden_size, cell):
        super().__init__()
        self.rnn = RNN(1, hidden_size, cell=cell)
        self.head = nn.Linear(hidden_size, 2)

    def initial_state(self, batch_size, device=None, dtype=None):
        return self.rnn.initial_state(batch_size, device=device, dtype=dtype)

    def forward(self, inputs, targets=None, state=None):
        h, state = self.rnn(inputs, state)
        logits = self.head(h[:, -1])
        return Output(logits, None if targets is None else F.cross_entropy(logits, targets), state)


class SignTask(SineStreamTask):
    """Many-to-one classification of independent sequences: is the sum positive?"""


    def __init__(self, cfg):
        self.config = cfg
        g = torch.Generator().manual_seed(0)
        x = torch.randn(400, 12, 1, generator=g)
        y = (x.sum((1, 2)) > 0).long()
        self.train = IndependentBatches(x[:320], y[:320], cfg.data.batch_size, seed=cfg.train.seed)
        self.val = IndependentBatches(x[320:], y[320:], 40)

    def build_model(self):
        return SignClassifier(self.config.model.hidden_size, self.config.model.cell)

    def metrics(self, loss):
        return {"loss": loss, "ppl": math.exp(loss)}
