"""image-classify end to end through the command line on scikit-learn's digits and on an .npz file: train,
evaluate the fixed test part, predict; wrong image sizes name the image."""

import json

import numpy as np
import pytest

from rnnkit.cli.main import main
from rnnkit.tasks.images import load_digits_split

from .helpers import last_record

pytest.importorskip("sklearn")


def test_digits_split_is_fixed_and_disjoint():
    train, test = load_digits_split("digits"), load_digits_split("digits-test")
    assert (len(train[0]), len(test[0])) == (1438, 359) and train[0][0].shape == (1, 8, 8)
    seen = {a.tobytes() for a in train[0]}
    assert sum(a.tobytes() in seen for a in test[0]) < 5  # (the digits set has a few duplicate images)
    assert load_digits_split("digits-test")[1] == test[1]


@pytest.mark.parametrize("image_model", ["renet", "rows", "cnn"])
def test_image_classify_digits(tmp_path, capsys, image_model):
    run = tmp_path / "run"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "image-classify", "--data.path", "digits",
                 "--model.image_model", image_model, "--model.hidden_size", "24", "--model.num_layers", "1",
                 "--model.cnn_channels", "8,16", "--train.steps", "150", "--train.eval_every", "150",
                 "--train.lr", "0.005", "--data.batch_size", "32"]) == 0
    assert "1,295 training and 143 validation images of 1×8×8, 10 classes" in capsys.readouterr().out
    assert last_record(run)["accuracy"] > 0.7  # chance is 0.1
    assert main(["-q", "evaluate", str(run), "--data.path", "digits-test"]) == 0
    assert float(capsys.readouterr().out.split("accuracy")[1].split()[0]) > 0.7


def test_image_classify_npz_predict_and_bad_sizes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = rng.integers(2, size=120)
    images = rng.integers(0, 60, size=(120, 6, 4)).astype(np.uint8)
    images[labels == 1, :3] += 180  # class 1: a bright upper half
    np.savez(tmp_path / "train.npz", images=images, labels=np.array(["dark", "bright"])[labels])
    run = tmp_path / "run"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "image-classify", "--data.path",
                 str(tmp_path / "train.npz"), "--model.hidden_size", "8", "--train.steps", "40", "--train.eval_every",
                 "40", "--data.batch_size", "16", "--train.lr", "0.01"]) == 0
    assert last_record(run)["accuracy"] > 0.9
    assert main(["-q", "predict", str(run), str(tmp_path / "train.npz"), "--out", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 120 and {r["label"] for r in rows} <= {"dark", "bright"}
    capsys.readouterr()
    np.savez(tmp_path / "wide.npz", images=np.zeros((3, 6, 5)), labels=np.array(["dark"] * 3))
    assert main(["-q", "evaluate", str(run), "--data.path", str(tmp_path / "wide.npz")]) != 0
    assert "image 0 has shape (1, 6, 5)" in capsys.readouterr().err
    mixed = tmp_path / "mixed.npz"
    np.savez(mixed, images=np.zeros((2, 6, 4)), labels=np.array(["a"]))
    assert main(["-q", "evaluate", str(run), "--data.path", str(mixed)]) != 0
    assert "2 images but 1 labels" in capsys.readouterr().err
