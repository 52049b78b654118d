"""Speed and agreement of rnnkit's HMM and Kalman filter against hmmlearn and statsmodels on the same inputs,
timed alternately in one process (ratios = reference time / rnnkit time; > 1 means rnnkit is faster).

Usage: ``python benchmarks/bench_baselines.py [--only hmm|kalman]``
"""

from __future__ import annotations

import numpy as np
from bench_cells import timed
from hmmlearn import hmm as hl
from statsmodels.tsa.statespace.kalman_filter import KalmanFilter

from rnnkit.baselines.hmm import CategoricalHMM, GaussianHMM
from rnnkit.baselines.kalman import LDSParams, kalman_filter, kalman_filter_many, rts_smoother, simulate


def _categorical(K, M, rng):
    start = rng.dirichlet(np.ones(K))
    trans = rng.dirichlet(np.ones(K), size=K) * 0.5 + np.eye(K) * 0.5
    return start, trans, rng.dirichlet(np.ones(M), size=K)


def hmm_rows():
    """CategoricalHMM K=8, M=20, 50 sequences x 400 steps (and K=64; and scoring 1,000 sequences), GaussianHMM
    (diagonal) K=8, D=4 on the same layout: score, Viterbi, 20 Baum-Welch iterations."""
    rng = np.random.default_rng(0)
    rows = []
    for K, n_seq in ((8, 50), (64, 50), (8, 1000)):
        start, trans, emit = _categorical(K, 20, rng)
        ours = CategoricalHMM(start, trans, emit)
        lengths = [400] * n_seq
        X, _ = ours.sample(sum(lengths), rng)
        ref = hl.CategoricalHMM(n_components=K, init_params="", params="ste")
        ref.startprob_, ref.transmat_, ref.emissionprob_ = start, trans, emit
        label = f"categorical K={K}, M=20, {n_seq} x 400"
        diff = abs(ours.score(X, lengths) - ref.score(X, lengths))
        rows.append((f"HMM score, {label}", timed(lambda: ours.score(X, lengths)),
                     timed(lambda: ref.score(X, lengths)), f"|Δ loglik| = {diff:.1e}"))
        if n_seq > 50:
            continue
        rows.append((f"HMM posteriors, {label}", timed(lambda: ours.posteriors(X, lengths)),
                     timed(lambda: ref.predict_proba(X, lengths)),
                     f"max |Δ| = {np.abs(ours.posteriors(X, lengths) - ref.predict_proba(X, lengths)).max():.1e}"))
        same = bool((ours.decode(X, lengths)[1] == ref.decode(X, lengths, algorithm="viterbi")[1]).all())
        rows.append((f"HMM Viterbi, {label}", timed(lambda: ours.decode(X, lengths)),
                     timed(lambda: ref.decode(X, lengths, algorithm="viterbi")), f"paths equal: {same}"))

        def em_ours():
            return CategoricalHMM(start, trans, emit).fit(X, lengths, n_iter=20, tol=-np.inf)

        def em_ref():
            m = hl.CategoricalHMM(n_components=K, init_params="", params="ste", n_iter=20, tol=-np.inf)
            m.startprob_, m.transmat_, m.emissionprob_ = start, trans, emit
            return m.fit(X, lengths)

        repeats = 1 if K > 8 else 3  # hmmlearn takes ~35 s for K = 64
        rows.append((f"HMM Baum-Welch 20 iterations, {label}", timed(em_ours, repeats), timed(em_ref, repeats), ""))
    K, D = 8, 4
    start, trans, _ = _categorical(K, 2, rng)
    means, variances = rng.normal(size=(K, D)) * 3, rng.uniform(0.5, 2, size=(K, D))
    lengths = [400] * 50
    X, _ = GaussianHMM(start, trans, means, variances).sample(sum(lengths), rng)

    B = rng.normal(size=(K, D, D))
    for kind, covariances in (("diagonal", variances), ("full", B @ B.transpose(0, 2, 1) + np.eye(D))):
        def ours(covariances=covariances):
            return GaussianHMM(start, trans, means, covariances).fit(X, lengths, n_iter=20, tol=-np.inf)

        def ref(covariances=covariances, kind=kind):
            m = hl.GaussianHMM(K, covariance_type="diag" if kind == "diagonal" else "full", init_params="",
                               params="stmc", covars_prior=0, n_iter=20, tol=-np.inf)
            m.startprob_, m.transmat_, m.means_, m.covars_ = start, trans, means, covariances
            return m.fit(X, lengths)

        agree = abs(ours()[-1] - ref().monitor_.history[-1])
        rows.append((f"HMM Baum-Welch 20 iterations, Gaussian {kind} K={K}, D={D}, 50 x 400", timed(ours, 3),
                     timed(ref, 3), f"|Δ final loglik| = {agree:.1e}"))
    return rows


