"""train.ema: the exponential moving average of the weights, w̄_1 = w_1, w̄_k = d·w̄_(k−1) + (1 − d)·w_k, is what
is evaluated, kept as the best and saved, and a run stopped and resumed averages as one run."""

import pytest
import torch
from safetensors.torch import load_file

from rnnkit.training import Trainer, evaluate

from .helpers import SineStreamTask, config


def test_the_average_follows_the_recursion_by_hand(tmp_path):
    d = 0.8
    cfg = config(train__ema=d, model__dropout=0.1)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    expected = None
    for step in range(6):
        trainer._update(trainer.task.train.chunk(step, trainer.rows))
        w = {k: v.detach().clone() for k, v in trainer.module.named_parameters()}
        expected = w if expected is None else {k: d * expected[k] + (1 - d) * w[k] for k in w}
    averaged = dict(trainer.average.module.named_parameters())
    assert averaged.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(averaged[k], expected[k], rtol=1e-6, atol=1e-7)
        assert not torch.equal(averaged[k], trainer.module.state_dict()[k])  # an average, not the last weights


def test_evaluation_and_the_saved_best_weights_are_the_average(tmp_path):
    cfg = config(train__ema=0.9, train__steps=20, train__eval_every=20)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    summary = trainer.fit()
    on_average = evaluate(trainer.average.module, trainer.task)["loss"]
    on_live = evaluate(trainer.module, trainer.task)["loss"]
    assert summary["best_val_loss"] == pytest.approx(on_average, rel=1e-6)
    assert on_average != pytest.approx(on_live, rel=1e-6)
    saved = load_file(str(tmp_path / "model.safetensors"))
    for k, v in trainer.average.module.state_dict().items():
        assert torch.equal(saved[k], v), k


def test_a_run_stopped_and_resumed_averages_as_one_run(tmp_path):
    whole = config(train__ema=0.9, train__steps=20, model__dropout=0.2)
    Trainer(whole, SineStreamTask(whole), tmp_path / "whole", progress=False).fit()
    first = config(train__ema=0.9, train__steps=10, model__dropout=0.2)
    Trainer(first, SineStreamTask(first), tmp_path / "split", progress=False).fit()
    Trainer(whole, SineStreamTask(whole), tmp_path / "split", resume=True, progress=False).fit()
    for name in ("model.safetensors", "average.safetensors"):
        a = load_file(str(tmp_path / "whole" / "checkpoints" / "step-00000020" / name))
        b = load_file(str(tmp_path / "split" / "checkpoints" / "step-00000020" / name))
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)


def test_changing_the_average_at_resume_is_refused(tmp_path):
    plain, averaged = config(train__steps=10), config(train__steps=10, train__ema=0.9)
    Trainer(plain, SineStreamTask(plain), tmp_path / "plain", progress=False).fit()
    Trainer(averaged, SineStreamTask(averaged), tmp_path / "averaged", progress=False).fit()
    with pytest.raises(ValueError, match="holds no averaged weights .* saved without train.ema"):
        Trainer(averaged, SineStreamTask(averaged), tmp_path / "plain", resume=True, progress=False)
    with pytest.raises(ValueError, match="cannot change train.ema"):
        Trainer(plain, SineStreamTask(plain), tmp_path / "averaged", resume=True, progress=False)


def test_a_decay_of_one_is_refused():
    with pytest.raises(ValueError, match="train.ema must be"):
        config(train__ema=1.0)
