"""Each cell's step equals a direct transcription of its equations from the lecture notes, written
with the notes' weight names (``cell.note_weights()``), on random inputs and states."""

import math

import pytest
import torch
from torch import sigmoid as sigm
from torch import tanh

from rnnkit.cells import (
    ChoGRUCell,
    DelayCell,
    DelayState,
    ElmanCell,
    GRUCell,
    JordanCell,
    LeakyCell,
    LSTMCell,
    LSTMState,
    MUT1Cell,
    MUT2Cell,
    MUT3Cell,
    PeepholeLSTMCell,
)

B, D, H = 3, 4, 6


def mv(W, v):
    """W v for a batch of row vectors v."""
    return v @ W.T


def close(a, b):
    torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def randomize(cell):
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0, 0.5)
    return cell.double()


@pytest.mark.parametrize("phi", ["tanh", "relu"])
def test_elman_seed000(phi):
    cell = randomize(ElmanCell(D, H, nonlinearity=phi, head_size=2))
    w = cell.note_weights()
    x, h = torch.randn(B, D).double(), torch.randn(B, H).double()
    f = torch.tanh if phi == "tanh" else torch.relu
    expected = f(mv(w["W_hh"], h) + mv(w["W_xh"], x) + w["b"])  # h_t = φ(W_hh h_{t-1} + W_xh x_t + b)
    y, h_new = cell(x, h)
    close(h_new, expected)
    close(y, expected)
    close(cell.head(h_new), mv(w["W_hy"], expected))  # y_t = W_hy h_t


def test_jordan_seed004():
    cell = randomize(JordanCell(D, H, 2, hidden_activation="sigmoid", output_activation="tanh"))
    w = cell.note_weights()
    x, y_prev = torch.randn(B, D).double(), torch.randn(B, 2).double()
    h = sigm(mv(w["W_h"], x) + mv(w["U_h"], y_prev) + w["b_h"])  # h_t = σ_h(W_h x_t + U_h y_{t-1} + b_h)
    y = tanh(mv(w["W_y"], h) + w["b_y"])  # y_t = σ_y(W_y h_t + b_y)
    out, state = cell(x, y_prev)
    close(out, y)
    close(state, y)


@pytest.mark.parametrize("proj", [0, 4])
def test_lstm_seed000(proj):
    cell = randomize(LSTMCell(D, H, proj_size=proj))
    w = cell.note_weights()
    P = proj or H
    x, h, c = torch.randn(B, D).double(), torch.randn(B, P).double(), torch.randn(B, H).double()
    gate = {k: mv(w[f"W_x{k}"], x) + mv(w[f"W_h{k}"], h) + w[f"b_{k}"] for k in "ifgo"}
    i, f, o, g = sigm(gate["i"]), sigm(gate["f"]), sigm(gate["o"]), tanh(gate["g"])
    c_t = f * c + i * g  # c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o * tanh(c_t)  # h_t = o ⊙ tanh(c_t)
    if proj:
        h_t = mv(w["W_hr"], h_t)
    y, (h_new, c_new) = cell(x, LSTMState(h, c))
    close(c_new, c_t)
    close(h_new, h_t)
    close(y, h_t)


def test_lstm_forget_bias_init():
    cell = LSTMCell(D, H, forget_bias=1.0)
    assert cell.note_weights()["b_f"].min() > 1 - 1 / H ** 0.5 - 1e-6


def test_peephole_lstm_gers_schmidhuber():
    cell = randomize(PeepholeLSTMCell(D, H))
    w = cell.note_weights()
    x, h, c = torch.randn(B, D).double(), torch.randn(B, H).double(), torch.randn(B, H).double()
    pre = {k: mv(w[f"W_x{k}"], x) + mv(w[f"W_h{k}"], h) + w[f"b_{k}"] for k in "ifgo"}
    i = sigm(pre["i"] + w["p_i"] * c)  # i sees c_{t-1}
    f = sigm(pre["f"] + w["p_f"] * c)  # f sees c_{t-1}
    c_t = f * c + i * tanh(pre["g"])
    o = sigm(pre["o"] + w["p_o"] * c_t)  # o sees c_t
    _, (h_new, c_new) = cell(x, LSTMState(h, c))
    close(c_new, c_t)
    close(h_new, o * tanh(c_t))


