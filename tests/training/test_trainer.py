"""The training engine: TBPTT, clipping, non-finite guards, early stopping, determinism, run directories."""

import json
import math

import pytest
import torch

from rnnkit.training import Trainer, TrainingStopped, evaluate
from rnnkit.training.trainer import lr_factor

from .helpers import PatternTask, SignTask, SineStreamTask, config


def _truncated_bptt_by_hand(params, chunks, k2):
    """Loss and gradients of the last chunk, computed from the Elman equations h_t = tanh(W_ih x_t + b + W_hh
    h_{t-1}), y_t = V h_t + c, in float64: the state runs on across chunks and segments (its value carried),
    but each k2-step segment starts a new graph (truncation), and segment j's MSE weighs len_j / k1."""
    p = {k: v.detach().double().requires_grad_() for k, v in params.items()}
    h = torch.zeros(chunks[0].inputs.shape[0], p["weight_hh"].shape[0], dtype=torch.float64)
    for n, chunk in enumerate(chunks):
        x, y = chunk.inputs.double(), chunk.targets.double()
        k1 = x.shape[1]
        last = n == len(chunks) - 1
        for p_ in p.values():
            p_.grad = None
        total = 0.0
        for start in range(0, k1, k2):
            h = h.detach()  # the truncation: no gradient into earlier segments (or chunks)
            errors = []
            for t in range(start, min(start + k2, k1)):
                h = torch.tanh(x[:, t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T)
                errors.append(h @ p["head.weight"].T + p["head.bias"] - y[:, t])
            segment = torch.stack(errors, 1)
            loss = (segment ** 2).mean() * (segment.shape[1] / k1)
            if last:
                loss.backward()
            total += loss.item()
    return total, {k: v.grad for k, v in p.items()}


def test_engine_chunking_is_truncated_bptt(tmp_path):
    """The Trainer's updates with k1 = 12 < T (the state carried chunk to chunk) and k2 = 5 < k1 (segments 5, 5,
    2) give the loss and gradients of truncated BPTT written out by hand."""
    cfg = config(model__cell="rnn", data__seq_length=12, train__bptt=5, train__lr=0.0, train__optimizer="sgd",
                 train__clip_norm=0)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    cell = trainer.module.rnn.cells[0]
    params = {"weight_ih": cell.weight_ih, "weight_hh": cell.weight_hh, "bias_ih": cell.bias_ih,
              "head.weight": trainer.module.head.weight,
              "head.bias": trainer.module.head.bias}
    chunks = [trainer.task.train.chunk(step) for step in range(3)]
    assert not any(c.starts_epoch for c in chunks[1:])
    for chunk in chunks:
        loss, _ = trainer._update(chunk)
    expected_loss, expected = _truncated_bptt_by_hand(params, chunks, k2=5)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    for name, p in params.items():
        torch.testing.assert_close(p.grad.double(), expected[name], rtol=1e-4, atol=1e-6, msg=name)
    # and the truncation matters: without it (k2 = k1) the gradients differ
    _, untruncated = _truncated_bptt_by_hand(params, chunks, k2=12)
    assert (untruncated["weight_hh"] - expected["weight_hh"]).abs().max() > 1e-4


def test_truncation_k2_changes_gradients_not_loss(tmp_path):
    """k2 < T: the loss of the chunk is unchanged, the recurrent gradient is truncated."""
    losses = {}
    grads = {}
    for k2 in (0, 5):
        cfg = config(data__seq_length=20, train__bptt=k2, train__steps=1, train__lr=0.0)
        trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path / f"k{k2}", progress=False)
        chunk = trainer.task.train.chunk(0)
        losses[k2], _ = trainer._update(chunk)
        grads[k2] = trainer.module.rnn.cells[0].weight_hh.grad.clone()
    assert losses[0] == pytest.approx(losses[5], rel=1e-5)
    assert (grads[0] - grads[5]).abs().max() > 1e-6


def test_clipping_bounds_the_update(tmp_path):
    cfg = config(train__optimizer="sgd", train__lr=1.0, train__clip_norm=0.01, train__steps=1)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    before = torch.cat([p.detach().flatten().clone() for p in trainer.module.parameters()])
    _, pre_clip_norm = trainer._update(trainer.task.train.chunk(0))
    after = torch.cat([p.detach().flatten() for p in trainer.module.parameters()])
    assert pre_clip_norm > 0.01  # the logged norm is the one before clipping
    assert (after - before).norm().item() == pytest.approx(0.01, rel=1e-4)


def test_value_clipping(tmp_path):
    cfg = config(train__clip_value=1e-4, train__clip_norm=0, train__steps=1)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    trainer.optimizer.step = lambda: None  # inspect the gradients the optimizer would see
    trainer._update(trainer.task.train.chunk(0))
    assert max(p.grad.abs().max().item() for p in trainer.module.parameters()) <= 1e-4 + 1e-12


