"""The clockwork RNN and the deep-transition RNN against their equations written out (Koutník et al. 2014;
Pascanu et al. 2014)."""

import torch

from rnnkit import RNN
from rnnkit.cells.hierarchy import ClockworkCell, DeepTransitionCell


def test_clockwork_equals_the_module_schedule_written_out():
    torch.manual_seed(0)
    cell = ClockworkCell(3, 7, periods=(1, 2, 4)).double()  # modules of 3, 2, 2 units
    period = [1, 1, 1, 2, 2, 4, 4]
    module = [0, 0, 0, 1, 1, 2, 2]
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    rnn = RNN(3, 7, cell=ClockworkCell, periods=(1, 2, 4)).double()
    rnn.cells[0].load_state_dict(cell.state_dict())
    out, state = rnn(x)
    W, U, b = cell.weight_hh.detach(), cell.weight_ih.detach(), cell.bias_ih.detach()
    h = torch.zeros(2, 7, dtype=torch.float64)
    for t in range(9):
        new = h.clone()
        for i in range(7):
            if t % period[i] == 0:
                reads = [j for j in range(7) if module[j] >= module[i]]  # slower or equal modules only
                new[:, i] = torch.tanh(h[:, reads] @ W[i, reads] + x[:, t] @ U[i] + b[i])
        h = new
        torch.testing.assert_close(out[:, t], h)
    assert state.t[0, :, 0].tolist() == [9.0, 9.0]


def test_clockwork_slow_module_ignores_fast_units_and_holds_between_ticks():
    torch.manual_seed(1)
    rnn = RNN(2, 4, cell="clockwork", modules=2).double()  # periods 1, 2: units 0-1 fast, 2-3 slow
    x = torch.randn(1, 6, 2, dtype=torch.float64, requires_grad=True)
    out, _ = rnn(x)
    assert torch.equal(out[0, 1, 2:], out[0, 0, 2:]) and torch.equal(out[0, 3, 2:], out[0, 2, 2:])
    (grad,) = torch.autograd.grad(out[0, 2, 2:].sum(), x)  # the slow units at t=2 read x_0 and x_2 only
    assert grad[0, 1].abs().sum() == 0 and grad[0, 2].abs().sum() > 0 and grad[0, 0].abs().sum() > 0


def test_deep_transition_equals_its_equations():
    torch.manual_seed(2)
    cell = DeepTransitionCell(3, 4, depth=3, shortcut=True, deep_output=True, output_size=5).double()
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    y, h_new = cell(x, h)
    w = cell.note_weights()
    b = cell.bias_ih
    z1 = torch.tanh(h @ w["W_1"].T + x @ w["U"].T + b[:4])
    z2 = torch.tanh(cell.inner[0](z1))
    expected = torch.tanh(cell.inner[1](z2) + h @ w["S"].T + x @ w["U_s"].T + b[4:])
    torch.testing.assert_close(h_new, expected)
    torch.testing.assert_close(y, torch.tanh(cell.output_layer(expected)))
    plain = DeepTransitionCell(3, 4, depth=1).double()
    _, h1 = plain(x, h)
    torch.testing.assert_close(h1, torch.tanh(h @ plain.weight_hh.T + x @ plain.weight_ih.T + plain.bias_ih))
    assert RNN(3, 4, num_layers=2, cell="deep-transition", deep_output=True, output_size=6)(
        torch.randn(2, 5, 3))[0].shape == (2, 5, 6)
