"""Resuming a run: changed options take effect and are recorded, damaged files are named, a run with no checkpoint
starts again in place, artefacts changed after training are refused."""

import json
import pickle

import pytest
import torch

from rnnkit.cli.main import main


def _args(tmp_path, steps="20"):
    text = tmp_path / "text.txt"
    if not text.exists():
        from rnnkit.data import default_text

        text.write_text(default_text()[:20_000], encoding="utf-8")
    return ["-q", "train", "--data.path", str(text), "--model.hidden_size", "16", "--model.num_layers", "1",
            "--data.seq_length", "16", "--data.batch_size", "4", "--train.steps", steps, "--train.eval_every", "10",
            "--train.checkpoint_every", "10", "--train.log_every", "5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of 20 updates (checkpoints at 10 and 20), copied fresh for each test that damages it."""
    root = tmp_path_factory.mktemp("resume")
    run = root / "run"
    assert main([*_args(root), "--run-dir", str(run)]) == 0
    return root, run


@pytest.fixture
def run(trained, tmp_path):
    import shutil

    root, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.copy(root / "text.txt", tmp_path / "text.txt")
    return copy


def _resume(run, *extra):
    return main(["-q", "train", "--resume", str(run), *extra])


def test_changed_learning_rate_is_applied_and_recorded(run, capsys):
    assert _resume(run, "--train.steps", "25", "--train.lr", "0.5", "--train.weight_decay", "0.01") == 0
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["lr"] == 0.5 and config["train"]["weight_decay"] == 0.01
    history = [json.loads(line) for line in (run / "config-history.jsonl").read_text().splitlines()]
    assert history == [{"step": 20, "changed": {"train.steps": [20, 25], "train.lr": [0.002, 0.5],
                                                "train.weight_decay": [0.0, 0.01]}}]
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in logged if r["split"] == "train" and r["step"] > 20] == [0.5]
    opt = torch.load(run / "checkpoints" / "step-00000025" / "optimizer.pt", weights_only=True)
    assert opt["optimizer"]["param_groups"][0]["weight_decay"] == 0.01


def test_options_that_need_another_optimizer_are_refused_by_name(run, capsys):
    assert _resume(run, "--train.steps", "25", "--train.optimizer", "sgd") == 2
    assert "--resume cannot change train.optimizer" in capsys.readouterr().err


def test_resume_ignores_no_run_dir(run, tmp_path, capsys):
    assert _resume(run, "--run-dir", str(tmp_path / "elsewhere")) == 2
    assert "--resume continues the run in its own directory" in capsys.readouterr().err


def test_a_torn_last_metrics_line_does_not_block_the_resume(run):
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 21, "split": "tr')  # what a kill mid-write leaves
    assert _resume(run, "--train.steps", "25") == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 25


def test_a_damaged_metrics_line_is_named(run, capsys):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = "garbage"
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert _resume(run, "--train.steps", "25") == 2
    assert "metrics.jsonl, line 2: not a metrics record" in capsys.readouterr().err


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("name,content,message", [
    ("optimizer.pt", pickle.dumps(Evil()), "optimizer.pt: not a plain tensor file"),
    ("optimizer.pt", bytes(range(256)) * 4, "optimizer.pt: not a plain tensor file"),
    ("trainer.json", b'{"step": 20}', "trainer.json: 'best' is missing"),
    ("trainer.json", b'{"step": "20", "best": 1.0, "best_metrics": {}, "bad_evals": 0, "carried_tensors": 0}',
     "trainer.json: 'step' is missing or not int"),
    ("trainer.json", b"[1, 2]", "trainer.json: not a JSON object"),
])
def test_damaged_checkpoint_files_are_named(run, capsys, name, content, message):
    (run / "checkpoints" / "step-00000020" / name).write_bytes(content)
    assert _resume(run, "--train.steps", "25") == 2
    err = capsys.readouterr().err
    assert message in err and "Delete" in err and "weights_only=False" not in err and "pwned" not in err


def test_config_json_that_is_not_an_object(run, capsys):
    (run / "config.json").write_text("[]")
    assert _resume(run) == 2
    assert "config.json: expected a JSON object with model, data and train tables; got a list" in \
        capsys.readouterr().err


def test_an_artefact_changed_after_training_is_refused(run, capsys):
    vocab = json.loads((run / "vocab.json").read_text())
    tokens = vocab["tokens"] if isinstance(vocab, dict) else vocab
    tokens[3], tokens[4] = tokens[4], tokens[3]  # two tokens swapped: the weights no longer fit
    (run / "vocab.json").write_text(json.dumps(vocab))
    for command in (["evaluate", str(run)], ["generate", str(run), "--length", "5"]):
        assert main(command) == 2
        assert "vocab.json was changed after training" in capsys.readouterr().err
    assert _resume(run, "--train.steps", "25") == 2


def test_a_run_killed_before_its_first_checkpoint_starts_again_in_place(run, tmp_path, capsys):
    import shutil

    shutil.rmtree(run / "checkpoints")
    assert main([*_args(tmp_path), "--run-dir", str(run)]) == 2
    assert "use --resume RUN" not in (err := capsys.readouterr().err) and "or to start it again when it has no " \
        "checkpoint yet" in err
    assert _resume(run) == 0
    assert (run / "checkpoints" / "step-00000020").is_dir()
