"""The command line: sub-commands run end to end; bad input gives one clear line."""

import subprocess
import sys

from rnnkit.cli.main import main


def test_demo_learns_better_than_naive(capsys):
    assert main(["demo", "--iterations", "120", "--hidden-size", "16"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    rmse, naive = float(line.split()[4]), float(line.split()[8])
    assert rmse < 0.5 * naive


def test_demo_any_cell(capsys):
    assert main(["demo", "--cell", "mut2", "--iterations", "5", "--hidden-size", "4"]) == 0


def test_explain_bptt(tmp_path, capsys):
    assert main(["explain", "bptt", "--out", str(tmp_path), "--steps", "10", "--hidden-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "vanishes" in out and (tmp_path / "gradient_norms.png").exists()


def test_bad_values_are_one_line_errors(capsys):
    assert main(["demo", "--hidden-size", "0"]) == 2
    assert capsys.readouterr().err.startswith("rnnkit: error: --hidden-size")


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "rnnkit.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout and "explain" in out.stdout
