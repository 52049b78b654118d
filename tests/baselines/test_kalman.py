"""The Kalman filter equals statsmodels' on the same matrices; the smoother, EM and forecasts behave."""

from dataclasses import replace

import numpy as np
import pytest
from statsmodels.tsa.statespace.kalman_filter import KalmanFilter

from rnnkit.baselines.kalman import (
    LDSParams,
    em,
    forecast,
    initial_params,
    kalman_filter,
    log_likelihood,
    rts_smoother,
    simulate,
)


def random_params(k=3, p=2, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(k, k))
    A *= 0.9 / np.abs(np.linalg.eigvals(A)).max()
    B = rng.normal(size=(k, k))
    D = rng.normal(size=(p, p))
    return LDSParams(A=A, C=rng.normal(size=(p, k)), Q=B @ B.T / k + 0.1 * np.eye(k), R=D @ D.T / p + 0.1 * np.eye(p),
                     mu0=rng.normal(size=k), P0=np.eye(k) * 2.0)


def statsmodels_filter(ys, params):
    k, p = params.A.shape[0], params.C.shape[0]
    kf = KalmanFilter(k_endog=p, k_states=k, design=params.C, transition=params.A, selection=np.eye(k),
                      state_cov=params.Q, obs_cov=params.R)
    kf.initialize_known(params.mu0, params.P0)
    kf.bind(ys.copy())
    return kf.filter()


@pytest.mark.parametrize("k,p", [(1, 1), (3, 2), (2, 4)])
def test_filter_equals_statsmodels(k, p):
    params = random_params(k, p, seed=k + p)
    _, ys = simulate(params, 60, np.random.default_rng(1))
    ours = kalman_filter(ys, params)
    ref = statsmodels_filter(ys, params)
    np.testing.assert_allclose(ours.means, ref.filtered_state.T, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ours.covs, ref.filtered_state_cov.transpose(2, 0, 1), rtol=1e-8, atol=1e-9)
    assert ours.loglik == pytest.approx(ref.llf_obs.sum(), rel=1e-10)


def test_missing_observations_equal_statsmodels():
    params = random_params(2, 1, seed=3)
    _, ys = simulate(params, 40, np.random.default_rng(2))
    ys[[5, 6, 20]] = np.nan
    ours, ref = kalman_filter(ys, params), statsmodels_filter(ys, params)
    np.testing.assert_allclose(ours.means, ref.filtered_state.T, rtol=1e-8, atol=1e-9)
    assert ours.loglik == pytest.approx(ref.llf_obs.sum(), rel=1e-10)


def test_partly_missing_rows_use_their_observed_entries_as_statsmodels():
    params = random_params(3, 3, seed=4)
    _, ys = simulate(params, 50, np.random.default_rng(5))
    rng = np.random.default_rng(6)
    ys[rng.random(ys.shape) < 0.3] = np.nan  # entries missing here and there; some rows wholly
    ys[10] = np.nan
    assert np.isnan(ys).any(1).sum() > np.isnan(ys).all(1).sum()  # partly missing rows exist
    ours, ref = kalman_filter(ys, params), statsmodels_filter(ys, params)
    np.testing.assert_allclose(ours.means, ref.filtered_state.T, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ours.covs, ref.filtered_state_cov.transpose(2, 0, 1), rtol=1e-8, atol=1e-9)
    assert ours.loglik == pytest.approx(ref.llf_obs.sum(), rel=1e-10)


