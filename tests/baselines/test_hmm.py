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