def _poison_from(trainer, step):
    """Make the loss NaN from update ``step`` + 1 on."""
    original = trainer.model.forward

    def poisoned(inputs, targets=None, state=None, **kw):
        out = original(inputs, targets, state, **kw)
        return out._replace(loss=out.loss * float("nan")) if trainer.step >= step else out

    trainer.model.forward = poisoned


def test_nonfinite_loss_skips_then_stops_with_checkpoint_intact(tmp_path):
    cfg = config(train__steps=30, train__checkpoint_every=5, train__max_skips=3)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    _poison_from(trainer, 12)
    with pytest.raises(TrainingStopped, match=r"non-finite loss .*3 in a row.*step-00000010"):
        trainer.fit()
    skipped = [r for r in trainer.history if r["split"] == "train"]
    assert trainer.step == 14  # updates 13 and 14 skipped; the 15th raised
    assert (tmp_path / "checkpoints" / "step-00000010" / "model.safetensors").exists()
    assert all(math.isfinite(p.detach().sum().item()) for p in trainer.module.parameters())
    assert skipped


def test_a_stretch_of_skipped_updates_writes_no_checkpoint_and_keeps_the_schedule(tmp_path):
    """Checkpoints come from healthy state only, so the good ones are never rotated out by a long stretch of
    skips; the learning-rate schedule counts skipped updates like the step does."""
    cfg = config(train__steps=40, train__checkpoint_every=2, train__max_skips=20, train__schedule="step",
                 train__decay_every=4, train__eval_every=100)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    _poison_from(trainer, 6)
    with pytest.raises(TrainingStopped, match=r"20 in a row.*step-00000006"):
        trainer.fit()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000004", "step-00000006"]
    assert trainer.scheduler.last_epoch == trainer.step == 25  # 6 good updates, 19 skipped, the 20th raised
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5 ** (25 // 4))


def test_stop_mode_stops_at_first_nonfinite(tmp_path):
    cfg = config(train__nonfinite="stop")
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    _poison_from(trainer, 3)
    with pytest.raises(TrainingStopped, match="non-finite loss at update 4 "):
        trainer.fit()


def test_a_run_whose_evaluations_are_all_nonfinite_says_so(tmp_path):
    cfg = config(train__steps=10, train__eval_every=5)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    trainer.evaluate = lambda model=None: {"loss": float("nan")}
    with pytest.raises(TrainingStopped, match="no evaluation in 10 updates gave a finite validation loss, so no "
                                              "model.safetensors was written"):
        trainer.fit()
    assert not (tmp_path / "model.safetensors").exists()


def test_same_seed_same_numbers(tmp_path):
    runs = []
    for name in ("a", "b"):
        cfg = config(model__dropout=0.2, model__num_layers=2)
        Trainer(cfg, SineStreamTask(cfg), tmp_path / name, progress=False).fit()
        records = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        runs.append([(r["step"], r["split"], r["loss"], r.get("grad_norm")) for r in records])
    assert runs[0] == runs[1]


def test_many_to_one_task_through_the_contract(tmp_path):
    cfg = config(data__batch_size=16, train__steps=120, train__eval_every=40, model__cell="gru", train__lr=0.02)
    summary = Trainer(cfg, SignTask(cfg), tmp_path, progress=False).fit()
    assert summary["best_val_loss"] < 0.45  # well below chance (0.69)
    assert summary["best_val_accuracy"] > 0.8


@pytest.mark.parametrize("kind", ["one-to-one", "one-to-many", "many-to-one", "many-to-many"])
def test_every_input_output_pattern_trains(tmp_path, kind):
    """Seeds 000/004's four patterns through the one contract: validation loss falls by half or more."""
    cfg = config(data__batch_size=16, train__steps=150, train__eval_every=150, train__lr=0.02)
    task = PatternTask(cfg, kind)
    torch.manual_seed(0)
    before = evaluate(task.build_model(), task)["loss"]
    summary = Trainer(cfg, task, tmp_path, progress=False).fit()
    assert summary["best_val_loss"] < 0.5 * before


def test_early_stopping_keeps_best_weights(tmp_path):
    cfg = config(train__steps=200, train__eval_every=5, train__patience=2, train__lr=0.5, train__optimizer="sgd",
                 train__clip_norm=0)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    summary = trainer.fit()
    vals = [r["loss"] for r in trainer.history if r["split"] == "val"]
    assert summary["stopped"].startswith("early stopping") and trainer.step < 200
    assert summary["best_val_loss"] == min(vals)
    assert vals[-1] > min(vals) and vals[-2] > min(vals)


def test_run_directory_contents(tmp_path):
    cfg = config()
    Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False).fit()
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.jsonl", "curves.png", "checkpoints"} <= names
    assert json.loads((tmp_path / "config.json").read_text())["train"]["steps"] == 20
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in records} == {"train", "val"}
    assert all("grad_norm" in r and "tokens_per_s" in r for r in records if r["split"] == "train")
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop", "asgd"])
def test_every_optimizer_trains(tmp_path, optimizer):
    cfg = config(train__optimizer=optimizer, train__lr=0.01 if optimizer != "sgd" else 0.1, train__steps=40,
                 train__eval_every=40)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    trainer.fit()
    train_losses = [r["loss"] for r in trainer.history if r["split"] == "train"]
    assert train_losses[-1] < train_losses[0]