def test_gru_cho_seed000():
    cell = randomize(ChoGRUCell(D, H))
    w = cell.note_weights()
    x, h = torch.randn(B, D).double(), torch.randn(B, H).double()
    r = sigm(mv(w["W_xr"], x) + mv(w["W_hr"], h) + w["b_r"])
    z = sigm(mv(w["W_xz"], x) + mv(w["W_hz"], h) + w["b_z"])
    h_tilde = tanh(mv(w["W_xh"], x) + mv(w["W_hh"], r * h) + w["b_h"])  # reset before the product
    close(cell(x, h)[1], z * h + (1 - z) * h_tilde)


def test_gru_torch_form():
    cell = randomize(GRUCell(D, H))
    w = cell.note_weights()
    x, h = torch.randn(B, D).double(), torch.randn(B, H).double()
    r = sigm(mv(w["W_xr"], x) + w["b_r"] + mv(w["W_hr"], h) + w["b_hr"])
    z = sigm(mv(w["W_xz"], x) + w["b_z"] + mv(w["W_hz"], h) + w["b_hz"])
    n = tanh(mv(w["W_xh"], x) + w["b_h"] + r * (mv(w["W_hh"], h) + w["b_hh"]))  # reset after the product
    close(cell(x, h)[1], z * h + (1 - z) * n)


def test_gru_forms_differ():
    """Same weights, different functions: the reset gate before vs after the recurrent product."""
    cho, torch_form = randomize(ChoGRUCell(D, H)), randomize(GRUCell(D, H))
    with torch.no_grad():
        torch_form.weight_ih.copy_(cho.weight_ih)
        torch_form.bias_ih.copy_(cho.bias_ih)
        torch_form.weight_hh.copy_(torch.cat([cho.weight_hrz, cho.weight_hh]))
        torch_form.bias_hh.zero_()
    x, h = torch.randn(B, D).double(), torch.randn(B, H).double()
    assert (cho(x, h)[1] - torch_form(x, h)[1]).abs().max() > 1e-3


def _mut_inputs(Din=H):
    return torch.randn(B, Din).double(), torch.randn(B, H).double()


def test_mut1_seed000():
    cell = randomize(MUT1Cell(H, H))
    w = cell.note_weights()
    x, h = _mut_inputs()
    z = sigm(mv(w["W_xz"], x) + w["b_z"])
    r = sigm(mv(w["W_xr"], x) + mv(w["W_hr"], h) + w["b_r"])
    expected = tanh(mv(w["W_hh"], r * h) + tanh(x) + w["b_h"]) * z + h * (1 - z)
    close(cell(x, h)[1], expected)


def test_mut2_seed000():
    cell = randomize(MUT2Cell(H, H))
    w = cell.note_weights()
    x, h = _mut_inputs()
    z = sigm(mv(w["W_xz"], x) + mv(w["W_hz"], h) + w["b_z"])
    r = sigm(x + mv(w["W_hr"], h) + w["b_r"])
    expected = tanh(mv(w["W_hh"], r * h) + mv(w["W_xh"], x) + w["b_h"]) * z + h * (1 - z)
    close(cell(x, h)[1], expected)


def test_mut3_seed000():
    cell = randomize(MUT3Cell(D, H))
    w = cell.note_weights()
    x, h = _mut_inputs(D)
    z = sigm(mv(w["W_xz"], x) + mv(w["W_hz"], tanh(h)) + w["b_z"])
    r = sigm(mv(w["W_xr"], x) + mv(w["W_hr"], h) + w["b_r"])
    expected = tanh(mv(w["W_hh"], r * h) + mv(w["W_xh"], x) + w["b_h"]) * z + h * (1 - z)
    close(cell(x, h)[1], expected)


