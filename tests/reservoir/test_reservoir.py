"""Reservoirs and readouts against the notes' equations, direct solves and ReservoirPy."""

import numpy as np
import pytest
import torch

from rnnkit import LeakyCell
from rnnkit.reservoir import (
    ESN,
    CellReservoir,
    DeepReservoir,
    ESNClassifier,
    Reservoir,
    RidgeReadout,
    RLSReadout,
    nrmse,
    random_search,
)
from rnnkit.reservoir.reservoir import spectral_radius_of


@pytest.mark.parametrize("units,connectivity", [(50, 0.2), (400, 0.1)])  # dense eigvals and ARPACK
def test_spectral_radius_is_the_requested_one(units, connectivity):
    r = Reservoir(2, units, spectral_radius=1.1, connectivity=connectivity, seed=3)
    W = r.weight_hh.numpy()
    assert np.abs(np.linalg.eigvals(W)).max() == pytest.approx(1.1, abs=1e-6)
    assert (W != 0).mean() == pytest.approx(connectivity, rel=0.15)
    assert spectral_radius_of(W) == pytest.approx(1.1, abs=1e-6)


def test_update_is_the_leaky_unit_equation():
    """x_t = (1 - a) x_{t-1} + a tanh(W_in u_t + W x_{t-1} + b) (seed 003's leaky unit, a = 1/τ), per-unit a."""
    r = Reservoir(3, 20, spectral_radius=0.9, leak=(0.1, 0.9), bias_scaling=0.5, connectivity=0.3, seed=1)
    u = torch.randn(2, 15, 3, dtype=torch.float64)
    states, final = r(u)
    W, W_in, b, a = r.weight_hh, r.weight_ih, r.bias, r.leak
    assert a.min() == pytest.approx(0.1) and a.max() == pytest.approx(0.9)
    x = torch.zeros(2, 20, dtype=torch.float64)
    for t in range(15):
        x = (1 - a) * x + a * torch.tanh(u[:, t] @ W_in.T + x @ W.T + b)
        torch.testing.assert_close(states[:, t], x, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(final, x)
    # the same as rnnkit's LeakyCell with τ = 1 / a and the reservoir's weights
    torch.set_default_dtype(torch.float64)  # a float64 cell holds τ exactly
    try:
        cell = LeakyCell(3, 20, tau=(1 / a).tolist())
    finally:
        torch.set_default_dtype(torch.float32)
    with torch.no_grad():
        cell.weight_ih.copy_(W_in), cell.weight_hh.copy_(W), cell.bias_ih.copy_(b)
    torch.testing.assert_close(CellReservoir(cell)(u)[0], states, rtol=1e-10, atol=1e-12)


def test_sparse_and_dense_paths_agree():
    r = Reservoir(1, 400, spectral_radius=1.2, leak=0.3, seed=0)  # large and sparse: the CSR product
    assert r._sparse_hh() is not None
    u = torch.randn(3, 50, 1, dtype=torch.float64)
    sparse, _ = r(u)
    r._sparse_hh = lambda: None
    dense, _ = r(u)
    torch.testing.assert_close(sparse, dense, rtol=1e-12, atol=1e-12)
    single, _ = Reservoir(1, 400, spectral_radius=1.2, leak=0.3, seed=0)(u[1])  # batch of one, the vector path
    torch.testing.assert_close(single[0], dense[1], rtol=1e-12, atol=1e-12)


def test_ridge_equals_a_direct_solve_and_accumulates():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(300, 12)), rng.normal(size=(300, 2))
    lam = 0.7
    whole = RidgeReadout()
    whole.add(X, Y)
    whole.solve(lam)
    # direct: centre, then the normal equations with λ on the weights only
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    W = np.linalg.solve(Xc.T @ Xc + lam * np.eye(12), Xc.T @ Yc)
    np.testing.assert_allclose(whole.weight.numpy(), W.T, rtol=1e-10)
    np.testing.assert_allclose(whole.bias.numpy(), Y.mean(0) - X.mean(0) @ W, rtol=1e-10)
    parts = RidgeReadout()
    for chunk in np.array_split(np.arange(300), 7):  # batch by batch: the same solution
        parts.add(X[chunk], Y[chunk])
    parts.solve(lam)
    np.testing.assert_allclose(parts.weight.numpy(), whole.weight.numpy(), rtol=1e-10)
    # λ = 0: ordinary least squares with an intercept
    ols = RidgeReadout()
    ols.add(X, Y)
    ols.solve(0.0)
    coef = np.linalg.lstsq(np.c_[X, np.ones(300)], Y, rcond=None)[0]
    np.testing.assert_allclose(ols.weight.numpy(), coef[:-1].T, rtol=1e-9)


