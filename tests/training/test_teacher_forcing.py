"""Teacher forcing, free running and scheduled sampling feed the documented inputs (seed 003)."""

import torch

from rnnkit.models import Forecaster
from rnnkit.tasks import ForecastTask

from .helpers import config


def test_teacher_forcing_feeds_true_values():
    model = Forecaster(1, 8, cell="gru").double()
    x = torch.randn(3, 7, 1, dtype=torch.float64)
    out = model(x, teacher_forcing=1.0)
    torch.testing.assert_close(out.prediction, model.head(model.rnn(x)[0]))


def test_free_running_feeds_own_predictions():
    model = Forecaster(1, 8, cell="lstm").double()
    x = torch.randn(3, 7, 1, dtype=torch.float64)
    out = model(x, teacher_forcing=0.0)
    # oracle: step 0 reads the true value, every later step reads the previous prediction
    state, inp, preds = None, x[:, :1], []
    for _ in range(7):
        h, state = model.rnn(inp, state)
        inp = model.head(h)
        preds.append(inp)
    torch.testing.assert_close(out.prediction, torch.cat(preds, 1))
    torch.testing.assert_close(model.rollout(x[:, :1], 7), out.prediction)


def test_scheduled_sampling_mixes_and_anneals():
    model = Forecaster(1, 8).double()
    x = torch.randn(64, 20, 1, dtype=torch.float64)
    forced = model(x, teacher_forcing=1.0).prediction
    free = model(x, teacher_forcing=0.0).prediction
    torch.manual_seed(0)
    mixed = model(x, teacher_forcing=0.5).prediction
    same_as_forced = (mixed - forced).abs().amax(-1) < 1e-12
    assert same_as_forced[:, 0].all()  # the first step always reads the true value
    assert 0.05 < same_as_forced[:, 1:].double().mean() < 0.95  # later steps: a mix
    assert not torch.allclose(mixed, free)
    task = ForecastTask(config(train__teacher_forcing=1.0, train__teacher_forcing_final=0.0))
    assert task.forward_kwargs(0.0) == {"teacher_forcing": 1.0}
    assert task.forward_kwargs(0.5) == {"teacher_forcing": 0.5}
    assert task.forward_kwargs(1.0) == {"teacher_forcing": 0.0}