def test_smoother_equals_statsmodels():
    params = random_params(3, 2, seed=5)
    _, ys = simulate(params, 50, np.random.default_rng(3))
    ours = rts_smoother(kalman_filter(ys, params), params)
    k = 3
    kf = KalmanFilter(k_endog=2, k_states=k, design=params.C, transition=params.A, selection=np.eye(k),
                      state_cov=params.Q, obs_cov=params.R)
    kf.initialize_known(params.mu0, params.P0)
    from statsmodels.tsa.statespace.kalman_smoother import KalmanSmoother

    ks = KalmanSmoother(k_endog=2, k_states=k, design=params.C, transition=params.A, selection=np.eye(k),
                        state_cov=params.Q, obs_cov=params.R)
    ks.initialize_known(params.mu0, params.P0)
    ks.bind(ys.copy())
    ref = ks.smooth()
    np.testing.assert_allclose(ours.means, ref.smoothed_state.T, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(ours.covs, ref.smoothed_state_cov.transpose(2, 0, 1), rtol=1e-7, atol=1e-8)
    # lag-one covariance Cov(x_{t+1}, x_t | Y) as statsmodels reports it
    np.testing.assert_allclose(ours.cross_covs, ref.smoothed_state_autocov.transpose(2, 0, 1)[:-1], rtol=1e-6,
                               atol=1e-8)


def test_em_increases_likelihood_and_approaches_the_truth():
    true = random_params(2, 3, seed=7)
    rng = np.random.default_rng(4)
    seqs = [simulate(true, T, rng)[1] for T in (300, 250, 200)]  # several sequences of different lengths
    fitted, history = em(seqs, initial_params(seqs, 2), iterations=150)
    assert all(b >= a - 1e-6 for a, b in zip(history, history[1:]))  # EM never decreases the likelihood
    true_ll = sum(log_likelihood(y, true) for y in seqs)
    fitted_ll = sum(log_likelihood(y, fitted) for y in seqs)
    assert fitted_ll > true_ll - 5  # maximum likelihood: at least as good as the generating parameters
    # the transition's spectrum is identifiable (A is only up to a change of basis)
    np.testing.assert_allclose(np.sort(np.abs(np.linalg.eigvals(fitted.A))),
                               np.sort(np.abs(np.linalg.eigvals(true.A))), atol=0.15)


@pytest.mark.parametrize("fixed", [("C",), ("A",), ("A", "C")])
def test_em_m_step_with_fixed_matrices(fixed):
    """With C (A) held at a value that is not its ML estimate, R (Q) is still the expected residual covariance
    1/T Σ E[(y_t - C x_t)(y_t - C x_t)ᵀ] = 1/T Σ (y_t - C m_t)(y_t - C m_t)ᵀ + C P_t Cᵀ under the smoother; and
    the likelihood never decreases."""
    true = random_params(2, 3, seed=8)
    _, ys = simulate(true, 200, np.random.default_rng(9))
    start = replace(initial_params([ys], 2), A=true.A * 0.8, C=true.C + 0.3)
    after, history = em(ys, start, iterations=1, fixed=fixed)
    s = rts_smoother(kalman_filter(ys, start), start)
    C, A = after.C, after.A  # the fixed ones, or the new ML ones
    res = ys - s.means @ C.T
    R = (res.T @ res + np.einsum("ij,tjk,lk->il", C, s.covs, C)) / len(ys)
    w = s.means[1:] - s.means[:-1] @ A.T  # E[x_t - A x_{t-1}] and its covariance from the smoother
    cov_w = s.covs[1:] - np.einsum("tij,kj->tik", s.cross_covs, A) - np.einsum("ij,tkj->tik", A, s.cross_covs) + \
        np.einsum("ij,tjk,lk->til", A, s.covs[:-1], A)
    Q = (w.T @ w + cov_w.sum(0)) / (len(ys) - 1)
    np.testing.assert_allclose(after.R, R, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(after.Q, Q, rtol=1e-6, atol=1e-8)
    for name in fixed:
        np.testing.assert_array_equal(getattr(after, name), getattr(start, name))
    _, longer = em(ys, start, iterations=30, fixed=fixed)
    assert all(b >= a - 1e-6 for a, b in zip(longer, longer[1:]))


def test_forecast_matches_propagation_and_grows_uncertain():
    params = random_params(2, 1, seed=9)
    _, ys = simulate(params, 80, np.random.default_rng(5))
    f = kalman_filter(ys, params)
    means, covs = forecast(f, params, 5)
    m = params.A @ f.means[-1]
    np.testing.assert_allclose(means[0], params.C @ m)
    assert covs[-1, 0, 0] > covs[0, 0, 0]  # uncertainty grows with the horizon


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"LDSParams.Q must have shape \(2, 2\)"):
        LDSParams(A=np.eye(2), C=np.ones((1, 2)), Q=np.eye(3), R=np.eye(1), mu0=np.zeros(2), P0=np.eye(2))


@pytest.mark.parametrize("k,p", [(1, 1), (4, 2), (16, 5)])  # written-out loops, and BLAS above 12 states
def test_compiled_filter_equals_the_numpy_loop(k, p):
    from rnnkit.baselines import _compiled

    if not _compiled.AVAILABLE:
        pytest.skip("numba is not installed: only the NumPy loop exists")
    params = random_params(k, p, seed=k)
    _, ys = simulate(params, 80, np.random.default_rng(k))
    ys[np.random.default_rng(0).random(ys.shape) < 0.2] = np.nan  # partly and wholly missing rows
    ys[0] = np.nan
    fast, slow = kalman_filter(ys, params, tolerance=0.0), kalman_filter(ys, params, compiled=False)
    for name in ("means", "covs", "pred_means", "pred_covs"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-10, atol=1e-12, err_msg=name)
    assert fast.loglik == pytest.approx(slow.loglik, rel=1e-12)


@pytest.mark.parametrize("k,p", [(1, 1), (4, 2), (16, 5)])
def test_compiled_smoother_equals_the_numpy_loop(k, p):
    from rnnkit.baselines import _compiled

    if not _compiled.AVAILABLE:
        pytest.skip("numba is not installed: only the NumPy loop exists")
    params = random_params(k, p, seed=k + 1)
    _, ys = simulate(params, 60, np.random.default_rng(k))
    filtered = kalman_filter(ys, params, tolerance=0.0)
    fast, slow = rts_smoother(filtered, params, tolerance=0.0), rts_smoother(filtered, params, compiled=False)
    for name in ("means", "covs", "cross_covs"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-9, atol=1e-11, err_msg=name)


def test_many_series_at_once_equal_one_by_one():
    from rnnkit.baselines.kalman import kalman_filter_many

    params = random_params(3, 2, seed=11)
    rng = np.random.default_rng(12)
    series = [simulate(params, T, rng)[1] for T in (1, 40, 7, 120)]
    series[2][3, 0] = np.nan
    together = kalman_filter_many(series, params, tolerance=0.0)
    for ys, result in zip(series, together):
        alone = kalman_filter(ys, params, compiled=False)
        np.testing.assert_allclose(result.means, alone.means, rtol=1e-10, atol=1e-12)
        assert result.loglik == pytest.approx(alone.loglik, rel=1e-12)


@pytest.mark.parametrize("k,p", [(2, 1), (4, 2), (16, 5)])
def test_steady_state_equals_statsmodels_and_every_step_computed(k, p):
    """Fully observed stretches reach the steady state (covariances then stop changing), a missing row leaves it
    and the filter converges again; statsmodels does the same, and both stay within 1e-9 of every step computed
    (the covariance had moved by less than √1e-19 when it was kept)."""
    from rnnkit.baselines import _compiled

    if not _compiled.AVAILABLE:
        pytest.skip("numba is not installed: only the NumPy loop exists")
    params = random_params(k, p, seed=k + 7)
    _, ys = simulate(params, 600, np.random.default_rng(k))
    ys[250, 0] = np.nan  # partly missing: leaves the steady state
    ys[400] = np.nan  # wholly missing
    steady, every = kalman_filter(ys, params), kalman_filter(ys, params, tolerance=0.0)
    for t in (240, 390, 599):  # converged before each missing row and at the end: the same matrix kept
        assert np.array_equal(steady.covs[t], steady.covs[t - 1])
        assert np.array_equal(steady.pred_covs[t], steady.pred_covs[t - 1])
    assert not np.array_equal(steady.covs[250], steady.covs[249])
    for name in ("means", "covs", "pred_means", "pred_covs"):
        np.testing.assert_allclose(getattr(steady, name), getattr(every, name), rtol=1e-8, atol=1e-9, err_msg=name)
    assert steady.loglik == pytest.approx(every.loglik, rel=1e-12)
    ref = statsmodels_filter(ys, params)
    np.testing.assert_allclose(steady.means, ref.filtered_state.T, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(steady.covs, ref.filtered_state_cov.transpose(2, 0, 1), rtol=1e-8, atol=1e-9)
    assert steady.loglik == pytest.approx(ref.llf_obs.sum(), rel=1e-12)


@pytest.mark.parametrize("k,p", [(2, 1), (4, 2), (16, 5)])
def test_steady_state_smoother_equals_statsmodels_and_every_step_computed(k, p):
    """Where the filter kept its covariances the smoother's gain repeats and its covariance converges backwards;
    the result stays within 1e-8 of every step computed and of statsmodels' smoother, missing rows included."""
    from statsmodels.tsa.statespace.kalman_smoother import KalmanSmoother

    from rnnkit.baselines import _compiled

    if not _compiled.AVAILABLE:
        pytest.skip("numba is not installed: only the NumPy loop exists")
    params = random_params(k, p, seed=k + 3)
    _, ys = simulate(params, 500, np.random.default_rng(k + 1))
    ys[200, 0] = np.nan
    ys[330] = np.nan
    steady = rts_smoother(kalman_filter(ys, params), params)
    every = rts_smoother(kalman_filter(ys, params, tolerance=0.0), params, tolerance=0.0)
    assert np.array_equal(steady.covs[100], steady.covs[101])  # kept in the steady stretch
    for name in ("means", "covs", "cross_covs"):
        np.testing.assert_allclose(getattr(steady, name), getattr(every, name), rtol=1e-8, atol=1e-9, err_msg=name)
    ks = KalmanSmoother(k_endog=p, k_states=k, design=params.C, transition=params.A, selection=np.eye(k),
                        state_cov=params.Q, obs_cov=params.R)
    ks.initialize_known(params.mu0, params.P0)
    ks.bind(ys.copy())
    ref = ks.smooth()
    np.testing.assert_allclose(steady.means, ref.smoothed_state.T, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(steady.covs, ref.smoothed_state_cov.transpose(2, 0, 1), rtol=1e-7, atol=1e-8)
