"""seq2seq end to end: parallel-text and SCAN readers, the generated tasks, training through the command line,
translate / evaluate / predict from the run directory alone, attention heat maps, and bad input."""

import datetime
import json
import shutil

import pytest

from rnnkit.cli.main import main
from rnnkit.data.examples import read_parallel
from rnnkit.data.synthetic import SYNTHETIC, synthetic_pairs
from rnnkit.tasks.seq2seq import corpus_bleu

from .helpers import last_record, train_generated

SMALL = ["--model.hidden_size", "48", "--model.embedding_size", "24", "--model.num_layers", "1",
         "--model.dropout", "0", "--data.batch_size", "32", "--train.lr", "5e-3", "--train.checkpoint_every", "100"]


def test_parallel_reader_takes_tab_and_scan_lines_and_names_bad_ones(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("IN: jump twice OUT: I_JUMP I_JUMP\n\nhello world\tbonjour le monde\n")
    assert read_parallel(path) == [("jump twice", "I_JUMP I_JUMP"), ("hello world", "bonjour le monde")]
    path.write_text("a b\tc\nno tab here\n")
    with pytest.raises(ValueError, match="line 2: expected source<TAB>target"):
        read_parallel(path)
    path.write_text("a b\t \n")
    with pytest.raises(ValueError, match="line 1: empty target"):
        read_parallel(path)
    path.write_text("\tc\n")
    with pytest.raises(ValueError, match="line 1: empty source"):
        read_parallel(path)


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_generated_tasks_are_seeded_distinct_and_correct(name):
    pairs = synthetic_pairs(name, 300, seed=3)
    assert pairs == synthetic_pairs(name, 300, seed=3) != synthetic_pairs(name, 300, seed=4)
    assert len({s for s, _ in pairs}) == 300
    held_out = synthetic_pairs(name, 100, seed=5, exclude=[s for s, _ in pairs])
    assert not {s for s, _ in held_out} & {s for s, _ in pairs}
    for source, target in pairs:
        if name == "reverse":
            assert target.split() == source.split()[::-1]
        elif name == "sort":
            assert target.split() == sorted(source.split())
        elif name == "addition":
            a, b = source.split("+")
            assert int(target) == int(a) + int(b) and len(a) <= 3 and len(b) <= 3
        else:
            date = datetime.date.fromisoformat(target)
            assert 1950 <= date.year <= 2049 and str(date.year) in source


def test_corpus_bleu_is_sacrebleus_and_perfect_for_equal_sequences():
    refs = [["the", "cat", "sat", "on", "the", "mat"], ["a", "b", "c", "d", "e"]]
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    hyps = [["the", "cat", "sat", "on", "a", "mat"], ["a", "b", "c", "d", "f"]]
    assert 0 < corpus_bleu(hyps, refs) < 100


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    """A small attentional model trained on the generated reversal task (a shared run for the CLI tests)."""
    run = tmp_path_factory.mktemp("reverse") / "run"
    train_generated(run, "seq2seq", "reverse", 600, SMALL)
    return run


def test_a_small_model_learns_to_reverse(reverse_run):
    final = last_record(reverse_run)
    assert final["split"] == "val" and final["exact_match"] > 0.8 and final["bleu"] > 90
    for name in ("source_vocab.json", "target_vocab.json", "seq2seq.json", "artifacts.json"):
        assert (reverse_run / name).exists()
    assert json.loads((reverse_run / "seq2seq.json").read_text())["tokenizer"] == "whitespace"


def test_translate_prints_outputs_beam_and_attention_png(reverse_run, tmp_path, capsys):
    assert main(["translate", str(reverse_run), "1 2 3 4", "9 8 7"]) == 0
    assert capsys.readouterr().out.split("\n")[:2] == ["4 3 2 1", "7 8 9"]
    png = tmp_path / "att.png"
    assert main(["translate", str(reverse_run), "5 6 7 8", "--beam", "4", "--json", "--attention-png", str(png)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["output"] == "8 7 6 5" and row["finished"] and row["log_prob"] <= 0
    assert len(row["attention"]) == 5 and all(len(r) == 4 for r in row["attention"])  # 4 tokens and <eos>
    assert all(abs(sum(r) - 1) < 1e-3 for r in row["attention"])
    assert png.stat().st_size > 1000
    sources = tmp_path / "sources.txt"
    sources.write_text("1 1 2\n\n3 4 5 6\n")
    assert main(["translate", str(reverse_run), "--file", str(sources)]) == 0
    assert capsys.readouterr().out.split("\n")[:2] == ["2 1 1", "6 5 4 3"]


def test_translate_bad_and_unusual_input(reverse_run, capsys, caplog):
    assert main(["translate", str(reverse_run), " "]) == 2
    assert "has no tokens" in capsys.readouterr().err
    assert main(["translate", str(reverse_run)]) == 2
    assert "give source texts" in capsys.readouterr().err
    assert main(["translate", str(reverse_run), "1 x 2"]) == 0  # unknown tokens: <unk>, warned
    assert "not seen in training" in caplog.text and "'x'" in caplog.text
    assert main(["translate", str(reverse_run), " ".join("1234567890" * 3)]) == 0  # longer than any training source
    assert "longer than any in training" in caplog.text
    assert main(["translate", str(reverse_run), "1 2", "--beam", "0"]) == 2


def test_evaluate_and_predict_read_only_the_run(reverse_run, tmp_path, capsys):
    pairs = synthetic_pairs("reverse", 60, seed=9)
    test = tmp_path / "test.tsv"
    test.write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    copy = tmp_path / "copy"
    shutil.copytree(reverse_run, copy)
    assert main(["evaluate", str(copy), "--data.path", str(test)]) == 0
    metrics = dict(zip(*[iter(capsys.readouterr().out.split())] * 2))
    assert float(metrics["exact_match"]) > 0.7 and 0 < float(metrics["token_accuracy"]) <= 1
    assert main(["predict", str(copy), str(test), "--out", str(tmp_path / "pred.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(60)) and [r["true"] for r in rows] == [t for _, t in pairs]
    assert sum(r["correct"] for r in rows) / 60 == pytest.approx(float(metrics["exact_match"]))
    (copy / "target_vocab.json").write_text(json.dumps({"tokens": ["<pad>", "<bos>", "<eos>", "9", "8"],
                                                        "unk": "<unk>"}))
    assert main(["translate", str(copy), "1 2"]) == 2
    assert "target_vocab.json was changed after training" in capsys.readouterr().err


def test_synth_writes_pairs_and_a_disjoint_test_file(tmp_path, capsys):
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    assert main(["synth", "addition", "--num", "200", "--out", str(train)]) == 0
    assert main(["synth", "addition", "--num", "50", "--seed", "1", "--exclude", str(train), "--out", str(test)]) == 0
    seen = {s for s, _ in read_parallel(train)}
    assert len(seen) == 200 and not seen & {s for s, _ in read_parallel(test)}


def test_seq2seq_bad_configuration_is_one_line(tmp_path, capsys):
    assert main(["train", "--data.task", "seq2seq", "--run-dir", str(tmp_path / "r")]) == 2
    assert "needs data.path" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text("a b\tc\nd e\n")
    assert main(["train", "--data.task", "seq2seq", "--data.path", str(bad), "--run-dir", str(tmp_path / "r")]) == 2
    assert "line 2" in capsys.readouterr().err
    assert main(["train", "--data.task", "seq2seq", "--data.path", "reverse", "--model.attention", "dot",
                 "--run-dir", str(tmp_path / "r"), "--data.num_examples", "100"]) == 2
    assert "dot attention needs" in capsys.readouterr().err


def test_scheduled_sampling_run_resumed_equals_an_uninterrupted_one(tmp_path):
    import torch
    from safetensors.torch import load_file

    args = ["-q", "train", "--data.task", "seq2seq", "--data.path", "sort", "--data.num_examples", "400",
            "--train.teacher_forcing", "1.0", "--train.teacher_forcing_final", "0.2", "--model.dropout", "0.2",
            *SMALL[:-2], "--train.checkpoint_every", "10", "--train.eval_every", "10"]
    assert main([*args, "--run-dir", str(tmp_path / "whole"), "--train.steps", "30"]) == 0
    assert main([*args, "--run-dir", str(tmp_path / "part"), "--train.steps", "30", "--train.time_limit",
                 "0.0001"]) == 0  # stops after its first update, as an interrupted run would
    assert main(["-q", "train", "--resume", str(tmp_path / "part"), "--train.time_limit", "0"]) == 0
    a = load_file(str(tmp_path / "whole" / "checkpoints" / "step-00000030" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "checkpoints" / "step-00000030" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name,steps,level", [("sort", 500, 0.8), ("addition", 500, 0.1), ("dates", 500, 0.9)])
def test_a_small_model_learns_each_generated_task(tmp_path, name, steps, level):
    final = train_generated(tmp_path / name, "seq2seq", name, steps, SMALL, examples=4000)
    assert final["exact_match"] > level, final  # chance: about 0
