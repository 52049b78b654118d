"""adding, copy-memory and pixels end to end through the command line: an LSTM beats the blind baseline on short
lags, the metrics are the tasks' own, a resumed run equals an uninterrupted one."""

import pytest

from rnnkit.cli.main import main

from .helpers import assert_resume_matches_one_run, last_record

COMMON = ["--model.hidden_size", "32", "--model.num_layers", "1", "--model.dropout", "0", "--data.batch_size", "32",
          "--train.lr", "0.01", "--data.num_examples", "200"]


def test_adding_short_lag_is_learned(tmp_path):
    run = tmp_path / "add"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "adding", "--data.lag", "10", *COMMON,
                 "--train.steps", "300", "--train.eval_every", "300"]) == 0
    record = last_record(run)
    assert record["baseline_ratio"] < 0.2 and 0 < record["solved"] <= 1


def test_copy_memory_short_lag_beats_the_baseline(tmp_path):
    run = tmp_path / "copy"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "copy-memory", "--data.lag", "1", *COMMON,
                 "--model.hidden_size", "64", "--train.lr", "0.005", "--train.steps", "400",
                 "--train.eval_every", "400"]) == 0
    record = last_record(run)
    assert record["baseline_ratio"] < 0.95 and record["recalled"] > 0.2  # chance recalls 1/8


def test_pixels_train_and_test_part(tmp_path, capsys):
    pytest.importorskip("sklearn")
    run = tmp_path / "pixels"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "pixels", "--data.permuted", "true", *COMMON,
                 "--model.cell", "gru", "--train.steps", "150", "--train.eval_every", "150"]) == 0
    assert last_record(run)["accuracy"] > 0.3  # chance is 0.1
    assert main(["-q", "evaluate", str(run), "--data.path", "digits-test"]) == 0
    assert float(capsys.readouterr().out.split("accuracy")[1].split()[0]) > 0.3


def test_generated_resume_equals_one_run_and_errors(tmp_path, capsys):
    args = ["-q", "train", "--data.task", "copy-memory", "--data.lag", "3", *COMMON, "--train.eval_every", "10",
            "--train.checkpoint_every", "10"]
    assert_resume_matches_one_run(tmp_path, args, 10, 20)
    capsys.readouterr()
    assert main(["-q", "train", "--data.task", "adding", "--data.path", "x.txt", "--run-dir", str(tmp_path / "e")])
    assert "generates its data; drop data.path" in capsys.readouterr().err
    assert main(["-q", "train", "--data.task", "adding", "--data.adding_form", "original", "--data.lag", "5",
                 "--run-dir", str(tmp_path / "e2")])
    assert "needs T >= 12" in capsys.readouterr().err
