"""Gradient-flow diagnostics point the way the notes say (seed 000: 'K steps back: W^k')."""

import torch

from rnnkit.diagnostics import explain_bptt, gradient_norms, per_step_factor, power_norms, vanilla_cell


def _norms(radius, steps=25):
    x = 1e-5 * torch.randn(2, steps, 1, dtype=torch.float64)
    return gradient_norms(vanilla_cell(16, radius), x).flip(0)  # index = distance T - t


def test_contractive_recurrence_vanishes():
    n = _norms(0.8)
    assert n[-1] < 1e-2 * n[0]
    assert per_step_factor(n) < 0.9
    assert n[len(n) // 2:].max() < n[: len(n) // 4].min()  # far steps get less than near ones


def test_expansive_recurrence_explodes_without_clipping():
    n = _norms(1.5)
    assert n[-1] > 1e2 * n[0]
    assert per_step_factor(n) > 1.2


def test_gradient_norms_match_jacobian_products():
    """For a linear-range tanh RNN, ‖∂L/∂h_t‖ follows the product of Jacobians diag(1 - h²) W_hh."""
    cell = vanilla_cell(6, 1.1)
    x = 1e-3 * torch.randn(1, 8, 1, dtype=torch.float64)
    norms = gradient_norms(cell, x)
    hs, h = [], torch.zeros(1, 6, dtype=torch.float64)
    for t in range(8):
        _, h = cell(x[:, t], h)
        hs.append(h)
    g = torch.ones(1, 6, dtype=torch.float64)  # ∂(Σ h_T)/∂h_T
    expected = [g.norm()]
    for t in range(7, 0, -1):
        g = (g * (1 - hs[t] ** 2)) @ cell.weight_hh.detach()  # back through step t
        expected.append(g.norm())
    torch.testing.assert_close(norms.flip(0), torch.stack(expected))


def test_power_norms_follow_spectral_radius():
    W = vanilla_cell(20, 0.5).weight_hh
    p = power_norms(W, 60)
    assert p[-1] < 1e-10


def test_explain_bptt_writes_plots_and_reading(tmp_path):
    report = explain_bptt(tmp_path, hidden_size=8, steps=20)
    for path in report.plots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.factors["vanilla ρ=0.9"] < 1 < report.factors["vanilla ρ=1.5"]
    # the forget gate sets the LSTM's rate: σ(4) ≈ 0.98 keeps the gradient, σ(1) ≈ 0.73 lets it vanish
    assert report.factors["LSTM b_f=4"] > 0.9 > report.factors["LSTM b_f=1"]
    assert "vanishes" in report.reading() and "explodes" in report.reading()
