"""rnnkit lab: a small grid end to end, the table and figures it writes, and a killed grid continuing where it was."""

import json

import pytest

from rnnkit.cli.main import main
from rnnkit.lab import VARIANTS, run_grid


def test_lab_grid_table_figures_and_resume(tmp_path, capsys):
    args = ["-q", "lab", "adding", "--cells", "rnn,lstm", "--T", "8", "--minutes", "0.03", "--out", str(tmp_path),
            "--set", "model.hidden_size=8", "--set", "train.eval_every=20", "--set", "train.checkpoint_every=20"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| variant | T = 8 |" in out and "| rnn |" in out and "| lstm |" in out
    root = tmp_path / "adding"
    for name in ("results.md", "results.jsonl", "curves-T8.png", "gradients-T8.png"):
        assert (root / name).stat().st_size > 0
    results = [json.loads(line) for line in (root / "results.jsonl").read_text().splitlines()]
    assert [r["variant"] for r in results] == ["rnn", "lstm"]
    assert all(len(r["gradient_norms"]) == 8 and r["updates"] > 0 for r in results)
    # a grid killed inside its second run: that run continues from its checkpoint, the first is not redone
    (root / "lstm-T8-seed0" / "lab-result.json").unlink()
    first = (root / "rnn-T8-seed0" / "lab-result.json").stat().st_mtime_ns
    messages = []
    run_grid("adding", ["rnn", "lstm"], [8], 1, tmp_path, 0.03, {"model.hidden_size": "8"}, progress=False,
             log=messages.append)
    assert messages == ["adding lstm-T8-seed0: continuing (0.03 min)"]
    assert (root / "rnn-T8-seed0" / "lab-result.json").stat().st_mtime_ns == first


def test_lab_errors_and_variants_build():
    with pytest.raises(ValueError, match="unknown variant 'lstn'"):
        run_grid("adding", ["lstn"], [8], 1, "unused", 1.0)
    from rnnkit.lab import _config

    for name in VARIANTS:  # every variant's cell options and training options are valid
        _config("copy", name, 5, 0, 1.0, {})
    # a VARIANT:OPTION override reaches that variant only; one naming a variant outside the grid is refused
    sizes = {"lstm:model.hidden_size": "40", "model.hidden_size": "80"}
    assert _config("copy", "lstm", 5, 0, 1.0, sizes).model.hidden_size == 40
    assert _config("copy", "rnn", 5, 0, 1.0, sizes).model.hidden_size == 80
    with pytest.raises(ValueError, match="names variant 'gru'"):
        run_grid("copy", ["lstm"], [5], 1, "unused", 1.0, {"gru:model.hidden_size": "40"})
