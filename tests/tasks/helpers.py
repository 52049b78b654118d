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
