"""Linear dynamical systems and the Kalman filter (seed 002's state and appearance models; Kalman 1960;
Rauch, Tung & Striebel 1965; Shumway & Stoffer 1982 and Ghahramani & Hinton 1996 for EM).

    state:       x_t = A x_{t-1} + w_t,   w_t ~ N(0, Q),     x_1 ~ N(μ_0, P_0)
    appearance:  y_t = C x_t + v_t,       v_t ~ N(0, R)

Pure functions over an :class:`LDSParams` (filterpy's ``predict`` / ``update`` halves, without hidden state):
``kalman_filter``, ``rts_smoother``, ``log_likelihood``, ``em``, ``simulate``, ``forecast``. Observations are
(T, p) arrays; NaN entries are missing: the update uses a row's observed entries (the rows and columns of C and R
that remain), as statsmodels does, and skips a row with none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import _compiled

_LOG_2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class LDSParams:
    A: np.ndarray  # (k, k) state transition
    C: np.ndarray  # (p, k) appearance (emission) matrix
    Q: np.ndarray  # (k, k) state noise covariance
    R: np.ndarray  # (p, p) observation noise covariance
    mu0: np.ndarray  # (k,) mean of x_1
    P0: np.ndarray  # (k, k) covariance of x_1

    def __post_init__(self):
        k, p = self.A.shape[0], self.C.shape[0]
        shapes = {"A": (k, k), "C": (p, k), "Q": (k, k), "R": (p, p), "mu0": (k,), "P0": (k, k)}
        for name, shape in shapes.items():
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"LDSParams.{name} must have shape {shape} (k={k} states, p={p} outputs); "
                                 f"got {np.shape(getattr(self, name))}")


@dataclass
class FilterResult:
    means: np.ndarray  # (T, k) E[x_t | y_1..t]
    covs: np.ndarray  # (T, k, k)
    pred_means: np.ndarray  # (T, k) E[x_t | y_1..t-1]
    pred_covs: np.ndarray  # (T, k, k)
    loglik: float  # log p(y_1..T)


@dataclass
class SmootherResult:
    means: np.ndarray  # (T, k) E[x_t | y_1..T]
    covs: np.ndarray  # (T, k, k)
    cross_covs: np.ndarray  # (T-1, k, k) Cov(x_{t+1}, x_t | y_1..T)


def _as_2d(ys) -> np.ndarray:
    ys = np.asarray(ys, float)
    return ys[:, None] if ys.ndim == 1 else ys


STEADY_STATE_TOLERANCE = 1e-19  # statsmodels' default


def kalman_filter(ys, params: LDSParams, compiled: bool = True,
                  tolerance: float = STEADY_STATE_TOLERANCE) -> FilterResult:
    """Forward pass: predict (x_t|t-1) then update with y_t (x_t|t); accumulate the exact log-likelihood. The loop
    runs compiled when numba is installed (``compiled=False``: the NumPy loop; the two are tested equal).

    Steady state (compiled loop, as statsmodels' ``tolerance``): the covariances of a time-invariant filter converge;
    once the predicted covariance moves by less than ``tolerance`` (squared Frobenius norm) between two fully
    observed steps, the covariances, the gain and log det S are kept, and a step costs only the mean update, until
    a row with a missing entry comes. ``tolerance=0`` computes every step."""
    ys = _as_2d(ys)
    A, C, Q, R = params.A, params.C, params.Q, params.R
    T, k = len(ys), A.shape[0]
    means, covs = np.zeros((T, k)), np.zeros((T, k, k))
    pred_means, pred_covs = np.zeros((T, k)), np.zeros((T, k, k))
    if compiled and _compiled.AVAILABLE:
        loop = _compiled.kalman_filter_loop if k <= 12 else _compiled.kalman_filter_blas  # measured crossover
        matrices = (np.ascontiguousarray(m, dtype=float) for m in (A, C, Q, R, params.mu0, params.P0))
        loglik = loop(np.ascontiguousarray(ys), *matrices, means, covs, pred_means, pred_covs, float(tolerance))
        return FilterResult(means, covs, pred_means, pred_covs, float(loglik))
    m, P = params.mu0, params.P0
    loglik = 0.0
    for t in range(T):
        if t > 0:  # predict
            m, P = A @ m, A @ P @ A.T + Q
        pred_means[t], pred_covs[t] = m, P
        seen = ~np.isnan(ys[t])
        if seen.any():  # update with the observed entries y_o = C_o x + v_o, v_o ~ N(0, R_oo)
            y, C_o, R_o = ys[t, seen], C[seen], R[np.ix_(seen, seen)]
            S = C_o @ P @ C_o.T + R_o  # innovation covariance
            e = y - C_o @ m  # innovation
            L = np.linalg.cholesky(S)
            z = np.linalg.solve(L, e)
            loglik -= 0.5 * (len(y) * _LOG_2PI + 2 * np.log(np.diag(L)).sum() + z @ z)
            K = np.linalg.solve(S, C_o @ P).T  # Kalman gain P C_oᵀ S⁻¹
            m = m + K @ e
            I_KC = np.eye(k) - K @ C_o
            P = I_KC @ P @ I_KC.T + K @ R_o @ K.T  # Joseph form: stays symmetric positive definite
        means[t], covs[t] = m, P
    return FilterResult(means, covs, pred_means, pred_covs, float(loglik))


def kalman_filter_many(series: list, params: LDSParams,
                       tolerance: float = STEADY_STATE_TOLERANCE) -> list[FilterResult]:
    """``kalman_filter`` of every (T_i, p) series in ``series`` (any lengths, the same parameters), in one compiled
    call when numba is installed and the model has at most 12 states; otherwise one call per series."""
    series = [_as_2d(y) for y in series]
    k = params.A.shape[0]
    if not (_compiled.AVAILABLE and k <= 12 and series):
        return [kalman_filter(y, params, tolerance=tolerance) for y in series]
    ys = np.ascontiguousarray(np.concatenate(series))
    offsets = np.concatenate([[0], np.cumsum([len(y) for y in series])]).astype(np.int64)
    n = len(ys)
    means, covs, pred_means, pred_covs = np.empty((n, k)), np.empty((n, k, k)), np.empty((n, k)), np.empty((n, k, k))
    logliks = np.zeros(len(series))  # every entry of the others is written by the filter
    matrices = (np.ascontiguousarray(m, dtype=float) for m in (params.A, params.C, params.Q, params.R, params.mu0,
                                                                params.P0))
    _compiled.kalman_filter_many(ys, offsets, *matrices, means, covs, pred_means, pred_covs, logliks,
                                 float(tolerance))
    return [FilterResult(means[lo:hi], covs[lo:hi], pred_means[lo:hi], pred_covs[lo:hi], float(ll))
            for lo, hi, ll in zip(offsets[:-1], offsets[1:], logliks)]


def log_likelihood(ys, params: LDSParams) -> float:
    return kalman_filter(ys, params).loglik


def rts_smoother(filtered: FilterResult, params: LDSParams, compiled: bool = True,
                 tolerance: float = STEADY_STATE_TOLERANCE) -> SmootherResult:
    """Backward pass (Rauch-Tung-Striebel): x_t | y_1..T, and the lag-one covariances EM needs (compiled when numba
    is installed, like the filter). Steady state (compiled): where the filter kept its covariances the gain J_t
    repeats, and the smoothed covariance is kept once it moves by less than ``tolerance``; 0 computes every step."""
    T, k = filtered.means.shape
    means, covs = filtered.means.copy(), filtered.covs.copy()
    cross = np.zeros((max(T - 1, 0), k, k))
    if compiled and _compiled.AVAILABLE and T > 1:
        loop = _compiled.rts_smoother_small if k <= 12 else _compiled.rts_smoother_loop  # as the filter's
        loop(np.ascontiguousarray(params.A, dtype=float), filtered.means, filtered.covs, filtered.pred_means,
             filtered.pred_covs, means, covs, cross, float(tolerance))
        return SmootherResult(means, covs, cross)
    for t in range(T - 2, -1, -1):
        J = np.linalg.solve(filtered.pred_covs[t + 1], params.A @ filtered.covs[t]).T  # P_t|t Aᵀ P_t+1|t⁻¹
        means[t] = filtered.means[t] + J @ (means[t + 1] - filtered.pred_means[t + 1])
        covs[t] = filtered.covs[t] + J @ (covs[t + 1] - filtered.pred_covs[t + 1]) @ J.T
        cross[t] = covs[t + 1] @ J.T  # Cov(x_{t+1}, x_t | Y) = P_{t+1|T} J_tᵀ
    return SmootherResult(means, covs, cross)


def simulate(params: LDSParams, T: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw (states (T, k), observations (T, p))."""
    rng = rng or np.random.default_rng()
    k, p = params.A.shape[0], params.C.shape[0]
    xs, ys = np.zeros((T, k)), np.zeros((T, p))
    x = rng.multivariate_normal(params.mu0, params.P0)
    for t in range(T):
        if t > 0:
            x = params.A @ x + rng.multivariate_normal(np.zeros(k), params.Q)
        xs[t] = x
        ys[t] = params.C @ x + rng.multivariate_normal(np.zeros(p), params.R)
    return xs, ys


def forecast(filtered: FilterResult, params: LDSParams, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Means (h, p) and covariances (h, p, p) of y_{T+1..T+h} given y_1..T."""
    m, P = filtered.means[-1], filtered.covs[-1]
    means, covs = [], []
    for _ in range(horizon):
        m, P = params.A @ m, params.A @ P @ params.A.T + params.Q
        means.append(params.C @ m)
        covs.append(params.C @ P @ params.C.T + params.R)
    return np.array(means), np.array(covs)


def initial_params(ys_list, k: int, seed: int = 0) -> LDSParams:
    """A starting point for EM: C from the top principal directions of the data, A = 0.9 I, unit noises."""
    Y = np.concatenate([_as_2d(y) for y in ys_list])
    Y = Y[~np.isnan(Y).any(1)]
    p = Y.shape[1]
    rng = np.random.default_rng(seed)
    centred = Y - Y.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    C = rng.normal(scale=0.1, size=(p, k))
    r = min(k, p)
    C[:, :r] = vt[:r].T * (s[:r] / np.sqrt(len(Y)))
    var = np.atleast_1d(centred.var(0))
    return LDSParams(A=0.9 * np.eye(k), C=C, Q=np.eye(k) * 0.1, R=np.diag(var * 0.5 + 1e-6),
                     mu0=np.zeros(k), P0=np.eye(k))


def em(ys_list, params: LDSParams, iterations: int = 50, tol: float = 1e-6,
       fixed: tuple[str, ...] = ()) -> tuple[LDSParams, list[float]]:
    """Maximum-likelihood A, C, Q, R, μ_0, P_0 by expectation-maximisation over one or several sequences
    (complete observations). Returns the parameters and the log-likelihood before each M-step, which never
    decreases. ``fixed`` names parameters to keep (e.g. ``("C",)`` for identifiability)."""
    if isinstance(ys_list, np.ndarray):
        ys_list = [ys_list]
    ys_list = [_as_2d(y) for y in ys_list]
    if any(np.isnan(y).any() for y in ys_list):
        raise ValueError("em needs complete observations; fill or drop the NaN rows first")
    history = []
    for _ in range(iterations):
        # E-step: sufficient statistics summed over sequences
        stats, loglik = None, 0.0
        for ys in ys_list:
            f = kalman_filter(ys, params)
            s = rts_smoother(f, params)
            loglik += f.loglik
            stats = moment_sums(ys, s.means, s.covs, s.cross_covs, stats)
        history.append(loglik)
        if len(history) > 1 and abs(history[-1] - history[-2]) < tol * abs(history[-2]):
            break
        params = m_step(stats, params, fixed)
    return params, history


def moment_sums(ys, means, covs, cross_covs, into: dict | None = None) -> dict:
    """The E-step's sufficient statistics of one sequence from its smoothed moments (means (T, k), covariances
    (T, k, k), lag-one covariances Cov(x_t+1, x_t | Y) (T − 1, k, k)), added to ``into`` when given:
    Σ E[x_t x_tᵀ] over all t, over t < T and over t > 1, Σ E[x_t x_t−1ᵀ], Σ y_t E[x_t]ᵀ, Σ y_t y_tᵀ, the counts,
    and each sequence's first mean and covariance."""
    k = means.shape[1]
    out = into if into is not None else {
        "xx": np.zeros((k, k)), "xx_first": np.zeros((k, k)), "xx_last": np.zeros((k, k)),
        "x1x0": np.zeros((k, k)), "yx": np.zeros((ys.shape[1], k)), "yy": np.zeros((ys.shape[1],) * 2),
        "n_obs": 0, "n_trans": 0, "starts": [], "start_covs": []}
    Exx = covs + np.einsum("ti,tj->tij", means, means)
    out["xx"] += Exx.sum(0)
    out["xx_first"] += Exx[:-1].sum(0)
    out["xx_last"] += Exx[1:].sum(0)
    out["x1x0"] += (cross_covs + np.einsum("ti,tj->tij", means[1:], means[:-1])).sum(0)
    out["yx"] += ys.T @ means
    out["yy"] += ys.T @ ys
    out["n_obs"] += len(ys)
    out["n_trans"] += len(ys) - 1
    out["starts"].append(means[0])
    out["start_covs"].append(covs[0])
    return out


def m_step(stats: dict, params: LDSParams, fixed: tuple[str, ...] = ()) -> LDSParams:
    """The maximum-likelihood parameters given the sufficient statistics of :func:`moment_sums` (Shumway & Stoffer
    1982; Ghahramani & Hinton 1996), keeping the ``fixed`` ones."""
    new = {}
    # R = 1/T Σ E[(y_t - C x_t)(y_t - C x_t)ᵀ] at the C in use (the new one, or a fixed one); with the ML C
    # the last two terms cancel to the familiar (S_yy - C S_yxᵀ) / T. Q likewise for x_t - A x_{t-1}.
    S_xx, S_yx, S_x1x0, S_first = stats["xx"], stats["yx"], stats["x1x0"], stats["xx_first"]
    new["C"] = S_yx @ np.linalg.inv(S_xx)
    C = params.C if "C" in fixed else new["C"]
    new["R"] = (stats["yy"] - S_yx @ C.T - C @ S_yx.T + C @ S_xx @ C.T) / stats["n_obs"]
    new["A"] = S_x1x0 @ np.linalg.inv(S_first)
    A = params.A if "A" in fixed else new["A"]
    new["Q"] = (stats["xx_last"] - S_x1x0 @ A.T - A @ S_x1x0.T + A @ S_first @ A.T) / stats["n_trans"]
    mu0 = np.mean(stats["starts"], 0)
    new["mu0"] = mu0
    new["P0"] = np.mean([P + np.outer(m - mu0, m - mu0) for m, P in zip(stats["starts"], stats["start_covs"])], 0)
    for name in ("R", "Q", "P0"):
        new[name] = (new[name] + new[name].T) / 2 + 1e-9 * np.eye(len(new[name]))
    return replace(params, **{k_: v for k_, v in new.items() if k_ not in fixed})
