"""The tree type: bracketed and JSON readers round-trip exactly, node tables, binarizing; bad input names its place."""

import json
from pathlib import Path

import pytest

from rnnkit.data.listops import OPERATORS, depth, generate, to_string
from rnnkit.trees.tree import Tree, node_table, parse_bracketed, read_trees, tree_from_json, write_trees

SST = Path(__file__).resolve().parents[3] / "shared" / "data" / "sst"
LINES = ["(3 (2 (2 The) (2 Rock)) (4 (3 (2 is) (4 destined)) (2 .)))",
         "(1 (2 8 1\\/2) (0 (1 bad) (2 -LRB-)))",  # a leaf with a space inside, as SST has
         "(2 x)"]


def test_bracketed_round_trip_keeps_every_label_and_token(tmp_path):
    trees = [parse_bracketed(line) for line in LINES]
    assert [t.to_bracketed() for t in trees] == LINES
    assert trees[0].words() == ["The", "Rock", "is", "destined", "."]
    assert [n.label for n in trees[0].nodes()] == ["2", "2", "2", "2", "4", "3", "2", "4", "3"]
    assert trees[1].words()[0] == "8 1\\/2"
    write_trees(trees, tmp_path / "t.txt")
    assert [t.to_bracketed() for t in read_trees(tmp_path / "t.txt")] == LINES


@pytest.mark.skipif(not SST.exists(), reason="needs ../shared/data/sst")
def test_sst_files_round_trip_exactly():
    for name in ("train.txt", "dev.txt", "test.txt"):
        lines = [line for line in (SST / name).read_text().splitlines() if line.strip()]
        trees = read_trees(SST / name)
        assert len(trees) == len(lines)
        assert all(t.to_bracketed() == line for t, line in zip(trees, lines))


def test_json_round_trip(tmp_path):
    trees = generate(30, range(1, 5), seed=3)
    write_trees(trees, tmp_path / "t.jsonl", form="json")
    back = read_trees(tmp_path / "t.jsonl")
    assert [t.to_json() for t in back] == [t.to_json() for t in trees]
    inner = tree_from_json({"label": "a", "word": "saw", "children": [{"word": "I"}, {"label": "b", "word": "it"}]})
    assert inner.words() == ["saw", "I", "it"] and inner.children[0].label is None


def test_node_table_is_post_order_with_heights_and_children():
    tree = parse_bracketed("(3 (2 a) (4 (3 b) (2 c)))")
    ids = {None: 0, "a": 1, "b": 2, "c": 3}
    rows = node_table(tree, ids.get, 2)
    # post-order: a, b, c, (b c), root; children as row + 1
    assert rows == [[1, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0], [0, 1, 2, 3], [0, 2, 1, 4]]
    with pytest.raises(ValueError, match="3 children; this model takes at most 2"):
        node_table(Tree("x", [Tree(word="a"), Tree(word="b"), Tree(word="c")]), ids.get, 2)


def test_binarized_keeps_words_and_root_label():
    tree = Tree("r", [Tree("1", word=w) for w in "abcde"])
    b = tree.binarized()
    assert b.arity() == 2 and b.words() == list("abcde") and b.label == "r"
    assert b.children[1].label == "1" and b.children[0].label is None  # (((a b) c) d) e: left-factored
    assert b.children[0].children[0].children[0].children[0].word == "a"
    inner = Tree("v", [Tree("1", word="1"), Tree("2", word="2")], word="[MAX").binarized()
    assert inner.word is None and inner.words() == ["[MAX", "1", "2"] and inner.children[0].children[0].word == "[MAX"


def test_listops_values_and_strings():
    for t in generate(200, range(1, 6), seed=0):
        op = t.word[1:]
        assert int(t.label) == OPERATORS[op]([int(c.label) for c in t.children])
    t = generate(8, range(1, 9), seed=1)[7]
    assert depth(t) == 8 and to_string(t).count("[") == to_string(t).count("]")
    assert OPERATORS["MED"]([1, 9, 4, 5]) == 4 and OPERATORS["SM"]([7, 8]) == 5


@pytest.mark.parametrize("line, where", [("(3 (2 a) (2 b)", "character 14"), ("(3 (2 a)) (2 b))", "after the closing"),
                                         ("3 a)", "character 0"), ("(3 )", "character")])
def test_bad_brackets_name_line_and_position(tmp_path, line, where):
    path = tmp_path / "bad.txt"
    path.write_text("(2 ok)\n" + line + "\n")
    with pytest.raises(ValueError, match=f"line 2: .*{where}"):
        read_trees(path)


def test_bad_json_trees_name_line_and_node(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"label": "1", "word": "a"}) + "\n" +
                    json.dumps({"label": "1", "children": [{"word": "a"}, {"label": "2"}]}) + "\n")
    with pytest.raises(ValueError, match=r"line 2: root.children\[1\]: an empty node"):
        read_trees(path)
    path.write_text("hello\n")
    with pytest.raises(ValueError, match="expected one tree a line"):
        read_trees(path)
    with pytest.raises(ValueError, match="needs a word or children"):
        Tree("1")
