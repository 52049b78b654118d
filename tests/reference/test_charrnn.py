"""The from-scratch NumPy char model learns a real text and samples valid text."""

import json

import numpy as np
import pytest
import torch

from rnnkit.cli.main import main
from rnnkit.data import default_text, read_text
from rnnkit.data.vocab import Vocabulary
from rnnkit.reference.charrnn import sample, train_char_rnn


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_loss_falls_on_real_text_and_samples_are_valid(model):
    text = default_text()[:60_000]  # Python's own documentation text
    run = train_char_rnn(text, model=model, hidden_size=32, iterations=400, log_every=100, sample_every=400,
                         sample_length=80)
    first, last = run.losses[0][1], run.losses[-1][1]
    assert last < first
    assert last < np.log(len(run.vocab)) - 1.5  # 4.56 nats/char for a uniform guess over this vocabulary
    (_, text_sample), = run.samples
    assert len(text_sample) == 80 and set(text_sample) <= set(run.vocab.tokens)


def test_vocabulary_round_trip_and_errors():
    vocab = Vocabulary.from_text("hello, wörld\n")
    assert vocab.decode(vocab.encode("wörld")) == "wörld"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("xyz")
    with pytest.raises(ValueError, match="empty"):
        Vocabulary.from_text("")


def test_sampling_needs_a_start():
    run = train_char_rnn("abcabcabcabc" * 10, hidden_size=4, iterations=2, sample_every=0)
    with pytest.raises(ValueError, match="prime or a state"):
        sample(run.model, run.vocab, "", 5)
    assert len(sample(run.model, run.vocab, "ab", 5, rng=np.random.default_rng(0))) == 5


def test_too_short_text():
    with pytest.raises(ValueError, match="at least seq_length"):
        train_char_rnn("abc", seq_length=25)


def test_read_text_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01\x02text")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    for name, match in [("missing.txt", "no such file"), ("empty.txt", "empty"), ("bin.dat", "binary"),
                        ("latin1.txt", "not UTF-8")]:
        with pytest.raises(ValueError, match=match):
            read_text(tmp_path / name)


def test_cli_char_rnn(tmp_path, capsys):
    data = tmp_path / "data.txt"
    data.write_text(default_text()[:20_000], encoding="utf-8")
    code = main(["reference", "char-rnn", "--data", str(data), "--iterations", "200", "--hidden-size", "16",
                 "--sample-every", "100", "--out", str(tmp_path / "out")])
    assert code == 0
    out = capsys.readouterr().out
    assert "sample after 200 iterations" in out and "nats/char" in out
    for name in ("loss.png", "gradient_flow.png", "eigenvalues.png", "power_norms.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
    report = json.loads((tmp_path / "out" / "diagnostics.json").read_text())
    assert len(report["before"]["gradient_norms"]) == 50 and report["after"]["spectral_radius"] > 0
    from rnnkit.diagnostics import per_step_factor  # the same measurement as rnnkit explain bptt

    norms = report["before"]["gradient_norms"]
    assert report["before"]["factor"] == pytest.approx(per_step_factor(torch.tensor(norms)))
    assert norms[0] == pytest.approx(16 ** 0.5, rel=1e-6)  # distance 0: ∂(Σ h_T)/∂h_T = ones(H)
    assert main(["reference", "char-rnn", "--data", str(tmp_path / "nope.txt")]) == 2
