"""Hostile input at the command line: every case ends in one line naming the problem and the expected form, a
non-zero exit code, no traceback, and nothing the user had lost."""

import errno
import math

import pytest

from rnnkit.cli.main import main


def _series(path, n=200, bad_row=None, bad="inf"):
    rows = [f"{math.sin(0.3 * i):.5f}" for i in range(n)]
    if bad_row is not None:
        rows[bad_row] = bad
    path.write_text("value\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    from rnnkit.data import default_text

    root = tmp_path_factory.mktemp("lm")
    (root / "text.txt").write_text(default_text()[:10_000], encoding="utf-8")
    run = root / "run"
    assert main(["-q", "train", "--run-dir", str(run), "--data.path", str(root / "text.txt"), "--model.hidden_size",
                 "8", "--model.num_layers", "1", "--data.seq_length", "16", "--data.batch_size", "4", "--train.steps",
                 "4", "--train.eval_every", "4"]) == 0
    return run


TRAIN = ["-q", "train", "--train.steps", "2"]


def _cases(tmp, char_run):
    """(argv, exit code, text the one error line must hold)."""
    (tmp / "afile").write_text("x")
    (tmp / "latin1.toml").write_bytes(b"[model]\ncell = 'caf\xe9'\n")
    return [
        (["generate", str(char_run), "--temperature", "nan"], 2, "--temperature must be a finite number > 0"),
        (["generate", str(char_run), "--temperature", "inf"], 2, "--temperature must be a finite number > 0"),
        (["generate", str(char_run), "--top-p", "nan"], 2, "--top-p must be in (0, 1]"),
        ([*TRAIN, "--train.lr", "nan"], 2, "train.lr must be a finite number; got 'nan'"),
        ([*TRAIN, "--train.clip_norm", "nan"], 2, "train.clip_norm must be a finite number"),
        ([*TRAIN, "--data.task", "forecast", "--data.path", str(_series(tmp / "inf.csv", bad_row=7))], 2,
         "row 9, column 'value': not a finite number ('inf')"),
        (["forecast", "--csv", str(_series(tmp / "big.csv", bad_row=3, bad="1e400")), "--models", "naive"], 2,
         "row 5, column 'value': not a finite number ('1e400')"),
        ([*TRAIN, "--data.task", "forecast", "--data.path", str(_series(tmp / "one.csv", n=1))], 2,
         "1 values; a forecast run needs at least 4"),
        ([*TRAIN, "--data.task", "forecast", "--data.val_fraction", "0.01", "--data.seq_length", "50"], 2,
         "the validation split has 31 steps, too few"),
        (["forecast", "--models", ""], 2, "--models lists no model"),
        (["forecast", "--season", "0", "--models", "naive"], 2, "--season and --horizon must be >= 1"),
        (["forecast", "--models", "naive", "--out", str(tmp / "afile" / "out")], 1,
         "a part of this path is a file, not a directory"),
        ([*TRAIN, "--run-dir", str(tmp / "afile" / "run")], 1, "a part of this path is a file, not a directory"),
        ([*TRAIN, "--config", str(tmp)], 2, "is a directory; expected a TOML file"),
        ([*TRAIN, "--config", str(tmp / "latin1.toml")], 2, "not UTF-8 text; expected a TOML file"),
        (["evaluate", str(char_run), "--train.steps", "5"], 2, "evaluate does not take --train.steps"),
        (["evaluate", str(char_run), "--train.stepz", "5"], 2, "unknown key 'train.stepz'; valid keys"),
    ]


def test_every_hostile_case_is_one_line(tmp_path, char_run, capsys):
    for argv, code, message in _cases(tmp_path, char_run):
        assert main(argv) == code, argv
        err = capsys.readouterr().err.strip()
        assert message in err, (argv, err)
        assert "Traceback" not in err and len(err.splitlines()) == 1, (argv, err)


def test_forecast_twice_in_the_same_place(tmp_path, capsys):
    args = ["-q", "forecast", "--models", "naive,rnn", "--steps", "5", "--out", str(tmp_path / "fc")]
    assert main(args) == 0
    assert main(args) == 0  # the comparison's own training runs are replaced, not "resumed"


@pytest.mark.parametrize("code,advice", [(errno.EACCES, "permission denied; choose a directory you can write to"),
                                         (errno.EROFS, "the file system is read-only")])
def test_an_unwritable_run_directory_is_one_line(tmp_path, capsys, monkeypatch, code, advice):
    from rnnkit.training import trainer

    def refuse(path, obj):
        raise OSError(code, "refused", str(path))

    monkeypatch.setattr(trainer, "write_json_atomic", refuse)
    assert main(["-q", "train", "--run-dir", str(tmp_path / "run"), "--data.max_chars", "5000", "--train.steps",
                 "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"rnnkit: error: {tmp_path / 'run' / 'config.json'}: {advice} (--run-dir, --out)" or (
        advice in err and "config.json" in err and len(err.splitlines()) == 1)


def test_disk_full_mid_checkpoint_keeps_the_earlier_checkpoints(tmp_path, capsys, monkeypatch):
    from rnnkit.training import checkpoint

    real, calls = checkpoint.save_model, []

    def failing(model, path):
        calls.append(path)
        if "step-00000004" in path:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real(model, path)

    monkeypatch.setattr(checkpoint, "save_model", failing)
    run = tmp_path / "run"
    argv = ["-q", "train", "--run-dir", str(run), "--model.hidden_size", "8", "--model.num_layers", "1",
            "--data.seq_length", "16", "--data.batch_size", "4", "--data.max_chars", "5000", "--train.steps", "6",
            "--train.checkpoint_every", "2", "--train.eval_every", "100"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the disk is full" in err and "--resume" in err
    assert (run / "checkpoints" / "step-00000002" / "model.safetensors").is_file()
    monkeypatch.setattr(checkpoint, "save_model", real)
    assert main(["-q", "train", "--resume", str(run)]) == 0  # and it continues from there
