"""classify and tag end to end through the command line: train, evaluate a file, predict, resume; the run directory
alone serves evaluation and prediction; bad files and options give one line."""

import json
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file

from rnnkit.cli.main import main

from .helpers import assert_resume_matches_one_run


def _numeric_jsonl(path, n=120, seed=0):
    """Two classes: the sign of the mean of feature 0 (sequences of 3-12 steps, 2 features)."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for _ in range(n):
            label = int(rng.integers(2))
            steps = rng.normal(0, 1, (int(rng.integers(3, 13)), 2))
            steps[:, 0] += 1.5 if label else -1.5
            f.write(json.dumps({"sequence": steps.tolist(), "label": ["neg", "pos"][label]}) + "\n")
    return path


COMMON = ["--model.hidden_size", "12", "--model.num_layers", "1", "--data.batch_size", "8",
          "--train.eval_every", "0", "--train.checkpoint_every", "10", "--train.lr", "0.02"]


def test_classify_numeric_sequences(tmp_path, capsys):
    train, test = _numeric_jsonl(tmp_path / "train.jsonl"), _numeric_jsonl(tmp_path / "test.jsonl", 40, seed=1)
    run = tmp_path / "run"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "classify", "--data.path", str(train),
                 "--train.epochs", "6", "--model.pooling", "attention", *COMMON]) == 0
    out = capsys.readouterr().out
    assert "108 training and 12 validation examples (jsonl), 2 classes" in out
    assert (run / "confusion-val.png").stat().st_size > 1000
    saved = json.loads((run / "scaler.json").read_text())
    assert len(saved["mean"]) == 2 and json.loads((run / "labels.json").read_text())["labels"] == ["neg", "pos"]

    shutil.move(train, tmp_path / "elsewhere.jsonl")  # evaluation and prediction need only the run directory
    assert main(["evaluate", str(run), "--data.path", str(test)]) == 0
    metrics = dict(zip(*[iter(capsys.readouterr().out.split()[:6])] * 2))
    assert float(metrics["accuracy"]) > 0.9 and "macro_f1" in metrics
    assert (run / "confusion-test.png").exists()
    assert main(["predict", str(run), str(test), "--out", str(tmp_path / "pred.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    given = [json.loads(line) for line in test.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(40))  # file order
    assert [r["true"] for r in rows] == [g["label"] for g in given]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)
    assert all(len(r["attention"]) == len(g["sequence"]) for r, g in zip(rows, given))


def test_classify_resume_after_an_interruption_matches_an_uninterrupted_run(tmp_path):
    train = _numeric_jsonl(tmp_path / "train.jsonl")
    args = ["-q", "train", "--data.task", "classify", "--data.path", str(train), "--model.dropout", "0.2",
            "--model.bidirectional", "true", *COMMON]
    assert_resume_matches_one_run(tmp_path, args, 20, 40)


def test_classify_text_and_sst(tmp_path, capsys):
    text = tmp_path / "reviews.txt"
    good, bad = "a fine and good film", "a dull and bad film"
    text.write_text("".join(f"{'pos' if i % 2 else 'neg'}\t{good if i % 2 else bad} {i % 5}\n" for i in range(80)))
    run = tmp_path / "text"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "classify", "--data.path", str(text),
                 "--train.epochs", "4", "--model.embedding_size", "8", *COMMON]) == 0
    assert json.loads((run / "vocab.json").read_text())["tokens"][:2] == ["<pad>", "<unk>"]
    sst = tmp_path / "sst.txt"
    sst.write_text("".join(f"(4 (3 good) (2 film{i}))\n(0 (1 bad) (2 film{i}))\n(2 (2 a) (2 film{i}))\n"
                           for i in range(20)))
    assert main(["-q", "train", "--run-dir", str(tmp_path / "sst"), "--data.task", "classify", "--data.path",
                 str(sst), "--data.sst_labels", "binary", "--data.phrases", "true", "--train.steps", "5",
                 *COMMON]) == 0
    assert "(sst), 2 classes" in capsys.readouterr().out


def test_tag_conll_and_segmentation(tmp_path, capsys):
    conll = tmp_path / "ner.txt"
    conll.write_text("".join("John B-PER\nSmith I-PER\nvisits O\nParis B-LOC\n\n" for _ in range(40)))
    run = tmp_path / "ner"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "tag", "--data.path", str(conll),
                 "--train.epochs", "8", *COMMON]) == 0
    assert json.loads((run / "config.json").read_text())["model"]["bidirectional"] == "auto"
    assert main(["evaluate", str(run), "--data.path", str(conll)]) == 0
    out = capsys.readouterr().out
    assert "span_f1" in out
    assert main(["predict", str(run), str(conll)]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["tokens"] == ["John", "Smith", "visits", "Paris"] and len(first["tags"]) == 4

    chars = tmp_path / "chars.txt"
    chars.write_text("t h e _ c a t _ s a t _\n" * 60)
    run = tmp_path / "seg"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "tag", "--data.format", "segment",
                 "--data.tokenizer", "whitespace", "--data.path", str(chars), "--train.epochs", "20", *COMMON]) == 0
    assert main(["evaluate", str(run), "--data.path", str(chars)]) == 0
    metrics = capsys.readouterr().out.split()
    assert float(metrics[metrics.index("boundary_f1") + 1]) == 1.0


@pytest.mark.parametrize("args,message", [
    (["--data.task", "classify"], "data.task=classify needs data.path"),
    (["--data.task", "tag", "--data.format", "ts"], "data.format=ts does not fit data.task=tag"),
    (["--model.cell", "leaky", "--model.cell_options", "tau = 0.5"], "model.cell_options for 'leaky': every time"),
    (["--model.cell", "gru", "--model.cell_options", "forget_bias = 1.0"], "'gru' takes no option 'forget_bias'"),
    (["--model.bidirectional", "true", "--data.max_chars", "20000"], "a language model predicts the next token"),
])
def test_bad_settings_are_one_line(tmp_path, capsys, args, message):
    train = _numeric_jsonl(tmp_path / "train.jsonl")
    if "--data.task" in args and "data.path" not in message:
        args = [*args, "--data.path", str(train)]
    assert main(["train", "--run-dir", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_every_cell_and_its_options_reach_the_model(tmp_path, capsys):
    train = _numeric_jsonl(tmp_path / "train.jsonl", 40)
    for cell, options in [("jordan", ""), ("leaky", "tau = [1, 8], learn_tau = true"), ("delay", "delays = [1, 3]"),
                          ("lstm", "forget_bias = 1.0, proj_size = 4")]:
        run = tmp_path / cell
        assert main(["-q", "train", "--run-dir", str(run), "--data.task", "classify", "--data.path", str(train),
                     "--model.cell", cell, "--model.cell_options", options, "--train.steps", "3", *COMMON]) == 0
        weights = load_file(str(run / "model.safetensors"))
        if cell == "leaky":
            assert "encoder.rnn.cells.0.tau_raw" in weights
        if cell == "lstm":
            assert weights["encoder.rnn.cells.0.weight_hr"].shape == (4, 12)


def test_text_classifier_embedding_from_word2vec(tmp_path):
    from rnnkit.config import build_config
    from rnnkit.tasks import ClassifyTask
    from rnnkit.word2vec import train_word2vec

    text = tmp_path / "reviews.txt"
    text.write_text("".join(f"{'pos' if i % 2 else 'neg'}\tthe film was {'good' if i % 2 else 'bad'}\n"
                            for i in range(40)))
    vectors = train_word2vec([["the", "film", "was", "good"], ["the", "film", "was", "bad"]] * 20, dim=8,
                             window=2, min_count=1, epochs=1, sample=0)
    vectors.save(tmp_path / "w2v")
    config = build_config(None, {"data.task": "classify", "data.path": str(text), "model.embedding_size": "8",
                                 "model.embeddings": str(tmp_path / "w2v"), "data.batch_size": "4"})
    task = ClassifyTask(config)
    model = task.build_model()
    good = task.vocab.index["good"]
    np.testing.assert_allclose(model.encoder.embedding.weight[good].detach().numpy(), vectors.vector("good"))
