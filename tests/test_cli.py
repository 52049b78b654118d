"""The command line: sub-commands run end to end; bad input gives one clear line."""

import subprocess
import sys

from rnnkit.cli.main import main


def test_demo_learns_better_than_naive(capsys):
    assert main(["demo", "--iterations", "120", "--hidden-size", "16"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    rmse, naive = float(line.split()[4]), float(line.split()[8])
    assert rmse < 0.5 * naive


def test_demo_trains_through_the_engine(capsys, monkeypatch):
    from rnnkit.training import Trainer

    fits = []
    real = Trainer.fit
    monkeypatch.setattr(Trainer, "fit", lambda self: fits.append(self.cfg.steps) or real(self))
    assert main(["-q", "demo", "--iterations", "7", "--hidden-size", "4", "--lr", "0.05"]) == 0
    assert fits == [7]


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


def _tiny(tmp_path):
    text = tmp_path / "text.txt"
    from rnnkit.data import default_text

    text.write_text(default_text()[:30_000], encoding="utf-8")
    return ["--data.path", str(text), "--model.hidden_size", "32", "--model.num_layers", "1",
            "--data.seq_length", "32", "--data.batch_size", "8", "--train.steps", "30", "--train.eval_every", "15",
            "--train.checkpoint_every", "15"]


def test_train_evaluate_generate_on_a_user_text(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "train", "--run-dir", str(run), *_tiny(tmp_path)]) == 0
    assert "best_val_loss" in capsys.readouterr().out
    assert main(["evaluate", str(run)]) == 0
    loss = capsys.readouterr().out.split()[1]
    assert float(loss) < 4.0  # below a uniform guess over ~90 characters (4.5 nats)
    assert main(["generate", str(run), "--prompt", "def ", "--length", "40"]) == 0
    sample = capsys.readouterr().out
    assert sample.startswith("def ") and len(sample.rstrip("\n")) == 44
    # resuming may change train.* only
    assert main(["train", "--resume", str(run), "--model.cell", "gru"]) == 2
    assert "only train.* options may change" in capsys.readouterr().err
    assert main(["-q", "train", "--resume", str(run), "--train.steps", "40"]) == 0


def test_evaluate_scores_a_language_model_on_a_whole_file(tmp_path, capsys):
    """`rnnkit evaluate RUN --data.path test.txt` scores every next-character target of the file exactly once: the
    file cut into data.batch_size rows of ceil((N - 1) / B) targets, each read from a zero state, the last one
    shorter."""
    import math

    import torch
    from torch.nn import functional as F

    from rnnkit.config import build_config
    from rnnkit.tasks import CharLMTask
    from rnnkit.training.checkpoint import load_weights

    run = tmp_path / "run"
    assert main(["-q", "train", "--run-dir", str(run), *_tiny(tmp_path)]) == 0
    test_file = tmp_path / "test.txt"
    test_file.write_text("def main():\n    return 0\n" * 40 + "x = 1\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data.path", str(test_file)]) == 0
    reported = float(capsys.readouterr().out.split()[1])
    config = build_config(None, {k.lstrip("-"): v for k, v in zip(_tiny(tmp_path)[2::2], _tiny(tmp_path)[3::2])})
    task = CharLMTask.from_run(config, run, with_data=False)
    model = task.build_model().eval()
    load_weights(model, run / "model.safetensors")
    ids = task.encode(test_file.read_text())
    row = math.ceil((len(ids) - 1) / 8)
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, row):
            piece = ids[start:start + row + 1]
            logits = model(piece[None, :-1]).prediction[0]
            total += F.cross_entropy(logits, piece[1:], reduction="sum").item()
    assert math.isclose(reported, total / (len(ids) - 1), rel_tol=1e-4)


def test_train_rejects_bad_text_files(tmp_path, capsys):
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01binary")
    assert main(["train", "--data.path", str(tmp_path / "bin.dat")]) == 2
    assert "looks binary" in capsys.readouterr().err
    (tmp_path / "short.txt").write_text("tiny text")
    assert main(["train", "--data.path", str(tmp_path / "short.txt"), "--data.seq_length", "50"]) == 2
    assert "too few" in capsys.readouterr().err


def test_forecast_task_on_a_csv(tmp_path, capsys):
    csv = tmp_path / "series.csv"
    import math

    csv.write_text("t,value\n" + "".join(f"{i},{math.sin(0.2 * i) + 0.01 * (i % 7)}\n" for i in range(600)))
    run = tmp_path / "fc"
    args = ["-q", "train", "--run-dir", str(run), "--data.task", "forecast", "--data.path", str(csv),
            "--data.column", "value", "--data.seq_length", "20", "--data.batch_size", "4", "--model.hidden_size",
            "16", "--model.num_layers", "1", "--train.steps", "40", "--train.eval_every", "20"]
    assert main(args) == 0
    assert "rmse" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("t,value\n1,0.5\n2,\n3,0.7\n")
    assert main(["train", "--data.task", "forecast", "--data.path", str(bad), "--data.column", "value"]) == 2
    assert "row 3, column 'value': missing" in capsys.readouterr().err


def test_word_level_language_model(tmp_path, capsys):
    from rnnkit.data import default_text

    (tmp_path / "train.txt").write_text(default_text()[:40_000], encoding="utf-8")
    (tmp_path / "valid.txt").write_text(default_text()[40_000:50_000], encoding="utf-8")
    run = tmp_path / "w"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "word-lm", "--data.path",
                 str(tmp_path / "train.txt"), "--data.val_path", str(tmp_path / "valid.txt"), "--data.lower", "true",
                 "--data.min_count", "2", "--model.hidden_size", "32", "--model.num_layers", "1",
                 "--data.seq_length", "20", "--data.batch_size", "8", "--train.steps", "30",
                 "--train.eval_every", "30"]) == 0
    out = capsys.readouterr().out
    assert "validation words" in out and "best_val_ppl" in out
    assert main(["generate", str(run), "--prompt", "The object", "--length", "8", "--greedy"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("The object ") and "<unk>" not in text
    assert main(["generate", str(run), "--length", "5", "--beam", "2"]) == 0
    assert capsys.readouterr().out.count("[log p =") == 2


def test_ngram_command(tmp_path, capsys):
    from rnnkit.data import default_text

    lines = default_text().splitlines()
    (tmp_path / "train.txt").write_text("\n".join(lines[:3000]), encoding="utf-8")
    (tmp_path / "eval.txt").write_text("\n".join(lines[3000:3500]), encoding="utf-8")
    assert main(["ngram", "--train", str(tmp_path / "train.txt"), "--eval", str(tmp_path / "eval.txt"), "--order",
                 "3", "--tokenizer", "words", "--lower"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3-gram mkn: perplexity ") and float(out.split()[3]) > 1
    assert main(["ngram", "--train", str(tmp_path / "missing.txt"), "--eval", str(tmp_path / "eval.txt")]) == 2
