"""music end to end through the command line (the RNN with Bernoulli outputs and the deep Markov model), and the
RNN's loss against the formula."""

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rnnkit.cli.main import main
from rnnkit.models.music import PianoRollRNN
from rnnkit.tasks.music import MusicTask

from .helpers import assert_resume_matches_one_run, last_record


def _music_file(tmp_path, seed=0):
    """A small .json set with structure to learn: chords that cycle, each sequence starting at a random chord."""
    rng = np.random.default_rng(seed)
    chords = [[60, 64, 67], [62, 65, 69], [64, 67, 71], [65, 69, 72]]

    def song():
        start = int(rng.integers(4))
        return [chords[(start + t) % 4] for t in range(int(rng.integers(8, 20)))]

    data = {part: [song() for _ in range(n)] for part, n in (("train", 40), ("valid", 8), ("test", 10))}
    path = tmp_path / "songs.json"
    path.write_text(json.dumps(data))
    return path


def test_rnn_loss_is_the_bernoulli_nll_per_step_of_the_shifted_roll():
    torch.manual_seed(0)
    model = PianoRollRNN(88, 8, cell="gru").double()
    x = (torch.rand(3, 5, 88, dtype=torch.float64) < 0.1).double()
    lengths = torch.tensor([5, 3, 4])
    targets = x.clone()
    for i, n in enumerate(lengths):
        targets[i, n:] = float("nan")
    out = model(x, targets, lengths=lengths)
    total, steps = 0.0, 0
    for i, n in enumerate(lengths.tolist()):  # each sequence alone: x_0 = 0, then x_1 .. x_{n-1}
        alone = model(x[i:i + 1, :n]).prediction[0]
        shifted = torch.cat([torch.zeros(1, 88, dtype=torch.float64), x[i, :n - 1]])
        h, _ = model.rnn(shifted[None])
        assert torch.allclose(alone, model.head(h)[0])
        total += F.binary_cross_entropy_with_logits(alone, x[i, :n], reduction="sum")
        steps += n
    assert torch.allclose(out.loss, total / steps)


@pytest.mark.parametrize("kind", ["rnn", "dmm"])
def test_music_train_evaluate_and_show(tmp_path, capsys, kind):
    path = _music_file(tmp_path)
    run = tmp_path / "run"
    extra = ["--model.latent_size", "8", "--model.transition_size", "16", "--model.emission_size", "16",
             "--train.kl_anneal", "50", "--train.eval_samples", "5", "--model.cell", "rnn"] if kind == "dmm" else []
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "music", "--data.path", str(path),
                 "--model.music_model", kind, "--model.hidden_size", "32", "--model.num_layers", "1",
                 "--data.batch_size", "8", "--train.steps", "150", "--train.eval_every", "150", "--train.lr", "0.01",
                 *extra]) == 0
    out = capsys.readouterr().out
    assert "40 training sequences" in out and "8 validation sequences" in out
    record = last_record(run)
    # 3 of 88 keys sound: independent keys at their training frequencies cost about 3·log(88/3) + 3 ≈ 13 nats a
    # step; a model that learned the chord cycle pays far less
    assert record["loss"] < 6.0
    if kind == "dmm":
        assert {"reconstruction", "kl", "iw_nll"} <= set(record)
        assert record["iw_nll"] <= record["loss"] + 0.05
    assert main(["-q", "evaluate", str(run), "--data.path", str(path)]) == 0  # the test part
    test_loss = float(capsys.readouterr().out.split("loss")[1].split()[0])
    assert main(["-q", "evaluate", str(run), "--data.path", str(path), "--data.split", "valid"]) == 0
    assert float(capsys.readouterr().out.split("loss")[1].split()[0]) != test_loss
    png = tmp_path / "show.png"
    assert main(["music", str(run), "--png", str(png), "--data.path", str(path)]) == 0
    assert png.stat().st_size > 10_000


def test_kl_annealing_weight_and_errors(tmp_path):
    from rnnkit.config import build_config

    config = build_config(None, {"data.task": "music", "model.music_model": "dmm", "train.kl_anneal": "100",
                                 "train.kl_start": "0.2"})
    task = MusicTask(config, with_data=False)
    assert [task.forward_kwargs(0.0, s)["kl_weight"] for s in (0, 50, 100, 500)] == pytest.approx([0.2, 0.6, 1, 1])
    with pytest.raises(ValueError, match="data.task=music needs data.path"):
        MusicTask(config)
    with pytest.raises(ValueError, match="model.music_model must be one of"):
        build_config(None, {"model.music_model": "hmm"})


def test_dmm_resume_after_an_interruption_matches_an_uninterrupted_run(tmp_path):
    """The DMM draws ε at every update and anneals the KL weight by update: a run stopped at 10 and resumed to 20
    equals one run of 20 updates."""
    path = _music_file(tmp_path)
    args = ["-q", "train", "--data.task", "music", "--data.path", str(path), "--model.music_model", "dmm",
            "--model.cell", "gru", "--model.hidden_size", "8", "--model.num_layers", "1", "--model.latent_size", "4",
            "--model.transition_size", "8", "--model.emission_size", "8", "--data.batch_size", "8",
            "--train.kl_anneal", "15", "--train.eval_every", "10", "--train.checkpoint_every", "10"]
    assert_resume_matches_one_run(tmp_path, args, 10, 20)