def test_gcv_equals_its_definition_and_picks_a_sensible_ridge():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 30))
    Y = X[:, :3] @ rng.normal(size=(3, 1)) + 0.5 * rng.normal(size=(80, 1))
    readout = RidgeReadout()
    readout.add(X, Y)
    scores = readout.gcv_scores([0.1, 3.0])
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    for lam, score in scores.items():
        H = Xc @ np.linalg.solve(Xc.T @ Xc + lam * np.eye(30), Xc.T)  # the hat matrix of the centred fit
        rss = ((Yc - H @ Yc) ** 2).sum()
        df = 1 + np.trace(H)
        assert score == pytest.approx(rss / 80 / (1 - df / 80) ** 2, rel=1e-8)
    readout.solve("gcv")
    assert 1e-3 < readout.ridge < 1e3  # neither no regularisation nor all of it


def test_rls_converges_to_ridge_with_the_bias_penalised_too():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(400, 6)), rng.normal(size=(400, 2))
    alpha = 0.5
    rls = RLSReadout(6, 2, alpha=alpha)
    rls.add(X, Y)
    Xa = np.c_[X, np.ones(400)]
    W = np.linalg.solve(Xa.T @ Xa + alpha * np.eye(7), Xa.T @ Y)
    np.testing.assert_allclose(rls.weight.numpy(), W[:-1].T, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(rls.bias.numpy(), W[-1], rtol=1e-7, atol=1e-9)


def _mackey_glass():
    from rnnkit.data.series import mackey_glass

    x = mackey_glass(3000)
    return 2 * (x - x.min()) / (x.max() - x.min()) - 1


def test_esn_forecasts_mackey_glass_and_runs_closed_loop():
    x = _mackey_glass()[:, None]
    esn = ESN(Reservoir(1, 300, spectral_radius=1.25, leak=0.3, seed=0), 1)
    esn.fit(x[:2000], x[1:2001], washout=100, ridge=1e-7)
    one_step, _ = esn.predict(x[2000:2500], esn.state)
    assert nrmse(x[2001:2501, 0], one_step[0, :, 0]) < 0.02
    free = esn.generate(x[2000:2400], 30, esn.state)  # warm up on 400 true values, then its own outputs
    assert free.shape == (1, 30, 1)
    assert nrmse(x[2400:2430, 0], free[0, :, 0]) < 0.2


def test_save_and_load_give_the_same_predictions(tmp_path):
    x = _mackey_glass()[:, None]
    esn = ESN(Reservoir(1, 60, spectral_radius=0.9, leak=(0.2, 0.8), seed=4), 1, include_input=True)
    esn.fit(x[:1000], x[1:1001], washout=50, ridge="gcv")
    esn.save(tmp_path / "esn")
    loaded = ESN.load(tmp_path / "esn")
    torch.testing.assert_close(loaded.predict(x[1000:1100])[0], esn.predict(x[1000:1100])[0], rtol=0, atol=0)
    assert loaded.ridge == esn.ridge
    (tmp_path / "esn" / "esn.json").write_text("[]")
    with pytest.raises(ValueError, match="no readable esn.json"):
        ESN.load(tmp_path / "esn")


def test_deep_reservoir_features_are_every_layers_states():
    layers = [Reservoir(1, 30, seed=0), Reservoir(30, 20, seed=1)]
    deep = DeepReservoir(layers)
    u = torch.randn(1, 40, 1, dtype=torch.float64)
    feats, _ = deep(u)
    first, _ = layers[0](u)
    second, _ = layers[1](first)
    torch.testing.assert_close(feats, torch.cat([first, second], -1))
    with pytest.raises(ValueError, match="reads the 30 states below it"):
        DeepReservoir([Reservoir(1, 30), Reservoir(10, 5, connectivity=0.5)])


def test_classifier_separates_sequences_and_pads_without_harm():
    """Two classes of noisy oscillations of any phase and length, around +0.3 or -0.3: the pooled states and a
    ridge classifier separate them; pooling over a padded batch equals pooling each sequence alone."""
    rng = np.random.default_rng(0)
    seqs, labels = [], []
    for i in range(80):
        n = int(rng.integers(20, 40))
        level = 0.3 if i % 2 else -0.3
        seqs.append(level + np.sin(0.4 * np.arange(n) + rng.uniform(0, 6))[:, None] + 0.2 * rng.normal(size=(n, 1)))
        labels.append(i % 2)
    for pooling in ("last", "mean", "both"):
        clf = ESNClassifier(Reservoir(1, 100, spectral_radius=0.9, leak=0.5, input_connectivity=1.0, seed=0), 2,
                            pooling=pooling)
        clf.fit(seqs[:60], labels[:60], ridge=1e-3)
        accuracy = (clf.predict(seqs[60:]).numpy() == np.array(labels[60:])).mean()
        assert accuracy >= (0.9 if pooling != "last" else 0.7), pooling
    batch = clf.pooled(seqs[:10])
    for i in range(10):
        torch.testing.assert_close(batch[i:i + 1], clf.pooled([seqs[i]]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad,match", [
    (dict(spectral_radius=0.0), "spectral_radius must be a finite number > 0"),
    (dict(spectral_radius=float("nan")), "spectral_radius must be a finite number > 0"),
    (dict(leak=1.5), r"leak must be in \(0, 1\]"),
    (dict(connectivity=0.0), r"connectivity must be in \(0, 1\]"),
])
def test_bad_reservoirs_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        Reservoir(1, 20, **bad)


def test_bad_series_are_named():
    esn = ESN(Reservoir(1, 20, seed=0), 1)
    x = np.sin(np.arange(100.0))[:, None]
    with pytest.raises(ValueError, match="washout=100 leaves nothing of a sequence of 99 steps"):
        esn.fit(x[:-1], x[1:], washout=100)
    bad = x.copy()
    bad[10] = np.nan
    with pytest.raises(ValueError, match="the inputs hold NaN or inf"):
        esn.fit(bad[:-1], bad[1:], washout=10)
    with pytest.raises(ValueError, match=r"expected inputs \(time, 1\)"):
        esn.predict(np.zeros((10, 3)))


def test_random_search_returns_the_best_first():
    results = random_search(lambda p: (p["spectral_radius"] - 1.0) ** 2, trials=20, seed=0, progress=False)
    assert len(results) == 20 and results[0][1] == min(v for _, v in results)
    assert abs(results[0][0]["spectral_radius"] - 1.0) < 0.1


def test_states_equal_reservoirpy_with_copied_weights():
    rpy = pytest.importorskip("reservoirpy.nodes")
    reservoir = rpy.Reservoir(50, lr=0.3, sr=1.25, seed=0, bias=0.1)
    u = np.sin(0.3 * np.arange(300.0))[:, None]
    reference = reservoir.run(u)

    def dense(m):
        return m.toarray() if hasattr(m, "toarray") else np.asarray(m)

    ours = Reservoir(1, 50, leak=0.3, weights={"W": dense(reservoir.W), "W_in": dense(reservoir.Win),
                                               "bias": np.broadcast_to(dense(reservoir.bias).ravel(), (50,))})
    states, _ = ours(u)
    np.testing.assert_allclose(states[0].numpy(), reference, rtol=0, atol=1e-10)


def test_float32_reservoir_follows_float64():
    r64 = Reservoir(2, 120, spectral_radius=0.9, leak=0.4, seed=5)
    r32 = Reservoir(2, 120, spectral_radius=0.9, leak=0.4, seed=5, dtype=torch.float32)
    u = np.random.default_rng(0).normal(size=(3, 60, 2))
    s64, _ = r64(u)
    s32, _ = r32(u)
    assert s32.dtype == torch.float32
    torch.testing.assert_close(s32.double(), s64, rtol=1e-4, atol=1e-5)
