"""The layer-normalised LSTM and GRU (rnnkit.cells.layernorm) against Ba et al.'s equations written out with
torch.nn.LayerNorm modules, finite differences, and the property that makes them what they are: the recurrent
term's normalisation does not see the scale of W_h."""

import torch
from torch import nn, tanh
from torch import sigmoid as sigm

from rnnkit import RNN
from rnnkit.cells import LayerNormGRUCell, LayerNormLSTMCell, LSTMState

B, D, H = 3, 4, 6


def randomize(cell):
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0, 0.5)
    return cell.double()


def layer_norm(size, gain, shift=None):
    """A torch.nn.LayerNorm holding ``gain`` (and ``shift``; zeros without)."""
    ln = nn.LayerNorm(size, eps=1e-5).double()
    with torch.no_grad():
        ln.weight.copy_(gain)
        ln.bias.copy_(shift if shift is not None else torch.zeros(size))
    return ln


def test_layernorm_lstm_step_is_ba_et_al():
    cell = randomize(LayerNormLSTMCell(D, H))
    w = cell.note_weights()
    ln_x, ln_h = layer_norm(4 * H, w["gamma_x"]), layer_norm(4 * H, w["gamma_h"])
    ln_c = layer_norm(H, w["gamma_c"], w["beta_c"])
    x, h, c = (torch.randn(B, n, dtype=torch.float64) for n in (D, H, H))
    W_x = torch.cat([w["W_xi"], w["W_xf"], w["W_xg"], w["W_xo"]])
    W_h = torch.cat([w["W_hi"], w["W_hf"], w["W_hg"], w["W_ho"]])
    b = torch.cat([w["b_i"], w["b_f"], w["b_g"], w["b_o"]])
    i, f, g, o = (ln_x(x @ W_x.T) + ln_h(h @ W_h.T) + b).chunk(4, 1)
    c_new = sigm(f) * c + sigm(i) * tanh(g)
    h_new = sigm(o) * tanh(ln_c(c_new))
    y, state = cell(x, LSTMState(h, c))
    torch.testing.assert_close(state.c, c_new, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(state.h, h_new, rtol=1e-10, atol=1e-12)
    assert y is state.h


def test_layernorm_gru_step_is_the_torch_form_with_both_terms_normalised():
    cell = randomize(LayerNormGRUCell(D, H))
    w = cell.note_weights()
    ln_x, ln_h = layer_norm(3 * H, w["gamma_x"]), layer_norm(3 * H, w["gamma_h"])
    x, h = torch.randn(B, D, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    W_x = torch.cat([w["W_xr"], w["W_xz"], w["W_xh"]])
    W_h = torch.cat([w["W_hr"], w["W_hz"], w["W_hh"]])
    a_r, a_z, a_n = (ln_x(x @ W_x.T) + torch.cat([w["b_r"], w["b_z"], w["b_h"]])).chunk(3, 1)
    g_r, g_z, g_n = (ln_h(h @ W_h.T) + torch.cat([w["b_hr"], w["b_hz"], w["b_hh"]])).chunk(3, 1)
    r, z = sigm(a_r + g_r), sigm(a_z + g_z)
    n = tanh(a_n + r * g_n)
    y, h_new = cell(x, h)
    torch.testing.assert_close(h_new, z * h + (1 - z) * n, rtol=1e-10, atol=1e-12)


def test_initial_gains_are_one_and_the_cells_take_the_lstm_options():
    lstm = LayerNormLSTMCell(D, H, forget_bias=1.0)
    assert torch.equal(lstm.ln_x_gain, torch.ones(4 * H)) and torch.equal(lstm.ln_c_shift, torch.zeros(H))
    assert (lstm.bias_ih[H:2 * H] > 0.5).all()  # forget_bias on b's forget block
    gru = LayerNormGRUCell(D, H, bias=False)
    assert torch.equal(gru.ln_h_gain, torch.ones(3 * H)) and gru.bias_ih is None and gru.bias_hh is None
    assert lstm.kernel_family is None and gru.kernel_family is None and gru.native_mode is None


def test_the_recurrent_normalisation_ignores_the_scale_of_the_recurrent_weights():
    """LN(a W_h h) = LN(W_h h) for a > 0, up to ε = 1e-5 beside the term's variance: scaling W_h by 10 or by 100
    changes nothing (the plain LSTM's outputs move by far more)."""
    for name in ("layernorm-lstm", "layernorm-gru", "lstm"):
        torch.manual_seed(0)
        rnn = RNN(D, H, num_layers=2, cell=name).double()
        x = torch.randn(B, 7, D, dtype=torch.float64)
        outs = []
        for scale in (10.0, 10.0):  # ×10, then ×100 in all
            with torch.no_grad():
                for cell in rnn.cells:
                    cell.weight_hh.mul_(scale)
            outs.append(rnn(x)[0])
        moved = (outs[0] - outs[1]).abs().max()
        assert moved < 1e-5 if name != "lstm" else moved > 0.1


def test_gradients_match_finite_differences():
    for name in ("layernorm-lstm", "layernorm-gru"):
        torch.manual_seed(0)
        rnn = RNN(D, H, cell=name, bidirectional=True).double()
        x = torch.randn(2, 5, D, dtype=torch.float64, requires_grad=True)
        params = tuple(rnn.parameters())

        def f(x, *ps):
            out, _ = torch.func.functional_call(rnn, dict(zip([n for n, _ in rnn.named_parameters()], ps)), (x,),
                                                {"lengths": torch.tensor([5, 3])})
            return out

        assert torch.autograd.gradcheck(f, (x, *params))


def test_a_language_models_uniform_initialisation_leaves_the_gains_at_one():
    from rnnkit.models.language_model import LanguageModel

    lm = LanguageModel(30, 8, 8, 2, cell="layernorm-lstm", init_range=0.1)
    for cell in lm.rnn.cells:
        assert torch.equal(cell.ln_h_gain, torch.ones(32)) and torch.equal(cell.ln_c_shift, torch.zeros(8))
        assert cell.weight_hh.abs().max() <= 0.1


def _growth_per_step(cell: str, gain: float | None = None) -> float:
    """How much a 1e-6 perturbation of the inputs grows per step over 27 steps of a 2-layer, H = 16 stack (float64)."""
    torch.manual_seed(0)
    rnn = RNN(6, 16, num_layers=2, cell=cell).double()
    if gain is not None:
        with torch.no_grad():
            for c in rnn.cells:
                c.ln_h_gain.fill_(gain)
    x = torch.randn(4, 30, 6, dtype=torch.float64)
    with torch.no_grad():
        gap = (rnn(x)[0] - rnn(x * (1 + 1e-6 * torch.randn_like(x)))[0]).abs().amax(dim=(0, 2))
    return float(gap[-1] / gap[2]) ** (1 / 27)


def test_a_small_layernorm_lstm_expands_perturbations_at_initialisation():
    assert _growth_per_step("layernorm-lstm") > 1.1
    assert _growth_per_step("layernorm-lstm", gain=0.5) < 1.05
    assert _growth_per_step("lstm") < 1.0
