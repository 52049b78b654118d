"""HMMs equal hmmlearn on the same parameters: log-likelihoods, posteriors, Viterbi paths, and Baum-Welch."""

import numpy as np
import pytest
from hmmlearn import hmm as hl

from rnnkit.baselines.hmm import CategoricalHMM, GaussianHMM

K = 3
START = np.array([0.6, 0.3, 0.1])
TRANS = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
EMIT = np.array([[0.5, 0.3, 0.1, 0.1], [0.1, 0.1, 0.4, 0.4], [0.25, 0.25, 0.25, 0.25]])
MEANS = np.array([[0.0, 1.0], [3.0, -1.0], [-2.0, 2.0]])
VARS = np.array([[1.0, 0.5], [0.7, 1.2], [2.0, 0.3]])
LENGTHS = [50, 1, 30, 120]  # several sequences of different lengths, one of length 1


def categorical_pair(**fit_options):
    ours = CategoricalHMM(START, TRANS, EMIT)
    ref = hl.CategoricalHMM(n_components=K, init_params="", params="ste", **fit_options)
    ref.startprob_, ref.transmat_, ref.emissionprob_ = START, TRANS, EMIT
    return ours, ref


def gaussian_pair(**fit_options):
    ours = GaussianHMM(START, TRANS, MEANS, VARS)
    # covars_prior=0: plain maximum likelihood (hmmlearn's default adds a small prior to the variances)
    ref = hl.GaussianHMM(n_components=K, covariance_type="diag", init_params="", params="stmc", min_covar=1e-3,
                         covars_prior=0, **fit_options)
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = START, TRANS, MEANS, VARS
    return ours, ref


@pytest.mark.parametrize("pair", [categorical_pair, gaussian_pair])
def test_inference_equals_hmmlearn(pair):
    ours, ref = pair()
    X, _ = ours.sample(sum(LENGTHS), np.random.default_rng(0))
    assert ours.score(X, LENGTHS) == pytest.approx(ref.score(X, LENGTHS), rel=1e-10)
    np.testing.assert_allclose(ours.posteriors(X, LENGTHS), ref.predict_proba(X, LENGTHS), atol=1e-10)
    logprob, path = ours.decode(X, LENGTHS)
    ref_logprob, ref_path = ref.decode(X, LENGTHS, algorithm="viterbi")
    assert logprob == pytest.approx(ref_logprob, rel=1e-10)
    np.testing.assert_array_equal(path, ref_path)


@pytest.mark.parametrize("pair", [categorical_pair, gaussian_pair])
def test_baum_welch_reaches_hmmlearns_likelihood(pair):
    truth, _ = pair()
    X, _ = truth.sample(sum(LENGTHS) * 4, np.random.default_rng(1))
    lengths = [len(X) // 4] * 3 + [len(X) - 3 * (len(X) // 4)]
    ours, ref = pair(n_iter=30, tol=0)  # hmmlearn reads n_iter/tol when it is built
    # the same perturbed start for both
    start_trans = np.full((K, K), 1 / K) * 0.5 + TRANS * 0.5
    ours.transmat = start_trans.copy()
    ref.transmat_ = start_trans.copy()
    history = ours.fit(X, lengths, n_iter=30, tol=0)
    ref.fit(X, lengths)
    assert len(history) == ref.monitor_.iter == 30
    assert all(b >= a - 1e-8 for a, b in zip(history, history[1:]))  # EM is monotone
    assert ours.score(X, lengths) == pytest.approx(ref.score(X, lengths), rel=1e-6)
    np.testing.assert_allclose(ours.transmat, ref.transmat_, atol=1e-6)


def test_long_sequence_does_not_underflow():
    ours, ref = gaussian_pair()
    X, _ = ours.sample(20_000, np.random.default_rng(2))
    assert np.isfinite(ours.score(X))
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-10)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"transmat must be \(3, 3\)"):
        CategoricalHMM(START, TRANS[:2], EMIT)
    with pytest.raises(ValueError, match="symbols must lie in"):
        CategoricalHMM(START, TRANS, EMIT).score(np.array([[0], [7]]))
    with pytest.raises(ValueError, match="lengths must be positive and sum"):
        GaussianHMM(START, TRANS, MEANS, VARS).score(np.zeros((5, 2)), [2, 2])


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_compiled_loops_equal_the_numpy_loops(kind):
    """The numba kernels (when installed) against the NumPy recursions they replace, on random models with
    structural zeros in the transition matrix and sequences of length 1."""
    from rnnkit.baselines import _compiled

    if not _compiled.AVAILABLE:
        pytest.skip("numba is not installed: only the NumPy loops exist")
    rng = np.random.default_rng(3)
    K = 6
    trans = rng.dirichlet(np.ones(K), size=K)
    trans[0, 1] = trans[2, 3] = 0.0  # transitions that never happen
    trans /= trans.sum(1, keepdims=True)
    start = rng.dirichlet(np.ones(K))
    model = (CategoricalHMM(start, trans, rng.dirichlet(np.ones(7), size=K)) if kind == "categorical" else
             GaussianHMM(start, trans, rng.normal(size=(K, 3)) * 2, rng.uniform(0.5, 2, size=(K, 3))))
    lengths = [1, 40, 1, 200, 7]
    X, _ = model.sample(sum(lengths), rng)
    results = {}
    for compiled in (True, False):
        model.compiled = compiled
        copy = (CategoricalHMM(start, trans, model.emissionprob) if kind == "categorical" else
                GaussianHMM(start, trans, model.means, model.variances))
        copy.compiled = compiled
        results[compiled] = (model.score_samples(X, lengths), model.posteriors(X, lengths), model.decode(X, lengths),
                             copy.fit(X, lengths, n_iter=5), copy.transmat)
    fast, slow = results[True], results[False]
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-12)
    np.testing.assert_allclose(fast[1], slow[1], atol=1e-12)
    assert fast[2][0] == pytest.approx(slow[2][0], rel=1e-12) and (fast[2][1] == slow[2][1]).all()
    np.testing.assert_allclose(fast[3], slow[3], rtol=1e-10)
    np.testing.assert_allclose(fast[4], slow[4], atol=1e-10)
    assert fast[4][0, 1] == 0.0  # a structural zero stays zero


def test_full_covariance_gaussian_equals_hmmlearn():
    rng = np.random.default_rng(0)
    B = rng.normal(size=(K, 2, 2))
    covs = B @ B.transpose(0, 2, 1) + 0.5 * np.eye(2)
    ours = GaussianHMM(START, TRANS, MEANS, covs)
    X, _ = ours.sample(sum(LENGTHS), rng)
    ref = hl.GaussianHMM(K, covariance_type="full", init_params="", params="stmc", covars_prior=0, n_iter=10,
                         tol=-np.inf)
    ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = START, TRANS, MEANS, covs
    assert ours.score(X, LENGTHS) == pytest.approx(ref.score(X, LENGTHS), rel=1e-10)
    np.testing.assert_allclose(ours.posteriors(X, LENGTHS), ref.predict_proba(X, LENGTHS), atol=1e-10)
    assert (ours.decode(X, LENGTHS)[1] == ref.decode(X, LENGTHS, algorithm="viterbi")[1]).all()
    history = ours.fit(X, LENGTHS, n_iter=10, tol=-np.inf)
    ref.fit(X, LENGTHS)
    assert history[-1] == pytest.approx(ref.monitor_.history[-1], rel=1e-8)
    np.testing.assert_allclose(ours.variances, ref.covars_, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="symmetric positive definite"):
        GaussianHMM(START, TRANS, MEANS, -covs)
