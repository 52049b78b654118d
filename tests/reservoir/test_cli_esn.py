"""``rnnkit esn``: forecasting and classifying end to end, with the search, files and one-line errors."""

import json

import numpy as np
import pytest

from rnnkit.cli.main import main
from rnnkit.reservoir import ESN


def test_forecast_with_search_writes_the_esn_plots_and_results(tmp_path, capsys):
    out = tmp_path / "esn"
    assert main(["-q", "esn", "--units", "80", "--horizon", "20", "--search", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "one-step NRMSE" in text and "search: best" in text
    results = json.loads((out / "results.json").read_text())
    assert results["one_step_nrmse"] < 0.1 and "nrmse_at_20" in results
    for png in ("forecast.png", "search.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert ESN.load(out / "esn").reservoir.units == 80


def test_forecast_a_csv_column_with_gcv(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    csv.write_text("t,v\n" + "".join(f"{i},{np.sin(0.1 * i) * np.cos(0.037 * i):.6f}\n" for i in range(1500)))
    assert main(["esn", "--csv", str(csv), "--column", "v", "--units", "60", "--ridge", "gcv", "--out",
                 str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "results.json").read_text())["one_step_nrmse"] < 0.05


def test_classify_a_file_of_sequences(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(120):
        n = int(rng.integers(15, 30))
        level = 0.5 if i % 2 else -0.5
        seq = level + np.sin(0.4 * np.arange(n) + rng.uniform(0, 6)) + 0.2 * rng.normal(size=n)
        lines.append(json.dumps({"sequence": seq.tolist(), "label": "up" if i % 2 else "down"}))
    (tmp_path / "seqs.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["esn", "--classify", str(tmp_path / "seqs.jsonl"), "--units", "80", "--leak", "0.5",
                 "--spectral-radius", "0.9", "--ridge", "1e-3", "--out", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "results.json").read_text())["accuracy"] >= 0.9
    assert (tmp_path / "c" / "confusion.png").exists()
    # the search scores on a random fifth of the training examples
    assert main(["-q", "esn", "--classify", str(tmp_path / "seqs.jsonl"), "--units", "60", "--search", "3",
                 "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "search.png").exists()


@pytest.mark.parametrize("argv,message", [
    (["--ridge", "lots"], "--ridge must be a number >= 0 or 'gcv'; got 'lots'"),
    (["--train-fraction", "1.5"], r"--train-fraction must be in (0, 1)"),
    (["--spectral-radius", "0"], "spectral_radius must be a finite number > 0"),
    (["--leak", "2"], "leak must be in (0, 1]"),
    (["--washout", "5000"], "need more than --washout + 10"),
])
def test_bad_options_are_one_line(tmp_path, capsys, argv, message):
    assert main(["esn", "--units", "20", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_series_with_nan_is_named(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    csv.write_text("v\n" + "".join(f"{np.sin(i):.4f}\n" for i in range(300)).replace("0.8415", "nan", 1))
    assert main(["esn", "--csv", str(csv), "--column", "v", "--out", str(tmp_path / "o")]) == 2
    assert "row 3, column 'v': missing" in capsys.readouterr().err
