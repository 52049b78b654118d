"""tree-classify end to end through the command line: train on bracketed and JSON trees, evaluate a file (root and
all-nodes accuracy), predict labelled trees, resume; bad labels and options give one line."""

import json
import random

import pytest

from rnnkit.cli.main import main
from rnnkit.trees.tree import Tree, write_trees

from .helpers import last_record


def _sentiment_trees(path, n, seed, form="bracketed"):
    """Random binary trees over a few words; a node is "pos" when its phrase holds more "good" than "bad" words,
    "neg" when fewer, "neu" otherwise (a compositional label every node has)."""
    rng = random.Random(seed)
    words = ["good", "bad", "the", "film", "was", "not"]

    def build(size):
        if size == 1:
            w = rng.choice(words)
            return Tree(None, word=w)
        left = rng.randint(1, size - 1)
        return Tree(None, [build(left), build(size - left)])

    def label(t):
        for c in t.children:
            label(c)
        ws = t.words()
        score = ws.count("good") - ws.count("bad")
        t.label = "pos" if score > 0 else "neg" if score < 0 else "neu"

    trees = []
    for _ in range(n):
        t = build(rng.randint(2, 9))
        label(t)
        trees.append(t)
    write_trees(trees, path, form=form)
    return path


COMMON = ["--model.hidden_size", "16", "--model.embedding_size", "16", "--data.batch_size", "16",
          "--train.lr", "0.02", "--train.checkpoint_every", "20"]


@pytest.mark.parametrize("composition", ["child-sum-lstm", "rntn"])
def test_tree_classify_trains_evaluates_and_predicts(tmp_path, capsys, composition):
    train, test = _sentiment_trees(tmp_path / "train.txt", 400, 0), _sentiment_trees(tmp_path / "test.txt", 100, 1)
    run = tmp_path / "run"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "tree-classify", "--data.path", str(train),
                 "--data.phrases", "true", "--model.composition", composition, "--train.steps", "120",
                 "--train.eval_every", "60", *COMMON]) == 0
    out = capsys.readouterr().out
    assert "360 training trees" in out and "3 classes" in out
    assert last_record(run)["accuracy"] > 0.8  # chance is about 0.4
    assert (run / "confusion-val.png").exists()
    assert main(["-q", "evaluate", str(run), "--data.path", str(test)]) == 0
    scores = capsys.readouterr().out
    assert "node_accuracy" in scores and float(scores.split("node_accuracy")[1].split()[0]) > 0.8
    assert main(["-q", "predict", str(run), str(test), "--out", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 100 and rows[0]["tree"].startswith(f"({rows[0]['label']} ")
    assert sum(r["label"] == r["true"] for r in rows) > 80


def test_tree_classify_json_trees_resume_and_errors(tmp_path, capsys):
    train = _sentiment_trees(tmp_path / "train.jsonl", 200, 0, form="json")
    run = tmp_path / "run"
    args = ["-q", "train", "--run-dir", str(run), "--data.task", "tree-classify", "--data.path", str(train),
            "--model.composition", "nary-lstm", "--train.eval_every", "10", *COMMON]
    assert main([*args, "--train.steps", "20"]) == 0
    assert main(["-q", "train", "--resume", str(run), "--train.steps", "30"]) == 0
    assert last_record(run)["step"] == 30
    capsys.readouterr()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"label": "great", "word": "good"}) + "\n")
    assert main(["-q", "evaluate", str(run), "--data.path", str(bad)]) != 0
    assert "label 'great', not seen in training" in capsys.readouterr().err
    assert main(["-q", "train", "--run-dir", str(tmp_path / "r2"), "--data.task", "tree-classify",
                 "--data.path", str(train), "--data.format", "csv"]) != 0
    assert "does not fit data.task tree-classify" in capsys.readouterr().err


def test_tree_classify_listops_words_at_inner_nodes(tmp_path):
    """ListOps trees carry the operator as the list node's word: n-ary nodes with an input x (Child-Sum), and
    predictions written back as JSON trees (the bracketed form has no word at inner nodes)."""
    from rnnkit.data.listops import generate, write_listops

    train, _ = write_listops(generate(400, range(1, 3), seed=0), tmp_path / "train")
    run = tmp_path / "run"
    assert main(["-q", "train", "--run-dir", str(run), "--data.task", "tree-classify", "--data.path", str(train),
                 "--model.composition", "child-sum-lstm", "--train.steps", "30", "--train.eval_every", "30",
                 *COMMON]) == 0
    assert main(["-q", "predict", str(run), str(train), "--out", str(tmp_path / "p.jsonl")]) == 0
    row = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert row["tree"]["word"].startswith("[") and len(row["tree"]["children"]) >= 2


def test_monitor_accuracy_keeps_the_most_accurate_weights(tmp_path, capsys):
    """--train.monitor accuracy: the saved weights are those of the evaluation with the highest accuracy (not the
    lowest loss); an unknown metric name is refused with the task's metrics."""
    from rnnkit.training.trainer import monitored_score

    assert monitored_score({"loss": 0.5, "accuracy": 0.8}, "accuracy") == -0.8
    assert monitored_score({"loss": 0.5}, "loss") == 0.5
    train = _sentiment_trees(tmp_path / "train.txt", 300, 0)
    run = tmp_path / "run"
    args = ["-q", "train", "--run-dir", str(run), "--data.task", "tree-classify", "--data.path", str(train),
            "--model.composition", "tree-rnn", "--train.steps", "60", "--train.eval_every", "10", *COMMON]
    assert main([*args, "--train.monitor", "accuracy"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = max((r for r in records if r["split"] == "val"), key=lambda r: r["accuracy"])
    capsys.readouterr()
    assert main(["-q", "evaluate", str(run)]) == 0
    assert f"accuracy {best['accuracy']:.4f}" in capsys.readouterr().out
    assert main([*args[:3], str(tmp_path / "r2"), *args[4:], "--train.monitor", "acc"]) != 0
    assert "train.monitor='acc' is not a metric of this task" in capsys.readouterr().err
