"""The generated memory tasks (copy, repeat copy, associative recall): generators, batches, the loss and metric,
training and evaluation through the command line, and bad input."""

import json
import math
import re

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rnnkit.cli.main import main
from rnnkit.data.algorithmic import REPEAT_SCALE, draw_examples, recall_example
from rnnkit.data.batches import collate
from rnnkit.models.bits import BitSequenceModel, bit_errors
from rnnkit.tasks.memory import GeneratedBatches

from .helpers import last_record

SMALL_NTM = ["--model.cell", "ntm", "--model.hidden_size", "32", "--model.num_layers", "1", "--model.dropout", "0",
             "--model.cell_options", "memory_size = 16, memory_width = 8", "--data.bits", "4",
             "--data.batch_size", "16", "--train.lr", "1e-2", "--train.clip_norm", "10", "--data.num_examples", "64"]


def test_copy_examples_ask_for_the_input_back_after_the_delimiter():
    for x, y in draw_examples("copy", 20, seed=1, lengths=(1, 9)):
        L = (len(x) - 1) // 2
        assert x.shape == (2 * L + 1, 9) and y.shape == (2 * L + 1, 8)
        assert (x[L] == np.eye(9)[8]).all() and (x[L + 1:] == 0).all() and (x[:L, 8] == 0).all()
        assert np.isnan(y[:L + 1]).all() and (y[L + 1:] == x[:L, :8]).all()


def test_repeat_copy_examples_repeat_and_end_with_a_marker():
    for x, y in draw_examples("repeat-copy", 20, seed=2, lengths=(1, 5), repeats=(1, 4)):
        R = round(x[:, 9].max() * REPEAT_SCALE)
        L = (len(x) - 2) // (R + 1)
        assert len(x) == L + 1 + L * R + 1 and x.shape[1] == 10 and y.shape[1] == 9
        assert x[L, 8] == 1 and np.isnan(y[:L + 1]).all()
        assert (y[L + 1:-1, :8] == np.tile(x[:L, :8], (R, 1))).all() and (y[L + 1:-1, 8] == 0).all()
        assert (y[-1] == np.eye(9)[8]).all()


def test_recall_answers_with_the_item_after_the_query():
    rng = np.random.default_rng(3)
    for _ in range(20):
        x, y = recall_example(rng, 4, bits=6)
        items = [x[1 + 4 * i:4 + 4 * i, :6] for i in range(4)]
        query = x[17:20, :6]
        assert x[16, 7] == 1 and x[20, 7] == 1  # query delimiters
        found = [i for i, item in enumerate(items[:-1]) if (item == query).all()]
        assert found and any((y[-3:] == items[i + 1]).all() for i in found)
        assert np.isnan(y[:-3]).all()
    with pytest.raises(ValueError, match="at least 2 items"):
        recall_example(rng, 1)


def test_examples_are_a_pure_function_of_the_seed():
    a, b = draw_examples("copy", 5, [0, 7], (1, 20)), draw_examples("copy", 5, [0, 7], (1, 20))
    assert all((x1 == x2).all() for (x1, _), (x2, _) in zip(a, b))
    c = draw_examples("copy", 5, [0, 8], (1, 20))
    assert not all(x1.shape == x2.shape and (x1 == x2).all() for (x1, _), (x2, _) in zip(a, c))
    with pytest.raises(ValueError, match="1 <= min <= max"):
        draw_examples("copy", 1, 0, (5, 2))


def test_training_batches_pad_targets_with_nan_and_count_only_output_steps():
    stream = GeneratedBatches("copy", 6, seed=0, lengths=(1, 10), repeats=(1, 1), bits=8)
    batch = stream.chunk(3)
    same = stream.chunk(3)
    assert torch.equal(batch.inputs, same.inputs)
    L = (batch.lengths - 1) // 2
    assert batch.num_targets == int(L.sum())  # one target row per output step, none for reading or padding
    assert torch.isnan(batch.targets[0, batch.lengths[0]:]).all()


