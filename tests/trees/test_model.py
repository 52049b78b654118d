"""Compositions against their papers' equations, gradcheck, and the level-batched encoder against node-by-node
evaluation (outputs and gradients, float64) on random trees of mixed shapes."""

import random

import pytest
import torch

from rnnkit.data.batches import pad_sequences
from rnnkit.data.listops import generate
from rnnkit.trees import COMPOSITIONS, RNTN, ChildSumTreeLSTM, NaryTreeLSTM, RecursiveNN, TreeEncoder
from rnnkit.trees.tree import Tree, node_table


def random_tree(rng: random.Random, size: int, vocab: int) -> Tree:
    """A random binary tree with ``size`` leaves (words 1..vocab)."""
    if size == 1:
        return Tree(word=str(rng.randint(1, vocab)))
    left = rng.randint(1, size - 1)
    return Tree(children=[random_tree(rng, left, vocab), random_tree(rng, size - left, vocab)])


def tables(trees, arity):
    return pad_sequences([torch.tensor(node_table(t, lambda w: 0 if w is None else int(w), arity)) for t in trees])


def _trees(binary: bool):
    rng = random.Random(0)
    if binary:  # sizes 1 (a lone leaf) to 12 leaves: very different depths in one batch
        return [random_tree(rng, n, 9) for n in (1, 2, 7, 12, 5, 3)]
    trees = generate(6, range(1, 4), seed=2)  # n-ary: 3-6 children
    return [t.map(word=lambda w: str(1 + hash(w) % 9)) for t in trees]


@pytest.mark.parametrize("name", list(COMPOSITIONS))
def test_level_batched_equals_node_by_node(name):
    binary = COMPOSITIONS[name].binary
    x, lengths = tables(_trees(binary), 2 if binary else 6)
    size = 5 if COMPOSITIONS[name].leaf_is_word else 4
    enc = TreeEncoder(10, name, embedding_size=size, hidden_size=5).double()
    batched, reference = enc(x, lengths), enc.node_by_node(x, lengths)
    torch.testing.assert_close(batched, reference, rtol=0, atol=1e-12)
    assert (batched[1, lengths[1]:] == 0).all()  # padding rows stay zero
    weights = torch.randn_like(batched)
    g1 = torch.autograd.grad((batched * weights).sum(), list(enc.parameters()))
    g2 = torch.autograd.grad((reference * weights).sum(), list(enc.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def _children(n=3, k=2, size=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, size, generator=g, dtype=torch.float64)


def test_recursive_nn_and_rntn_match_their_equations():
    d = 3
    rnn, rntn = RecursiveNN(d, d).double(), RNTN(d, d).double()
    ch = _children(size=d)
    mask = torch.ones(3, 2, dtype=torch.bool)
    c = ch.flatten(1)
    torch.testing.assert_close(rnn(None, ch, mask), torch.tanh(c @ rnn.W.weight.T + rnn.W.bias))
    with torch.no_grad():
        rntn.V.normal_()
    expected = torch.stack([torch.tanh(torch.stack([c[i] @ rntn.tensor[k] @ c[i] for k in range(d)])
                                       + rntn.W.weight @ c[i] + rntn.W.bias) for i in range(3)])
    torch.testing.assert_close(rntn(None, ch, mask), expected)
    x = torch.randn(2, d, dtype=torch.float64)
    assert torch.equal(rntn.leaf(x), x)  # a leaf's state is its word vector
    with pytest.raises(ValueError, match="embedding_size must equal hidden_size"):
        RNTN(4, 3)


def test_child_sum_tree_lstm_matches_tai_et_al():
    E, d = 3, 4
    cell = ChildSumTreeLSTM(E, d).double()
    x = torch.randn(1, E, dtype=torch.float64)
    h_k, c_k = torch.randn(3, d, dtype=torch.float64), torch.randn(3, d, dtype=torch.float64)
    Wi, Wo, Wu, Wf = cell.W.weight.split(d)
    bi, bo, bu, bf = cell.W.bias.split(d)
    Ui, Uo, Uu = cell.U_iou.weight.split(d)
    h_sum = h_k.sum(0)
    i = torch.sigmoid(Wi @ x[0] + Ui @ h_sum + bi)
    o = torch.sigmoid(Wo @ x[0] + Uo @ h_sum + bo)
    u = torch.tanh(Wu @ x[0] + Uu @ h_sum + bu)
    f = torch.sigmoid(Wf @ x[0] + h_k @ cell.U_f.weight.T + bf)  # one gate per child
    c = i * u + (f * c_k).sum(0)
    # a fourth, missing child (mask False) changes nothing
    children = torch.cat([torch.cat([h_k, c_k], 1), torch.randn(1, 2 * d, dtype=torch.float64)])[None]
    out = cell(x, children, torch.tensor([[True, True, True, False]]))
    torch.testing.assert_close(out[0], torch.cat([o * torch.tanh(c), c]))


def test_nary_tree_lstm_matches_tai_et_al():
    E, d = 3, 4
    cell = NaryTreeLSTM(E, d).double()
    x = torch.randn(1, E, dtype=torch.float64)
    (hl, cl), (hr, cr) = [torch.randn(2, d, dtype=torch.float64) for _ in range(2)]
    z = cell.W.weight @ x[0] + cell.W.bias + cell.U.weight[:, :d] @ hl + cell.U.weight[:, d:] @ hr
    i, o, u, fl, fr = z.split(d)
    c = torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(fl) * cl + torch.sigmoid(fr) * cr
    out = cell(x, torch.stack([torch.cat([hl, cl]), torch.cat([hr, cr])])[None], torch.ones(1, 2, dtype=torch.bool))
    torch.testing.assert_close(out[0], torch.cat([torch.sigmoid(o) * torch.tanh(c), c]))


@pytest.mark.parametrize("cls", [RNTN, ChildSumTreeLSTM, NaryTreeLSTM])
def test_gradcheck_compositions(cls):
    d = 3
    cell = cls(d, d).double()
    size = cell.state_size
    x = torch.randn(2, d, dtype=torch.float64, requires_grad=True)
    ch = _children(n=2, size=size).requires_grad_()
    mask = torch.tensor([[True, True], [True, False]])
    params = list(cell.parameters())

    assert torch.autograd.gradcheck(lambda x, ch: cell(x, ch, mask), (x, ch))
    for p in params:  # and with respect to every parameter
        def g(q, p=p):
            return torch.func.functional_call(cell, {n: (q if t is p else t) for n, t in cell.named_parameters()},
                                              (x.detach(), ch.detach(), mask))
        assert torch.autograd.gradcheck(g, (p.detach().clone().requires_grad_(),))
