"""Speed and agreement of rnnkit's HMM and Kalman filter against hmmlearn and statsmodels on the same inputs,
timed alternately in one process (ratios = reference time / rnnkit time; > 1 means rnnkit is faster).

Usage: ``python benchmarks/bench_baselines.py``
"""

from __future__ import annotations

import numpy as np
from bench_cells import timed
from hmmlearn import hmm as hl
from statsmodels.tsa.statespace.kalman_filter import KalmanFilter

from rnnkit.baselines.hmm import GaussianHMM
from rnnkit.baselines.kalman import LDSParams, kalman_filter, simulate


def hmm_rows():
    rng = np.random.default_rng(0)
    rows = []
    for K, T in ((3, 5_000), (10, 5_000), (10, 50_000)):
        start = np.full(K, 1 / K)
        trans = rng.dirichlet(np.ones(K) * 5, size=K) * 0.5 + np.eye(K) * 0.5
        means = rng.normal(size=(K, 2)) * 3
        variances = rng.uniform(0.5, 2, size=(K, 2))
        ours = GaussianHMM(start, trans, means, variances)
        X, _ = ours.sample(T, rng)
        ref = hl.GaussianHMM(K, covariance_type="diag", init_params="", params="stmc", covars_prior=0)
        ref.startprob_, ref.transmat_, ref.means_, ref.covars_ = start, trans, means, variances
        t_ours, t_ref = timed(lambda: ours.score(X)), timed(lambda: ref.score(X))
        diff = abs(ours.score(X) - ref.score(X))
        rows.append((f"HMM forward (log-likelihood), K={K}, T={T:,}", t_ours, t_ref, f"|Δ loglik| = {diff:.1e}"))
        _, p1 = ours.decode(X)
        _, p2 = ref.decode(X, algorithm="viterbi")
        t_ours = timed(lambda: ours.decode(X), 3)
        t_ref = timed(lambda: ref.decode(X, algorithm="viterbi"), 3)
        rows.append((f"HMM Viterbi, K={K}, T={T:,}", t_ours, t_ref, f"paths equal: {bool((p1 == p2).all())}"))

        def em_ours():
            GaussianHMM(start, trans, means, variances).fit(X, n_iter=5, tol=-np.inf)

        def em_ref():
            m = hl.GaussianHMM(K, covariance_type="diag", init_params="", params="stmc", covars_prior=0, n_iter=5,
                               tol=-np.inf)
            m.startprob_, m.transmat_, m.means_, m.covars_ = start, trans, means, variances
            m.fit(X)

        rows.append((f"HMM Baum-Welch, 5 iterations, K={K}, T={T:,}", timed(em_ours, 3), timed(em_ref, 3), ""))
    return rows


def kalman_rows():
    rows = []
    rng = np.random.default_rng(1)
    for k, p, T in ((2, 1, 2_000), (4, 2, 5_000), (10, 5, 5_000)):
        A = rng.normal(size=(k, k))
        A *= 0.95 / np.abs(np.linalg.eigvals(A)).max()
        params = LDSParams(A=A, C=rng.normal(size=(p, k)), Q=np.eye(k) * 0.3, R=np.eye(p) * 0.5,
                           mu0=np.zeros(k), P0=np.eye(k))
        _, ys = simulate(params, T, rng)

        def ref():
            kf = KalmanFilter(k_endog=p, k_states=k, design=params.C, transition=params.A, selection=np.eye(k),
                              state_cov=params.Q, obs_cov=params.R)
            kf.initialize_known(params.mu0, params.P0)
            kf.bind(ys.copy())
            return kf.filter()

        ours, theirs = kalman_filter(ys, params), ref()
        diff = np.abs(ours.means - theirs.filtered_state.T).max()
        rows.append((f"Kalman filter, k={k}, p={p}, T={T:,}", timed(lambda: kalman_filter(ys, params)), timed(ref),
                     f"max |Δ mean| = {diff:.1e}, |Δ loglik| = {abs(ours.loglik - theirs.llf_obs.sum()):.1e}"))
    return rows


def main() -> None:
    print("| task | rnnkit (s) | reference (s) | reference / rnnkit | agreement |")
    print("|---|---:|---:|---:|---|")
    for name, ours, ref, note in hmm_rows():
        print(f"| {name} (vs hmmlearn) | {ours:.4f} | {ref:.4f} | {ref / ours:.2f}x | {note} |", flush=True)
    for name, ours, ref, note in kalman_rows():
        print(f"| {name} (vs statsmodels) | {ours:.4f} | {ref:.4f} | {ref / ours:.2f}x | {note} |", flush=True)


if __name__ == "__main__":
    main()