def test_mut_unequal_sizes_use_learned_projection():
    cell = randomize(MUT1Cell(D, H))
    w = cell.note_weights()
    x, h = _mut_inputs(D)
    z = sigm(mv(w["W_xz"], x) + w["b_z"])
    r = sigm(mv(w["W_xr"], x) + mv(w["W_hr"], h) + w["b_r"])
    expected = tanh(mv(w["W_hh"], r * h) + tanh(mv(w["P"], x)) + w["b_h"]) * z + h * (1 - z)
    close(cell(x, h)[1], expected)
    with pytest.raises(ValueError, match="input_size == hidden_size"):
        MUT2Cell(D, H, project_input=False)


@pytest.mark.parametrize("learn", [False, True])
def test_leaky_seed003(learn):
    cell = LeakyCell(D, H, tau=(1.0, 50.0), learn_tau=learn)
    spread = torch.logspace(0, torch.log10(torch.tensor(50.0)), H)  # geometric from 1 to 50
    torch.testing.assert_close(cell.time_constants.detach(), spread, atol=2e-4, rtol=1e-4)
    w = randomize(cell).note_weights()
    tau = w["tau"]
    assert (tau >= 1).all()
    x, s = torch.randn(B, D).double(), torch.randn(B, H).double()
    expected = (1 - 1 / tau) * s + (1 / tau) * tanh(w["b"] + mv(w["W"], s) + mv(w["U"], x))
    close(cell(x, s)[1], expected)


@pytest.mark.parametrize("tau", [[1.1, 3.3, 7.7, 1.0, 2.2, 9.9], (1.3, 40.0), 3.3])
def test_leaky_float64_cell_holds_tau_exactly(tau):
    """Built in float64, τ is exactly the given values (a list, a geometric range, one number), learned or not."""
    H6 = 6
    exact = {list: lambda: torch.tensor(tau, dtype=torch.float64), float: lambda: torch.full((H6,), tau,
             dtype=torch.float64), tuple: lambda: torch.logspace(math.log10(tau[0]), math.log10(tau[1]), H6,
                                                                dtype=torch.float64)}[type(tau)]()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        fixed, learned = LeakyCell(D, H6, tau=tau), LeakyCell(D, H6, tau=tau, learn_tau=True)
    finally:
        torch.set_default_dtype(previous)
    assert fixed.tau.dtype == torch.float64
    torch.testing.assert_close(fixed.time_constants, exact, rtol=0, atol=0)
    excess_above_floor = exact - 1 > 1e-4  # τ = 1 is learned from just above it
    torch.testing.assert_close(learned.time_constants.detach()[excess_above_floor], exact[excess_above_floor],
                               rtol=1e-14, atol=1e-14)
    assert LeakyCell(D, H6, tau=tau).tau.dtype == torch.float32  # and a default cell is float32


def test_leaky_tau_one_is_plain_rnn():
    cell = randomize(LeakyCell(D, H, tau=1.0))
    w = cell.note_weights()
    x, s = torch.randn(B, D).double(), torch.randn(B, H).double()
    close(cell(x, s)[1], tanh(w["b"] + mv(w["W"], s) + mv(w["U"], x)))
    with pytest.raises(ValueError, match=">= 1"):
        LeakyCell(D, H, tau=0.5)


def test_delay_seed003():
    cell = randomize(DelayCell(D, H, delays=(1, 2, 4)))
    w = cell.note_weights()
    x = torch.randn(B, D).double()
    past = [torch.randn(B, H).double() for _ in range(4)]  # h_{t-1} .. h_{t-4}
    state = DelayState(past[0], torch.stack(past[1:], 1))
    expected = tanh(mv(w["W_x"], x) + sum(mv(w[f"W_{d}"], past[d - 1]) for d in (1, 2, 4)) + w["b"])
    _, new = cell(x, state)
    close(new.h, expected)
    close(new.past, torch.stack(past[:3], 1))  # shifted: h_{t-1} .. h_{t-3} become the older ones
