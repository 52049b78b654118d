"""The fused kernel on padded batches (rows sorted by length, one call per distinct length) equals rnnkit's own
masked loop: outputs, final states and gradients, with many distinct lengths, an initial state, stacks and both
directions."""

import pytest
import torch

from rnnkit import RNN
from rnnkit.cells.base import state_tensors


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_native_by_length_equals_the_loop(cell, bidirectional, layers):
    torch.manual_seed(0)
    rnn = RNN(5, 7, num_layers=layers, cell=cell, bidirectional=bidirectional).double()
    B, T = 9, 11
    lengths = torch.tensor([11, 3, 3, 7, 1, 11, 5, 2, 9])
    x = torch.randn(B, T, 5, dtype=torch.double, requires_grad=True)
    h0 = tuple(t.double().normal_() for t in state_tensors(rnn.initial_state(B)))
    h0 = h0 if cell == "lstm" else h0[0]
    results = []
    for native in (True, False):
        rnn.use_native = native
        out, final = rnn(x, h0, lengths=lengths)
        loss = out.pow(2).sum() + sum(t.pow(3).sum() for t in state_tensors(final))
        grads = torch.autograd.grad(loss, [x, *rnn.parameters()])
        results.append((out, state_tensors(final), grads))
    (o1, f1, g1), (o2, f2, g2) = results
    torch.testing.assert_close(o1, o2)
    for a, b in zip(f1, f2):
        torch.testing.assert_close(a, b)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
    assert o1[1, 3:].abs().sum() == 0  # zero at padded steps
