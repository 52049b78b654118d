"""Readers of labelled sequence files: what they return, and one clear line naming the file and line otherwise."""

import numpy as np
import pytest

from rnnkit.data import examples as ex

TS = """# comment
@problemName Toy
@univariate false
@dimensions 2
@classLabel true a b
@data
1,2,3:4,5,6:a
7,8:9,10:b
"""


def test_ts_reads_multivariate_unequal_lengths(tmp_path):
    f = tmp_path / "toy.ts"
    f.write_text(TS)
    out = ex.read_ts(f)
    assert [e.label for e in out] == ["a", "b"]
    np.testing.assert_array_equal(out[0].steps, [[1, 4], [2, 5], [3, 6]])  # (T, D)
    assert out[1].steps.shape == (2, 2)


@pytest.mark.parametrize("reader,name,content,message", [
    (ex.read_ts, "bad.ts", TS.replace("7,8:9,10:b", "7,8:9:b"), r"bad.ts, line 8: expected 2 dimensions of equal"),
    (ex.read_ts, "bad.ts", "1,2:3,4:a\n", "no @data line"),
    (ex.read_jsonl_sequences, "s.jsonl", '{"seq": [1]}\n', r"s.jsonl, line 1: expected"),
    (ex.read_csv_sequences, "s.csv", "id,x\n1,0\n", "columns id, label"),
    (ex.read_sst, "sst.txt", "(3 (2 The) (4 good)\n", r"sst.txt, line 1: not a bracketed tree"),
    (ex.read_conll, "tags.txt", "a b _ c d e f g _\n", r"tags.txt, line 1: .*got 9 columns \(text with boundary"),
    (lambda f: ex.read_segmentation(f, "_", whitespace=False), "chars.txt", "ab cd\n", "no boundary marker '_'"),
    # non-finite values never reach the scaler
    (ex.read_ts, "inf.ts", TS.replace("7,8:9,10:b", "7,inf:9,10:b"), r"inf.ts, line 8: values must be finite.*inf"),
    (ex.read_csv_sequences, "nan.csv", "id,label,x\n1,a,0\n1,a,nan\n", r"nan.csv, line 3: values must be finite"),
    (ex.read_jsonl_sequences, "big.jsonl", '{"sequence": [1, 1e400], "label": 0}\n', r"big.jsonl, line 1: .*finite"),
])
def test_bad_files_name_the_file_line_and_problem(tmp_path, reader, name, content, message):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(ValueError, match=message):
        reader(f)


def test_csv_and_jsonl_forms(tmp_path):
    c = tmp_path / "s.csv"
    c.write_text("id,label,x,y\n1,up,0,1\n1,up,1,2\n2,down,5,6\n")
    out = ex.read_csv_sequences(c)
    assert [e.label for e in out] == ["up", "down"] and out[0].steps.tolist() == [[0, 1], [1, 2]]
    j = tmp_path / "s.jsonl"
    j.write_text('{"sequence": [[0, 1], [1, 2]], "label": "up"}\n{"sequence": [3, 4, 5], "label": 7}\n')
    out = ex.read_jsonl_sequences(j)
    assert out[1].steps.shape == (3, 1) and out[1].label == "7"


def test_sst_trees_roots_phrases_and_binary(tmp_path):
    f = tmp_path / "sst.txt"
    f.write_text("(3 (2 The) (4 (3 good) (2 8 1\\/2)))\n(2 (2 so) (2 so))\n(0 (1 bad) (2 film))\n")
    roots = ex.read_sst(f)
    assert [(e.label, e.steps) for e in roots] == [("3", ["The", "good", "8 1\\/2"]), ("2", ["so", "so"]),
                                                   ("0", ["bad", "film"])]
    binary = ex.read_sst(f, "binary")
    assert [e.label for e in binary] == ["positive", "negative"]  # neutral dropped
    phrases = ex.read_sst(f, phrases=True)
    # every node once per distinct (label, words): 5 + 2 ("so" twice is one phrase) + 3
    assert len(phrases) == 10 and phrases[0].steps == roots[0].steps


def test_conll_and_segmentation(tmp_path):
    f = tmp_path / "tags.txt"
    f.write_text("John B-PER\nsmiles O\n\nParis B-LOC\n")
    out = ex.read_conll(f)
    assert [(e.steps, e.label) for e in out] == [(["John", "smiles"], ["B-PER", "O"]), (["Paris"], ["B-LOC"])]
    s = tmp_path / "chars.txt"
    s.write_text("a b _ c _ d e _\n _ f _\n")
    out = ex.read_segmentation(s, "_")
    assert out[0].steps == list("abcde") and out[0].label == ["O", "B", "B", "O", "O"]  # the line end is given
    assert out[1].steps == ["f"] and out[1].label == ["O"]
    s.write_text("ab cd\n")
    assert ex.read_segmentation(s, " ", whitespace=False)[0].label == ["O", "B", "O", "O"]
