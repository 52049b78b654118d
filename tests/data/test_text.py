"""Tokenizers, vocabularies and padding on tricky input, and the Penn Treebank counts."""

from pathlib import Path

import pytest
import torch

from rnnkit import RNN
from rnnkit.data import read_text
from rnnkit.data.tokenizers import char_tokenize, whitespace_tokenize, word_tokenize, word_tokenize_lines
from rnnkit.data.vocab import Vocabulary, pad_batch

PTB = Path(__file__).resolve().parents[3] / "shared" / "data" / "ptb"


@pytest.mark.parametrize("text,expected", [
    ("He left!", ["He", "left", "!"]),
    ("Don't stop -- state-of-the-art.", ["Don't", "stop", "-", "-", "state-of-the-art", "."]),
    ("naïve café, 東京タワー!", ["naïve", "café", ",", "東京タワー", "!"]),
    ("tabs\tand\nnew  lines", ["tabs", "and", "new", "lines"]),
    ("a <unk> b", ["a", "<unk>", "b"]),
    ("", []),
    ("3.14 $5", ["3", ".", "14", "$", "5"]),
])
def test_word_tokenizer(text, expected):
    assert word_tokenize(text) == expected


def test_lines_lowercase_and_eos():
    text = "The Cat sat.\n\n  \nIt left!\n"
    assert word_tokenize_lines(text, lower=True) == ["the", "cat", "sat", ".", "<eos>", "it", "left", "!", "<eos>"]
    assert whitespace_tokenize(" a  b\tc ") == ["a", "b", "c"]
    assert char_tokenize("hé\n") == ["h", "é", "\n"]


def test_vocabulary_specials_counts_and_round_trip(tmp_path):
    tokens = "a b a c a b d".split()
    vocab = Vocabulary.from_counts(tokens, min_count=2, unk="<unk>", specials=("<pad>", "<bos>", "<eos>"))
    assert vocab.tokens == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b"]
    assert vocab.decode(vocab.encode(["a", "z", "b"]), sep=" ") == "a <unk> b"
    assert len(Vocabulary.from_counts(tokens, max_size=5, unk="<unk>")) == 5
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocab
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable vocabulary"):
        Vocabulary.load(tmp_path / "bad.json")


def test_pad_batch_feeds_the_layer():
    ids, lengths = pad_batch([[1, 2, 3], [4], [5, 6]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0], [5, 6, 0]] and lengths.tolist() == [3, 1, 2]
    emb = torch.nn.Embedding(7, 4)
    out, _ = RNN(4, 5, cell="gru")(emb(ids), lengths=lengths)
    assert (out[1, 1:] == 0).all()
    with pytest.raises(ValueError, match="no empty sequences"):
        pad_batch([[1], []])


@pytest.mark.skipif(not PTB.is_dir(), reason="../shared/data/ptb is not beside this checkout")
def test_penn_treebank_counts_match_the_data_readme():
    tokens = word_tokenize_lines(read_text(PTB / "ptb.train.txt"), whitespace=True)
    assert len(tokens) == 929_589  # 887,521 words + 42,068 <eos>
    assert len(Vocabulary.from_counts(tokens, unk="<unk>", specials=("<eos>",))) == 10_000