def kalman_rows():
    rows = []
    rng = np.random.default_rng(1)
    for k, p, T in ((4, 2, 20_000), (10, 5, 5_000), (32, 16, 5_000)):
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
        if k in (4, 32):
            rows.append(smoother_row(params, ys))
            rows.append(em_row(params, ys))
        if k == 4:
            rows.append(many_row(params, rng))
    return rows


def _statsmodels(params, cls):
    k, p = params.A.shape[0], params.C.shape[0]
    kf = cls(k_endog=p, k_states=k, design=params.C, transition=params.A, selection=np.eye(k), state_cov=params.Q,
             obs_cov=params.R)
    kf.initialize_known(params.mu0, params.P0)
    return kf


def smoother_row(params, ys):
    from statsmodels.tsa.statespace.kalman_smoother import KalmanSmoother

    def ref():
        ks = _statsmodels(params, KalmanSmoother)
        ks.bind(ys.copy())
        return ks.smooth()

    def ours():
        return rts_smoother(kalman_filter(ys, params), params)

    diff = np.abs(ours().means - ref().smoothed_state.T).max()
    k, p = params.A.shape[0], params.C.shape[0]
    return (f"Kalman filter + RTS smoother, k={k}, p={p}, T={len(ys):,}", timed(ours), timed(ref),
            f"max |Δ smoothed mean| = {diff:.1e}")


def em_row(params, ys, iterations: int = 5):
    """EM iterations. statsmodels has no EM for this model: its reference is the same iteration with statsmodels'
    smoother as the E-step (filter + smoother) and rnnkit's sums and M-step, so the two differ only where the
    E-step runs."""
    from statsmodels.tsa.statespace.kalman_smoother import KalmanSmoother

    from rnnkit.baselines.kalman import em, m_step, moment_sums

    def ref():
        p = params
        for _ in range(iterations):
            ks = _statsmodels(p, KalmanSmoother)
            ks.bind(ys.copy())
            r = ks.smooth()
            stats = moment_sums(ys, r.smoothed_state.T, r.smoothed_state_cov.transpose(2, 0, 1),
                                r.smoothed_state_autocov.transpose(2, 0, 1)[:-1])
            p = m_step(stats, p)
        return p

    def ours():
        return em(ys, params, iterations=iterations, tol=0.0)[0]

    diff = np.abs(ours().A - ref().A).max()
    k, p = params.A.shape[0], params.C.shape[0]
    return (f"Kalman EM, {iterations} iterations, k={k}, p={p}, T={len(ys):,}", timed(ours, 3), timed(ref, 3),
            f"max |Δ A| after {iterations} = {diff:.1e}")


def many_row(params, rng, n: int = 1000, T: int = 200):
    series = [simulate(params, T, rng)[1] for _ in range(n)]

    def ref():
        out = []
        for ys in series:
            kf = _statsmodels(params, KalmanFilter)
            kf.bind(ys.copy())
            out.append(kf.filter().llf_obs.sum())
        return out

    ours = kalman_filter_many(series, params)
    diff = max(abs(a.loglik - b) for a, b in zip(ours, ref()))
    k, p = params.A.shape[0], params.C.shape[0]
    t_ours = timed(lambda: kalman_filter_many(series, params), 3)
    name = f"Kalman filter of {n:,} series x {T} steps, k={k}, p={p}"
    return name, t_ours, timed(ref, 3), f"max |Δ loglik| = {diff:.1e}"


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=["hmm", "kalman"], help="one half of the table")
    args = p.parse_args()
    from importlib.metadata import version

    from rnnkit.precision import cpu_model

    print(f"CPU: {cpu_model()}; numba {version('numba')}, hmmlearn {version('hmmlearn')}, "
          f"statsmodels {version('statsmodels')}, numpy {version('numpy')}\n")
    print("| task | rnnkit (s) | reference (s) | reference / rnnkit | agreement |")
    print("|---|---:|---:|---:|---|")
    for name, ours, ref, note in (hmm_rows() if args.only != "kalman" else []):
        print(f"| {name} (vs hmmlearn) | {ours:.4f} | {ref:.4f} | {ref / ours:.2f}x | {note} |", flush=True)
    for name, ours, ref, note in (kalman_rows() if args.only != "hmm" else []):
        print(f"| {name} (vs statsmodels) | {ours:.4f} | {ref:.4f} | {ref / ours:.2f}x | {note} |", flush=True)


if __name__ == "__main__":
    main()
