"""Small tasks for engine tests: the trainer sees tasks only through this interface."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from rnnkit import RNN
from rnnkit.config import build_config
from rnnkit.data.batches import ExampleBatches
from rnnkit.data.streams import StreamBatches
from rnnkit.models import Output
from rnnkit.tasks import Task


def config(**overrides):
    """A RunConfig from dotted overrides, small by default."""
    base = {"model.hidden_size": "16", "model.num_layers": "1", "model.dropout": "0", "data.batch_size": "4",
            "data.seq_length": "10", "train.steps": "20", "train.eval_every": "10", "train.checkpoint_every": "5",
            "train.log_every": "5", "train.lr": "0.01",
            "train.device": "cpu"}  # the tests compare with computations by hand on the CPU
    base.update({k.replace("__", "."): str(v) for k, v in overrides.items()})
    return build_config(None, base)


class SineStreamTask(Task):
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
        self.train = ExampleBatches(x[:320], y[:320], cfg.data.batch_size, seed=cfg.train.seed)
        self.val = ExampleBatches(x[320:], y[320:], 40)

    def build_model(self):
        return SignClassifier(self.config.model.hidden_size, self.config.model.cell)

    def metrics(self, loss, means=None):
        return {"loss": loss, "ppl": math.exp(loss), **(means or {})}

    def batch_terms(self, prediction, targets):
        return {"accuracy": (prediction.argmax(-1) == targets).sum().item()}


class PatternModel(nn.Module):
    """One model per input/output pattern of seeds 000/004, all through the same contract.

    one-to-one: (B, 1, 2) → class; one-to-many: (B, 1, 2) → a sequence of 8 values (the input sets the initial
    state, zeros drive the steps); many-to-one: (B, 12, 1) → class; many-to-many: (B, 12, 1) → a value per step.
    """

    def __init__(self, kind, hidden_size=16):
        super().__init__()
        self.kind = kind
        inputs = 2 if kind.startswith("one") else 1
        self.init = nn.Linear(inputs, hidden_size)
        self.rnn = RNN(inputs, hidden_size, cell="gru")
        self.head = nn.Linear(hidden_size, 2 if kind.endswith("one") else 1)

    def initial_state(self, batch_size, device=None, dtype=None):
        return self.rnn.initial_state(batch_size, device=device, dtype=dtype)

    def forward(self, inputs, targets=None, state=None):
        if self.kind == "one-to-many":
            h0 = torch.tanh(self.init(inputs[:, 0])).unsqueeze(0)
            h, state = self.rnn(inputs.new_zeros(inputs.shape[0], 8, 2), h0)
        else:
            h, state = self.rnn(inputs, state)
        if self.kind.endswith("one"):
            logits = self.head(h[:, -1])
            loss = None if targets is None else F.cross_entropy(logits, targets)
            return Output(logits, loss, state)
        values = self.head(h).squeeze(-1)
        return Output(values, None if targets is None else F.mse_loss(values, targets), state)


class PatternTask(SineStreamTask):
    """Independent examples for each pattern; the targets are learnable functions of the inputs."""

    def __init__(self, cfg, kind):
        self.config, self.kind = cfg, kind
        g = torch.Generator().manual_seed(0)
        if kind.startswith("one"):
            x = torch.rand(480, 1, 2, generator=g) * 2 - 1
            if kind == "one-to-one":
                y = (x[:, 0, 0] * x[:, 0, 1] > 0).long()
            else:
                t = torch.arange(1, 9, dtype=torch.float32)
                y = x[:, 0, :1] * torch.sin(t * (1.5 + x[:, 0, 1:]))
        else:
            x = torch.randn(480, 12, 1, generator=g)
            y = (x.sum((1, 2)) > 0).long() if kind == "many-to-one" else torch.cumsum(x[..., 0], 1) / 4
        self.train = ExampleBatches(x[:400], y[:400], cfg.data.batch_size, seed=cfg.train.seed)
        self.val = ExampleBatches(x[400:], y[400:], 80)

    def build_model(self):
        return PatternModel(self.kind, self.config.model.hidden_size)

    def batch_terms(self, prediction, targets):
        return {"accuracy": (prediction.argmax(-1) == targets).sum().item()} if self.kind.endswith("one") else {}
