"""Orthogonal / identity / spectral-radius recurrences."""

import pytest
import torch

from rnnkit import RNN, ElmanCell, GRUCell, LeakyCell, LSTMCell, MUT2Cell
from rnnkit.cells import init_identity_, init_orthogonal_, init_spectral_radius_, orthogonal_recurrence, spectral_radius


def test_orthogonal_recurrence_stays_orthogonal_while_training():
    rnn = RNN(3, 8, cell="rnn")
    orthogonal_recurrence(rnn.cells[0])
    opt = torch.optim.SGD(rnn.parameters(), lr=0.5)
    for _ in range(5):
        out, _ = rnn(torch.randn(4, 10, 3))
        opt.zero_grad()
        out.pow(2).sum().backward()
        opt.step()
    W = rnn.cells[0].weight_hh.detach()
    torch.testing.assert_close(W @ W.T, torch.eye(8), atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", [ElmanCell(3, 8), LeakyCell(3, 8), MUT2Cell(8, 8)])
def test_orthogonal_recurrence_any_square_cell(cell):
    orthogonal_recurrence(cell)
    W = cell.weight_hh.detach()
    torch.testing.assert_close(W.T @ W, torch.eye(8), atol=1e-5, rtol=0)
    cell(torch.randn(2, cell.input_size))


def test_orthogonal_recurrence_rejects_stacked_gates():
    with pytest.raises(ValueError, match=r"square weight_hh; LSTMCell has \(32, 8\)"):
        orthogonal_recurrence(LSTMCell(3, 8))


def test_block_initialisations():
    gru = init_orthogonal_(GRUCell(3, 8))
    for block in gru.weight_hh.detach().split(8):
        torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
    irnn = init_identity_(ElmanCell(3, 8, nonlinearity="relu"))
    assert torch.equal(irnn.weight_hh.detach(), torch.eye(8))
    esn_like = init_spectral_radius_(ElmanCell(3, 50), 1.2)
    assert spectral_radius(esn_like.weight_hh) == pytest.approx(1.2, rel=1e-5)


def test_elman_init_and_orthogonal_options_through_cell_options():
    from rnnkit.config import build_config
    from rnnkit.registry import build_cell

    irnn = build_cell("rnn", 3, 4, nonlinearity="relu", init="identity")
    assert torch.equal(irnn.weight_hh.detach(), torch.eye(4)) and (irnn.bias_ih == 0).all()
    ortho = build_cell("rnn", 3, 4, orthogonal=True)
    opt = torch.optim.SGD(ortho.parameters(), lr=0.5)
    for _ in range(5):
        y, _ = ortho(torch.randn(2, 3))
        opt.zero_grad()
        y.sum().backward()
        opt.step()
    W = ortho.weight_hh.detach()
    torch.testing.assert_close(W @ W.T, torch.eye(4), atol=1e-5, rtol=0)
    config = build_config(None, {"model.cell": "rnn", "model.cell_options": 'init = "orthogonal", orthogonal = true'})
    assert config.model.cell_options == {"init": "orthogonal", "orthogonal": True}
    with pytest.raises(ValueError, match="init must be 'uniform', 'identity' or 'orthogonal'"):
        build_cell("rnn", 3, 4, init="zeros")
