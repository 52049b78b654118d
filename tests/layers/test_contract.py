"""Contract tests run over every registered cell, so a new cell inherits them: shapes, the state
round trip, padding, reversal, dtype, gradients, and the fused path against the loop."""

import pytest
import torch

from rnnkit import RNN, Recurrent, build_cell
from rnnkit.cells.base import map_state, state_tensors
from rnnkit.layers import reverse_padded

from ..conftest import cell_kwargs

B, T, D, H = 3, 6, 4, 5
LENGTHS = [6, 4, 1]


def make_cell(name, dtype=torch.float64):
    return build_cell(name, D, H, **cell_kwargs(name)).to(dtype)


def loop(cell, x, state=None):
    """A hand-written loop over the public one-step API (the oracle for the layer)."""
    ys = []
    for t in range(x.shape[1]):
        y, state = cell(x[:, t], state)
        ys.append(y)
    return torch.stack(ys, 1), state


def assert_states_close(a, b):
    for u, v in zip(state_tensors(a), state_tensors(b), strict=True):
        torch.testing.assert_close(u, v)


def test_layer_equals_step_loop(cell_name):
    cell = make_cell(cell_name)
    x = torch.randn(B, T, D, dtype=torch.float64)
    out, state = Recurrent(cell)(x)
    out_ref, state_ref = loop(cell, x)
    assert out.shape == (B, T, cell.output_size)
    torch.testing.assert_close(out, out_ref)
    assert_states_close(state, state_ref)


def test_state_round_trip(cell_name):
    """Running T steps at once equals running two chunks with the state carried across."""
    layer = Recurrent(make_cell(cell_name))
    x = torch.randn(B, T, D, dtype=torch.float64)
    out, state = layer(x)
    out1, mid = layer(x[:, :2])
    out2, end = layer(x[:, 2:], mid)
    torch.testing.assert_close(torch.cat([out1, out2], 1), out)
    assert_states_close(end, state)


@pytest.mark.parametrize("reverse", [False, True])
def test_padded_rows_equal_each_sequence_alone(cell_name, reverse):
    layer = Recurrent(make_cell(cell_name), reverse=reverse)
    x = torch.randn(B, T, D, dtype=torch.float64)
    x_padded = x.clone()
    for b, n in enumerate(LENGTHS):
        x_padded[b, n:] = 1e3  # garbage in the padding must not leak anywhere
    out, state = layer(x_padded, lengths=LENGTHS)
    for b, n in enumerate(LENGTHS):
        out_b, state_b = layer(x[b:b + 1, :n])
        torch.testing.assert_close(out[b:b + 1, :n], out_b)
        assert (out[b, n:] == 0).all()
        assert_states_close(map_state(lambda s, b=b: s[b:b + 1], state), state_b)


def test_padding_gets_no_gradient(cell_name):
    layer = Recurrent(make_cell(cell_name))
    x = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
    out, state = layer(x, lengths=LENGTHS)
    (out.sum() + sum(s.sum() for s in state_tensors(state))).backward()
    for b, n in enumerate(LENGTHS):
        assert (x.grad[b, n:] == 0).all()
        assert x.grad[b, :n].abs().sum() > 0


def test_reverse_is_forward_on_flipped_input(cell_name):
    cell = make_cell(cell_name)
    x = torch.randn(B, T, D, dtype=torch.float64)
    out_rev, state_rev = Recurrent(cell, reverse=True)(x, lengths=LENGTHS)
    out_fwd, state_fwd = Recurrent(cell)(reverse_padded(x, torch.tensor(LENGTHS)), lengths=LENGTHS)
    torch.testing.assert_close(out_rev, reverse_padded(out_fwd, torch.tensor(LENGTHS)))
    assert_states_close(state_rev, state_fwd)


def test_dtype_follows_input(cell_name):
    cell = make_cell(cell_name, torch.float32)
    out, state = Recurrent(cell)(torch.randn(B, T, D))
    assert out.dtype == torch.float32
    assert all(s.dtype == torch.float32 for s in state_tensors(state))


def test_gradcheck_through_layer(cell_name):
    torch.manual_seed(1)
    cell = make_cell(cell_name)
    x = torch.randn(2, 4, D, dtype=torch.float64, requires_grad=True)
    layer = Recurrent(cell)
    names = [n for n, _ in layer.named_parameters()]

    def f(x, *params):  # the parameters are arguments, so gradcheck perturbs them too
        out, state = torch.func.functional_call(layer, dict(zip(names, params)), (x,), {"lengths": [4, 2]})
        return out, *state_tensors(state)

    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    assert torch.autograd.gradcheck(f, (x, *params))


def test_stacked_bidirectional_shapes_and_layout(cell_name):
    rnn = RNN(D, H, num_layers=2, cell=cell_name, bidirectional=True, **cell_kwargs(cell_name)).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    out, state = rnn(x, lengths=LENGTHS)
    size = rnn.cells[0].output_size
    assert out.shape == (B, T, 2 * size)
    for s in state_tensors(state):
        assert s.shape[:2] == (4, B)
    # layout: index 2 is the last layer forward, 3 the last layer backward
    fwd_out, bwd_out = out[..., :size], out[..., size:]
    h = state_tensors(state)[0]
    k = h.shape[-1]  # the hidden state leads each output (a memory cell's output goes on with its reads)
    for b, n in enumerate(LENGTHS):
        torch.testing.assert_close(h[2, b], fwd_out[b, n - 1, :k])  # forward: last real step
        torch.testing.assert_close(h[3, b], bwd_out[b, 0, :k])  # backward: after step 0


def test_return_states_gives_every_step(cell_name):
    rnn = RNN(D, H, cell=cell_name, **cell_kwargs(cell_name)).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    out, final, states = rnn(x, lengths=LENGTHS, return_states=True)
    for field, fin in zip(state_tensors(states), state_tensors(final), strict=True):
        for b, n in enumerate(LENGTHS):
            torch.testing.assert_close(field[b, n - 1], fin[0, b])
            assert (field[b, n:] == 0).all()


def test_native_path_equals_loop(cell_name):
    rnn = RNN(D, H, num_layers=2, cell=cell_name, bidirectional=True, **cell_kwargs(cell_name)).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    out, state = rnn(x, lengths=LENGTHS)
    rnn.use_native = False
    out_loop, state_loop = rnn(x, lengths=LENGTHS)
    torch.testing.assert_close(out, out_loop)
    assert_states_close(state, state_loop)