def test_the_loss_and_bit_errors_read_only_steps_with_targets():
    examples = draw_examples("copy", 4, seed=5, lengths=(2, 6))
    batch = collate([torch.from_numpy(x) for x, _ in examples], [torch.from_numpy(y) for _, y in examples],
                    target_pad=math.nan)
    model = BitSequenceModel(9, 8, 16, cell="lstm")
    out = model(batch.inputs, batch.targets, lengths=batch.lengths)
    mask = torch.isfinite(batch.targets).all(-1)
    expected = F.binary_cross_entropy_with_logits(out.prediction[mask], batch.targets[mask])
    torch.testing.assert_close(out.loss, expected)
    logits = torch.where(torch.isfinite(batch.targets), batch.targets * 2 - 1, torch.zeros_like(batch.targets))
    assert bit_errors(logits, batch.targets).tolist() == [0, 0, 0, 0]
    longest = int(mask.sum(1).argmax())  # its last step is the batch's last step, an output step
    logits[longest, -1, :3] *= -1  # three wrong bits
    errors = bit_errors(logits, batch.targets).tolist()
    assert errors[longest] == 3 and sum(errors) == 3


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    """A small NTM trained on copying 1-4 four-bit vectors (shared by the CLI tests)."""
    run = tmp_path_factory.mktemp("ntm") / "run"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "ntm-copy", "--data.min_length", "1",
                 "--data.max_length", "4", "--train.steps", "400", "--train.eval_every", "100", *SMALL_NTM]) == 0
    return run


def test_a_small_ntm_learns_to_copy(copy_run):
    final = last_record(copy_run)
    assert final["split"] == "val" and final["bit_errors"] < 0.5 and final["exact"] > 0.7


def test_evaluate_on_longer_sequences_and_draw_the_heads(copy_run, capsys):
    assert main(["evaluate", str(copy_run), "--data.min_length", "8", "--data.max_length", "8"]) == 0
    metrics = dict(zip(*[iter(capsys.readouterr().out.split())] * 2))
    assert float(metrics["bit_errors"]) >= 0 and 0 <= float(metrics["exact"]) <= 1
    assert main(["ntm", str(copy_run), "--length", "4"]) == 0
    out = capsys.readouterr().out
    assert "copy, length 4:" in out and "bit errors of 16" in out
    assert (copy_run / "ntm-4.png").stat().st_size > 5000
    config = json.loads((copy_run / "config.json").read_text())
    assert config["data"]["max_length"] == 4  # the run keeps what it was trained on


def test_the_same_task_trains_an_lstm(tmp_path):
    run = tmp_path / "lstm"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "ntm-recall", "--model.cell", "lstm",
                 "--model.hidden_size", "16", "--model.num_layers", "1", "--data.bits", "3", "--data.max_length", "3",
                 "--data.num_examples", "16", "--data.batch_size", "8", "--train.steps", "3",
                 "--train.eval_every", "3"]) == 0
    assert 0 <= last_record(run)["exact"] <= 1


@pytest.mark.parametrize("argv, message", [
    (["--data.task", "ntm-copy", "--data.min_length", "5", "--data.max_length", "2"], "min <= max"),
    (["--data.task", "ntm-recall", "--data.min_length", "1"], "2 <= min <= max"),
    (["--data.task", "ntm-copy", "--data.path", "x.txt"], "generates its data; drop data.path"),
    (["--data.task", "ntm-repeat-copy", "--data.min_repeats", "4", "--data.max_repeats", "2"],
     "min_repeats 4 is above"),
    (["--data.task", "ntm-copy", "--model.cell", "ntm", "--model.cell_options", "memory_size = 0"],
     "memory_size must be an integer >= 1"),
    (["--data.task", "ntm-copy", "--model.cell", "ntm", "--model.cell_options", "memory_size = 4, shift_range = 3"],
     "2·shift_range \\+ 1 <= memory_size"),
])
def test_bad_settings_are_one_line(tmp_path, capsys, argv, message):
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--train.steps", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error:") and "Traceback" not in err
    assert re.search(message, err)


def test_generated_lengths_are_refused_for_other_runs(copy_run, tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"data": {"task": "char-lm"}}))
    assert main(["evaluate", str(tmp_path), "--data.max_length", "9"]) == 2
    assert "applies to runs of generated memory tasks" in capsys.readouterr().err


def test_a_resumed_run_sees_the_same_fresh_batches_as_an_uninterrupted_one(tmp_path):
    from safetensors.torch import load_file

    args = ["-q", "train", "--data.task", "ntm-copy", "--data.max_length", "3", *SMALL_NTM,
            "--model.cell_options", "memory_size = 8, memory_width = 4", "--train.checkpoint_every", "6",
            "--train.eval_every", "6", "--train.steps", "12"]
    assert main([*args, "--run-dir", str(tmp_path / "whole")]) == 0
    assert main([*args, "--run-dir", str(tmp_path / "part"), "--train.time_limit", "0.0001"]) == 0  # one update
    assert main(["-q", "train", "--resume", str(tmp_path / "part"), "--train.time_limit", "0"]) == 0
    a = load_file(str(tmp_path / "whole" / "checkpoints" / "step-00000012" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "checkpoints" / "step-00000012" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