def test_step_decay_schedule(tmp_path):
    cfg = config(train__schedule="step", train__decay_every=5, train__decay_factor=0.5, train__steps=12)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    trainer.fit()
    lrs = {r["step"]: r["lr"] for r in trainer.history if r["split"] == "train"}
    assert lrs[5] == pytest.approx(0.005) and lrs[10] == pytest.approx(0.0025)


def test_missing_tensorboard_is_a_warning_not_a_crash(tmp_path, caplog, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "torch.utils.tensorboard":
            raise ImportError("no tensorboard")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    cfg = config(train__tensorboard="true", train__steps=5)
    Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False).fit()
    assert "tensorboard package is not installed" in caplog.text


def test_time_limit_stops_with_a_final_evaluation_and_checkpoint(tmp_path):
    cfg = config(train__steps=100000, train__time_limit=0.01, train__eval_every=100000)  # 0.6 seconds
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    summary = trainer.fit()
    assert summary["stopped"].startswith("time limit") and trainer.step < 100000
    assert [r["step"] for r in trainer.history if r["split"] == "val"] == [trainer.step]
    assert (tmp_path / "checkpoints" / f"step-{trainer.step:08d}").is_dir()


def test_step_schedule_with_a_late_start_is_zarembas():
    """lr constant for decay_start updates, then multiplied by decay_factor at the start of every period."""
    cfg = config(train__schedule="step", train__decay_every=3, train__decay_start=6).train
    assert [lr_factor(cfg, u) for u in range(12)] == [1] * 6 + [0.5] * 3 + [0.25] * 3


def test_warmup_and_cosine_over_steps_or_time_budget():
    cfg = config(train__schedule="cosine", train__steps=100, train__warmup=4).train
    assert [lr_factor(cfg, u) for u in range(3)] == pytest.approx([0.25, 0.5 * 0.99975, 0.75 * 0.99901], rel=1e-4)
    assert lr_factor(cfg, 50) == pytest.approx(0.5)
    assert lr_factor(cfg, 10, budget_used=0.5) == pytest.approx(0.5)  # whichever is further along
    assert lr_factor(cfg, 10, budget_used=1.2) == 0.0


def test_cosine_anneals_to_zero_when_the_time_budget_ends(tmp_path):
    cfg = config(train__steps=10**6, train__time_limit=0.01, train__schedule="cosine", train__eval_every=10**6,
                 train__log_every=1)
    trainer = Trainer(cfg, SineStreamTask(cfg), tmp_path, progress=False)
    trainer.fit()
    lrs = [r["lr"] for r in trainer.history if r["split"] == "train"]
    assert lrs[0] > 0.009 and lrs[-1] < 0.001 and trainer.elapsed >= 0.6
    resumed = Trainer(cfg, SineStreamTask(cfg), tmp_path, resume=True, progress=False)
    assert resumed.elapsed == pytest.approx(trainer.elapsed)  # the budget's clock survives a resumption


def test_each_process_draws_its_own_dropout_stream(tmp_path, monkeypatch):
    """Data-parallel processes seed dropout by rank (rank 0's stream is the single-process one), so the rows of
    different processes never share a mask; each process's stream is saved in the checkpoint under its rank."""
    draws = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        cfg = config(model__dropout=0.5)
        Trainer(cfg, SineStreamTask(cfg), tmp_path / f"r{rank}", progress=False)
        draws.append(torch.rand(8))
    monkeypatch.delenv("RANK")
    assert not torch.equal(draws[0], draws[1])
    cfg = config(model__dropout=0.5)
    Trainer(cfg, SineStreamTask(cfg), tmp_path / "single", progress=False)
    assert torch.equal(torch.rand(8), draws[0])


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "adagrad"])
def test_optimizer_is_fused_and_updates_as_the_per_parameter_loop(name):
    """build_optimizer takes torch's fused Adam, AdamW, SGD (with momentum) and Adagrad for CPU parameters: the same
    updates as torch's loop."""
    from types import SimpleNamespace

    from rnnkit.training.trainer import build_optimizer

    cfg = SimpleNamespace(optimizer=name, lr=1e-2, weight_decay=0.1, momentum=0.9)
    torch.manual_seed(0)
    a = torch.nn.Linear(7, 5)
    b = torch.nn.Linear(7, 5)
    b.load_state_dict(a.state_dict())
    fused = build_optimizer(a.parameters(), cfg)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
           "adagrad": torch.optim.Adagrad}[name]
    extra = {"momentum": 0.9} if name == "sgd" else {}
    loop = cls(b.parameters(), lr=1e-2, weight_decay=0.1, **extra)
    assert fused.defaults["fused"] is True
    for _ in range(20):
        x = torch.randn(9, 7)
        for model, opt in ((a, fused), (b, loop)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
