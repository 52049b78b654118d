"""Shared by the task tests: a small run trained through the command line, and its last metrics record."""

import json

from rnnkit.cli.main import main


def train_generated(run, task: str, path: str, steps: int, options: list[str], examples: int = 3000):
    """Train a ``task`` run on the generated data set ``path`` for ``steps`` updates (one evaluation, at the end);
    returns its last metrics record (the validation one)."""
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", task, "--data.path", path,
                 "--data.num_examples", str(examples), "--train.steps", str(steps), "--train.eval_every", str(steps),
                 *options]) == 0
    return last_record(run)


def last_record(run) -> dict:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]


def assert_resume_matches_one_run(tmp_path, args: list[str], stop: int, end: int) -> None:
    """``rnnkit train *args`` run to ``end`` updates, against the same run stopped at ``stop`` and resumed to
    ``end``: the checkpoints at ``end`` hold the same weights, bit for bit."""
    import torch
    from safetensors.torch import load_file

    assert main([*args, "--run-dir", str(tmp_path / "whole"), "--train.steps", str(end)]) == 0
    assert main([*args, "--run-dir", str(tmp_path / "part"), "--train.steps", str(stop)]) == 0
    assert main(["-q", "train", "--resume", str(tmp_path / "part"), "--train.steps", str(end)]) == 0
    name = f"step-{end:08d}"
    a = load_file(str(tmp_path / "whole" / "checkpoints" / name / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "checkpoints" / name / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
