"""Compiled inner loops of the classical baselines (numba, when installed: ``pip install rnnkit[fast]``).

Each kernel is the same recursion as the NumPy code it replaces, in the same order of operations where that
matters, looping over many sequences (given as offsets into one concatenated array) in one call. Without numba,
``AVAILABLE`` is False and the callers keep their NumPy loops.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # the NumPy loops serve
    numba = None

AVAILABLE = numba is not None


def _njit(fn):
    return numba.njit(cache=True, nogil=True)(fn) if AVAILABLE else fn


def _njit_parallel(fn):
    """Compiled with ``numba.prange`` loops spread over the cores."""
    return numba.njit(cache=True, nogil=True, parallel=True)(fn) if AVAILABLE else fn


def _njit_fast(parallel: bool = False):
    """Compiled with fast-math (reassociated, vectorised dot products): for word2vec's SGD, whose updates race
    across threads anyway, not for the exact recursions above."""
    def wrap(fn):
        return numba.njit(cache=True, nogil=True, fastmath=True, parallel=parallel)(fn) if AVAILABLE else fn
    return wrap


prange = numba.prange if AVAILABLE else range


@_njit
def hmm_forward(start, A, b, offsets, alpha, c):
    """Scaled forward pass of every sequence [offsets[s], offsets[s + 1]) of b (T_total, K): alpha rows sum to 1,
    c the scaling factors (Rabiner 1989 §V.A)."""
    K = A.shape[0]
    for s in range(len(offsets) - 1):
        lo, hi = offsets[s], offsets[s + 1]
        total = 0.0
        for k in range(K):
            alpha[lo, k] = start[k] * b[lo, k]
            total += alpha[lo, k]
        c[lo] = total
        for k in range(K):
            alpha[lo, k] /= total
        for t in range(lo + 1, hi):
            total = 0.0
            for j in range(K):
                acc = 0.0
                for i in range(K):
                    acc += alpha[t - 1, i] * A[i, j]
                alpha[t, j] = acc * b[t, j]
                total += alpha[t, j]
            c[t] = total
            for j in range(K):
                alpha[t, j] /= total


@_njit
def hmm_backward(A, b, c, offsets, beta, alpha, xi_sums):
    """Scaled backward pass; xi_sums[s] = Σ_t ξ_t(i, j) of sequence s (expected transition counts)."""
    K = A.shape[0]
    tmp = np.empty(K)
    for s in range(len(offsets) - 1):
        lo, hi = offsets[s], offsets[s + 1]
        for k in range(K):
            beta[hi - 1, k] = 1.0
        for t in range(hi - 2, lo - 1, -1):
            for j in range(K):
                tmp[j] = b[t + 1, j] * beta[t + 1, j] / c[t + 1]
            for i in range(K):
                acc = 0.0
                for j in range(K):
                    acc += A[i, j] * tmp[j]
                    xi_sums[s, i, j] += alpha[t, i] * A[i, j] * tmp[j]
                beta[t, i] = acc


@_njit
def hmm_viterbi(log_start, log_A, log_b, offsets, paths, scores):
    """The most probable state path of every sequence (log space), and its log-probability: δ_t,j = max_i (δ_t−1,i
    + log A_ij) + log b_t,j with back-pointers. Up to 12 states (measured crossover) a scalar max per "to" state
    over a contiguous column of log A (rows of log Aᵀ); above, the inner loop runs over "to" states along a row of
    log A with the running best kept per "to" state (a compare and a select: vectorisable). Ties keep the lowest
    "from" state, as NumPy's argmax."""
    K = log_A.shape[0]
    by_columns = K <= 12
    log_AT = np.ascontiguousarray(log_A.T)
    delta = np.empty(K)
    best = np.empty(K)
    longest = 0
    for s in range(len(offsets) - 1):
        longest = max(longest, offsets[s + 1] - offsets[s])
    back = np.zeros((longest, K), dtype=np.int64)
    for s in range(len(offsets) - 1):
        lo, hi = offsets[s], offsets[s + 1]
        for k in range(K):
            delta[k] = log_start[k] + log_b[lo, k]
        for t in range(lo + 1, hi):
            arg = back[t - lo]
            if by_columns:
                for j in range(K):
                    column = log_AT[j]
                    b, at = delta[0] + column[0], 0
                    for i in range(1, K):
                        v = delta[i] + column[i]
                        if v > b:
                            b, at = v, i
                    best[j] = b
                    arg[j] = at
            else:
                for j in range(K):
                    best[j] = delta[0] + log_A[0, j]
                    arg[j] = 0
                for i in range(1, K):
                    d = delta[i]
                    row = log_A[i]
                    for j in range(K):
                        v = d + row[j]
                        better = v > best[j]
                        best[j] = v if better else best[j]
                        arg[j] = i if better else arg[j]
            for j in range(K):
                delta[j] = best[j] + log_b[t, j]
        arg0 = 0
        for k in range(1, K):
            if delta[k] > delta[arg0]:
                arg0 = k
        scores[s] = delta[arg0]
        paths[hi - 1] = arg0
        for t in range(hi - 1, lo, -1):
            paths[t - 1] = back[t - lo, paths[t]]


@_njit
def _cholesky_solve_lower(L, b):
    """x with L x = b (L lower triangular)."""
    n = len(b)
    x = np.empty(n)
    for i in range(n):
        acc = b[i]
        for j in range(i):
            acc -= L[i, j] * x[j]
        x[i] = acc / L[i, i]
    return x


@_njit
def _matmul(X, Y, out, add):
    """out = X Y, or out += X Y when ``add``, written out (small matrices: no library call; pass ``Y.T`` for
    X Yᵀ)."""
    for i in range(X.shape[0]):
        for j in range(Y.shape[1]):
            acc = out[i, j] if add else 0.0
            for r in range(X.shape[1]):
                acc += X[i, r] * Y[r, j]
            out[i, j] = acc


@_njit
def _moved_less(X, Y, tolerance):
    """Σ (X − Y)² < tolerance: statsmodels' test that a filter's predicted covariance reached its steady state."""
    acc = 0.0
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            d = X[i, j] - Y[i, j]
            acc += d * d
    return acc < tolerance


@_njit
def _same(X, Y):
    """X and Y hold the same numbers (a steady-state filter stores the same covariance at every step)."""
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            if X[i, j] != Y[i, j]:
                return False
    return True


@_njit
def _smoother_steady(t, f_covs, pred_covs, covs, tolerance):
    """(J_t = J_t+1, P_t|T = P_t+1|T) at step t of the backward pass: the gain repeats where the filter kept its
    steady-state covariances at t and t+1, and the smoothed covariance (a contraction under a fixed gain) is kept
    once it moves by less than ``tolerance`` (squared Frobenius norm)."""
    T = len(f_covs)
    if tolerance <= 0 or t + 2 >= T:
        return False, False
    gain = _same(f_covs[t], f_covs[t + 1]) and _same(pred_covs[t + 1], pred_covs[t + 2])
    return gain, gain and t + 3 < T and _moved_less(covs[t + 1], covs[t + 2], tolerance)


@_njit
def kalman_filter_loop(ys, A, C, Q, R, mu0, P0, means, covs, pred_means, pred_covs, tolerance):
    """The Kalman filter of ``rnnkit.baselines.kalman.kalman_filter`` (predict; update on the observed entries of
    each row), every product written out and every buffer allocated once: for a few states, where library calls
    would cost more than the arithmetic. The covariance update is the conventional P − K C P, symmetrised (as
    statsmodels; the NumPy loop's Joseph form costs two more k × k × k products, and tests hold the two within
    1e-10). Steady state as statsmodels: once the predicted covariance moves by less than ``tolerance`` (squared
    Frobenius norm) between two fully observed steps, covariances, gain and log det S are kept until a row with a
    missing entry comes (``tolerance`` 0: never). Returns the log-likelihood."""
    T, p = ys.shape
    k = A.shape[0]
    m, P = mu0.copy(), P0.copy()
    AP, newP = np.empty((k, k)), np.empty((k, k))
    newm = np.empty(k)
    idx = np.empty(p, dtype=np.int64)
    Co, CP, Kt = np.empty((p, k)), np.empty((p, k)), np.empty((p, k))
    Ro, S, L = np.empty((p, p)), np.empty((p, p)), np.empty((p, p))
    e, z, w = np.empty(p), np.empty(p), np.empty(p)
    P_pred, P_filtered = P0.copy(), P0.copy()
    converged_now = False
    loglik = 0.0
    log_2pi = np.log(2 * np.pi)
    log_det = 0.0
    converged = False
    q_before = 0
    for t in range(T):
        q = 0
        for a in range(p):
            if not np.isnan(ys[t, a]):
                idx[q] = a
                q += 1
        converged = converged and q == p
        if t > 0:  # predict: m = A m, P = A P Aᵀ + Q
            for i in range(k):
                acc = 0.0
                for r in range(k):
                    acc += A[i, r] * m[r]
                newm[i] = acc
            m[:] = newm
            if not converged:
                _matmul(A, P, AP, False)
                newP[:] = Q
                _matmul(AP, A.T, newP, True)  # A P Aᵀ + Q
                if tolerance > 0 and q == p and q_before == p:
                    converged = _moved_less(newP, P_pred, tolerance)
                P[:] = newP
                converged_now = converged
            else:
                P[:] = P_pred
        P_pred[:] = P
        pred_means[t] = m
        pred_covs[t] = P
        q_before = q
        if converged and not converged_now:  # steady state: S, L, Kᵀ and log det S as at convergence
            for a in range(q):
                acc = ys[t, a]
                for j in range(k):
                    acc -= C[a, j] * m[j]
                e[a] = acc
            zz = 0.0
            for a in range(q):
                acc = e[a]
                for b in range(a):
                    acc -= L[a, b] * z[b]
                z[a] = acc / L[a, a]
                zz += z[a] * z[a]
            loglik -= 0.5 * (q * log_2pi + 2 * log_det + zz)
            for i in range(k):
                acc = m[i]
                for a in range(q):
                    acc += Kt[a, i] * e[a]
                m[i] = acc
            P[:] = P_filtered
            means[t] = m
            covs[t] = P
            continue
        converged_now = False
        if q > 0:  # update on the observed entries
            for a in range(q):
                Co[a] = C[idx[a]]
                for b in range(q):
                    Ro[a, b] = R[idx[a], idx[b]]
            for a in range(q):  # e = y - C_o m,  CP = C_o P
                acc = ys[t, idx[a]]
                for j in range(k):
                    acc -= Co[a, j] * m[j]
                    s_ = 0.0
                    for r in range(k):
                        s_ += Co[a, r] * P[r, j]
                    CP[a, j] = s_
                e[a] = acc
            for a in range(q):  # S = C_o P C_oᵀ + R_o
                for b in range(q):
                    acc = Ro[a, b]
                    for j in range(k):
                        acc += CP[a, j] * Co[b, j]
                    S[a, b] = acc
            log_det = 0.0
            for a in range(q):  # Cholesky S = L Lᵀ
                for b in range(a + 1):
                    acc = S[a, b]
                    for c in range(b):
                        acc -= L[a, c] * L[b, c]
                    if a == b:
                        if acc <= 0.0:
                            raise ValueError("the innovation covariance is not positive definite")
                        L[a, a] = np.sqrt(acc)
                    else:
                        L[a, b] = acc / L[b, b]
                log_det += np.log(L[a, a])
            zz = 0.0
            for a in range(q):  # z = L⁻¹ e
                acc = e[a]
                for b in range(a):
                    acc -= L[a, b] * z[b]
                z[a] = acc / L[a, a]
                zz += z[a] * z[a]
            loglik -= 0.5 * (q * log_2pi + 2 * log_det + zz)
            for j in range(k):  # Kᵀ = S⁻¹ C_o P, column by column: L w = CP[:, j], Lᵀ v = w
                for a in range(q):
                    acc = CP[a, j]
                    for b in range(a):
                        acc -= L[a, b] * w[b]
                    w[a] = acc / L[a, a]
                for a in range(q - 1, -1, -1):
                    acc = w[a]
                    for b in range(a + 1, q):
                        acc -= L[b, a] * Kt[b, j]
                    Kt[a, j] = acc / L[a, a]
            for i in range(k):  # m += K e
                acc = m[i]
                for a in range(q):
                    acc += Kt[a, i] * e[a]
                m[i] = acc
            for i in range(k):  # P − K C_o P (conventional form), symmetrised
                for j in range(i, k):
                    acc_ij = P[i, j]
                    acc_ji = P[j, i]
                    for a in range(q):
                        acc_ij -= Kt[a, i] * CP[a, j]
                        acc_ji -= Kt[a, j] * CP[a, i]
                    v = 0.5 * (acc_ij + acc_ji)
                    newP[i, j] = v
                    newP[j, i] = v
            P[:] = newP
        P_filtered[:] = P
        means[t] = m
        covs[t] = P
    return loglik


@_njit
def _cholesky_lower_inplace(S):
    """S ← its lower Cholesky factor L (S = L Lᵀ; the upper triangle is zeroed), written out: for the innovation
    covariances of a filter (a few to a few dozen rows) a LAPACK call through numba costs more than this."""
    n = S.shape[0]
    for j in range(n):
        d = S[j, j]
        for r in range(j):
            d -= S[j, r] * S[j, r]
        if not d > 0.0:
            raise ValueError("the innovation covariance C P Cᵀ + R is not positive definite")
        d = np.sqrt(d)
        S[j, j] = d
        for i in range(j + 1, n):
            acc = S[i, j]
            for r in range(j):
                acc -= S[i, r] * S[j, r]
            S[i, j] = acc / d
        for i in range(j):
            S[i, j] = 0.0


@_njit
def _lower_inverse(L):
    """L⁻¹ of a lower-triangular L (lower triangular too), written out: n³/6 multiply-adds."""
    n = L.shape[0]
    X = np.zeros((n, n))
    for j in range(n):
        X[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, n):
            acc = 0.0
            for r in range(j, i):
                acc -= L[i, r] * X[r, j]
            X[i, j] = acc / L[i, i]
    return X


@_njit
def kalman_filter_blas(ys, A, C, Q, R, mu0, P0, means, covs, pred_means, pred_covs, tolerance):
    """The same filter for many states, every k-sized product a BLAS call: the innovation covariance
    S = C P Cᵀ + R = L Lᵀ factored once (written out: q is small), W = L⁻¹ C P and z = L⁻¹ e give the
    log-likelihood (log det S = 2 Σ log L_ii, eᵀ S⁻¹ e = zᵀ z), the mean update K e = Wᵀ z and the covariance
    update P − K C P = P − Wᵀ W, symmetrised (the conventional form, as statsmodels; the Joseph form costs two
    more k × k × k products a step; both are exact in exact arithmetic, and tests hold this one to the NumPy
    loop's Joseph form within 1e-10). The steady state as in :func:`kalman_filter_loop`."""
    T, p = ys.shape
    k = A.shape[0]
    m = mu0.copy()
    P = P0.copy()
    At = np.ascontiguousarray(A.T)
    Ct = np.ascontiguousarray(C.T)
    observed = ~np.isnan(ys)
    counts = observed.sum(1)
    loglik = 0.0
    log_2pi = np.log(2 * np.pi)
    converged = False
    log_det = 0.0
    Linv, Wt, P_filtered = np.empty((p, p)), np.empty((k, p)), P
    for t in range(T):
        q = counts[t]
        converged = converged and q == p
        converged_now = False
        if t > 0:
            m = A @ m
            if converged:
                P = pred_covs[t - 1]
            else:
                P = A @ P @ At
                P += Q
                if tolerance > 0 and q == p and counts[t - 1] == p:
                    converged = converged_now = _moved_less(P, pred_covs[t - 1], tolerance)
        pred_means[t] = m
        pred_covs[t] = P
        if converged and not converged_now:  # steady state: L⁻¹, Wᵀ, log det S and P as at convergence
            z = Linv @ (ys[t] - C @ m)
            loglik -= 0.5 * (q * log_2pi + 2 * log_det + z @ z)
            m = m + Wt @ z
            P = P_filtered
            means[t] = m
            covs[t] = P
            continue
        if q > 0:
            if q == p:
                Co, Cot, Ro, y = C, Ct, R, ys[t].copy()
            else:
                idx = np.nonzero(observed[t])[0]
                Co = np.ascontiguousarray(C[idx])
                Cot = np.ascontiguousarray(Co.T)
                Ro = np.empty((q, q))
                y = np.empty(q)
                for a in range(q):
                    y[a] = ys[t, idx[a]]
                    for b in range(q):
                        Ro[a, b] = R[idx[a], idx[b]]
            CP = Co @ P
            L = CP @ Cot + Ro  # S, factored in place
            _cholesky_lower_inplace(L)
            Linv = _lower_inverse(L)
            z = Linv @ (y - Co @ m)  # whitened innovation
            W = Linv @ CP  # K = Wᵀ L⁻¹, so K e = Wᵀ z and K C P = Wᵀ W
            log_det = 0.0
            for a in range(q):
                log_det += np.log(L[a, a])
            loglik -= 0.5 * (q * log_2pi + 2 * log_det + z @ z)
            Wt = np.ascontiguousarray(W.T)
            m = m + Wt @ z
            P = P - Wt @ W
            for i in range(k):  # symmetrised in place
                for j in range(i + 1, k):
                    v = 0.5 * (P[i, j] + P[j, i])
                    P[i, j] = v
                    P[j, i] = v
            P_filtered = P
        means[t] = m
        covs[t] = P
    return loglik


@_njit
def rts_smoother_small(A, f_means, f_covs, pred_means, pred_covs, means, covs, cross, tolerance):
    """The Rauch-Tung-Striebel pass of :func:`rts_smoother_loop` for a few states, every product written out and
    every buffer allocated once: Jᵀ = P_t+1|t⁻¹ A P_t|t by one Cholesky factor of P_t+1|t (symmetric positive
    definite) and two triangular solves, where a LAPACK call costs more than the arithmetic. Steady state as
    :func:`_smoother_steady`."""
    T, k = f_means.shape
    means[:] = f_means
    covs[:] = f_covs
    L = np.empty((k, k))
    Jt = np.empty((k, k))
    D = np.empty((k, k))
    DJt = np.empty((k, k))
    for t in range(T - 2, -1, -1):
        same_gain, same_cov = _smoother_steady(t, f_covs, pred_covs, covs, tolerance)
        if same_gain:
            for i in range(k):  # m_t|T = m_t|t + J (m_t+1|T − m_t+1|t), J as at t+1
                acc = 0.0
                for r in range(k):
                    acc += Jt[r, i] * (means[t + 1, r] - pred_means[t + 1, r])
                means[t, i] += acc
            if same_cov:
                covs[t] = covs[t + 1]
                cross[t] = cross[t + 1]
                continue
            for i in range(k):
                for j in range(k):
                    D[i, j] = covs[t + 1, i, j] - pred_covs[t + 1, i, j]
            _matmul(D, Jt, DJt, False)
            for i in range(k):
                for j in range(k):
                    acc = 0.0
                    for r in range(k):
                        acc += Jt[r, i] * DJt[r, j]
                    covs[t, i, j] += acc
            _matmul(covs[t + 1], Jt, cross[t], False)
            continue
        L[:] = pred_covs[t + 1]
        _cholesky_lower_inplace(L)
        _matmul(A, f_covs[t], Jt, False)  # A P_t|t, then P_t+1|t⁻¹ A P_t|t column by column
        for c in range(k):
            for i in range(k):
                acc = Jt[i, c]
                for j in range(i):
                    acc -= L[i, j] * Jt[j, c]
                Jt[i, c] = acc / L[i, i]
            for i in range(k - 1, -1, -1):
                acc = Jt[i, c]
                for j in range(i + 1, k):
                    acc -= L[j, i] * Jt[j, c]
                Jt[i, c] = acc / L[i, i]
        for i in range(k):  # m_t|T = m_t|t + J (m_t+1|T − m_t+1|t)
            acc = 0.0
            for r in range(k):
                acc += Jt[r, i] * (means[t + 1, r] - pred_means[t + 1, r])
            means[t, i] += acc
        for i in range(k):
            for j in range(k):
                D[i, j] = covs[t + 1, i, j] - pred_covs[t + 1, i, j]
        _matmul(D, Jt, DJt, False)
        for i in range(k):  # P_t|T = P_t|t + J D Jᵀ = P_t|t + Jtᵀ (D Jt)
            for j in range(k):
                acc = 0.0
                for r in range(k):
                    acc += Jt[r, i] * DJt[r, j]
                covs[t, i, j] += acc
        _matmul(covs[t + 1], Jt, cross[t], False)  # P_t+1|T Jᵀ


@_njit
def rts_smoother_loop(A, f_means, f_covs, pred_means, pred_covs, means, covs, cross, tolerance):
    """The Rauch-Tung-Striebel backward pass of ``rnnkit.baselines.kalman.rts_smoother``: J_t = P_t|t Aᵀ
    P_t+1|t⁻¹ (by a Cholesky solve: P_t+1|t is symmetric positive definite), smoothed means and covariances, and
    the lag-one covariances P_t+1|T J_tᵀ. Steady state as :func:`_smoother_steady`."""
    T, k = f_means.shape
    means[:] = f_means
    covs[:] = f_covs
    Jt = np.empty((k, k))
    J = np.empty((k, k))
    for t in range(T - 2, -1, -1):
        same_gain, same_cov = _smoother_steady(t, f_covs, pred_covs, covs, tolerance)
        if not same_gain:  # J Pp = P Aᵀ  <=>  Pp Jᵀ = A P  (Pp, P symmetric)
            Jt = np.ascontiguousarray(np.linalg.solve(pred_covs[t + 1], A @ f_covs[t]))
            J = np.ascontiguousarray(Jt.T)
        means[t] = f_means[t] + J @ (means[t + 1] - pred_means[t + 1])
        if same_cov:
            covs[t] = covs[t + 1]
            cross[t] = cross[t + 1]
            continue
        covs[t] = f_covs[t] + J @ (covs[t + 1] - pred_covs[t + 1]) @ Jt
        cross[t] = covs[t + 1] @ Jt


@_njit_parallel
def kalman_filter_many(ys, offsets, A, C, Q, R, mu0, P0, means, covs, pred_means, pred_covs, logliks, tolerance):
    """The filter over many independent series (concatenated in ``ys``, series s at [offsets[s], offsets[s+1])),
    in one call: the written-out loop for each, the series spread over the cores."""
    for s in prange(len(offsets) - 1):
        lo, hi = offsets[s], offsets[s + 1]
        logliks[s] = kalman_filter_loop(ys[lo:hi], A, C, Q, R, mu0, P0, means[lo:hi], covs[lo:hi], pred_means[lo:hi],
                                        pred_covs[lo:hi], tolerance)


#: word2vec.c's and gensim's sigmoid table: σ at EXP_TABLE_SIZE points over [-MAX_EXP, MAX_EXP), read at the point
#: below the score (a score past ±MAX_EXP is saturated and skipped)
MAX_EXP = 6.0
EXP_TABLE_SIZE = 1000
_EXP = np.exp((np.arange(EXP_TABLE_SIZE) / EXP_TABLE_SIZE * 2.0 - 1.0) * MAX_EXP)
SIGMOID_TABLE = (_EXP / (_EXP + 1.0)).astype(np.float32)


@_njit_fast()
def _negative_sampling(v, w, table, syn1, negative, lr, neu1e):
    """One SGD step of log σ(u_w·v) + Σ_k log σ(−u_k·v), k drawn from the noise table: the output vectors u are
    updated in place and the error for v is added to ``neu1e``. σ comes from SIGMOID_TABLE, and a saturated score
    (|u·v| ≥ 6) is skipped, as in word2vec.c and gensim (with the table and gensim's initial range, skip-gram's
    neighbours agree with gensim's as well as gensim's own seeds do: benchmarks/bench_word2vec.py, docs/text.md)."""
    D = len(v)
    for k in range(negative + 1):
        target = w if k == 0 else table[np.random.randint(0, len(table))]
        if k > 0 and target == w:
            continue
        f = np.float32(0.0)
        for d in range(D):
            f += v[d] * syn1[target, d]
        if f <= -MAX_EXP or f >= MAX_EXP:
            continue
        label = 1.0 if k == 0 else 0.0
        g = np.float32((label - SIGMOID_TABLE[int((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))]) * lr)
        for d in range(D):
            neu1e[d] += g * syn1[target, d]
            syn1[target, d] += g * v[d]


@_njit_fast()
def _sgns_chunk(words, bounds, lo, hi, table, syn0, syn1, window, negative, cbow, lr0, epoch, epochs):
    """word2vec.c's training loop over positions [lo, hi) of ``words`` (one epoch, already subsampled; ``bounds``
    [pos] = the [start, end) of its sentence): draw a window b ∈ [1, window] per position, then per (centre,
    context) pair one SGD step on
    log σ(u_o·v) + Σ_k log σ(−u_k·v), the rate decaying linearly with the words processed (to 1e-4 lr0).
    Skip-gram: v = syn0[context] predicts the centre (as word2vec.c); CBOW: v = mean of syn0[contexts]
    predicts the centre, and each context vector takes the full error."""
    D = syn0.shape[1]
    neu1 = np.empty(D, dtype=np.float32)
    neu1e = np.empty(D, dtype=np.float32)
    ctx = np.empty(2 * window, dtype=np.int64)
    for pos in range(lo, hi):
        w = words[pos]
        progress = (epoch + pos / len(words)) / epochs
        lr = lr0 - (lr0 - 1e-4) * progress  # linearly to gensim's min_alpha
        b = np.random.randint(1, window + 1)
        start = bounds[pos, 0]
        end = bounds[pos, 1]
        n_ctx = 0
        for j in range(max(start, pos - b), min(end, pos + b + 1)):
            if j != pos:
                ctx[n_ctx] = words[j]
                n_ctx += 1
        if n_ctx == 0:
            continue
        if cbow:
            for d in range(D):
                neu1[d] = 0.0
                neu1e[d] = 0.0
            for c in range(n_ctx):  # row by row: contiguous reads
                row = syn0[ctx[c]]
                for d in range(D):
                    neu1[d] += row[d]
            inv = np.float32(1.0 / n_ctx)
            for d in range(D):
                neu1[d] *= inv
            _negative_sampling(neu1, w, table, syn1, negative, lr, neu1e)
            for c in range(n_ctx):
                for d in range(D):
                    syn0[ctx[c], d] += neu1e[d]
        else:
            for c in range(n_ctx):
                src = ctx[c]
                for d in range(D):
                    neu1e[d] = 0.0
                _negative_sampling(syn0[src], w, table, syn1, negative, lr, neu1e)
                for d in range(D):
                    syn0[src, d] += neu1e[d]


#: words per block of an epoch; the threads take blocks in turn, as gensim's workers take its jobs of 10,000 words
SGNS_BLOCK = 10_000


@_njit_fast(parallel=True)
def sgns_epoch(words, bounds, table, syn0, syn1, window, negative, cbow, lr0, epoch, epochs, seed, threads):
    """One epoch of word2vec over ``words`` on ``threads`` threads without locks (hogwild, as word2vec.c's and
    gensim's): thread p trains blocks p, p + threads, ... of SGNS_BLOCK words, so the threads move through the corpus
    side by side. (Contiguous halves, one per thread, measured a lower neighbour overlap with gensim: 0.607 against
    0.621 on one thread, benchmarks/bench_word2vec.py.)"""
    n = len(words)
    blocks = (n + SGNS_BLOCK - 1) // SGNS_BLOCK
    for part in prange(threads):
        np.random.seed(seed * 1000 + epoch * 10 + part)
        for block in range(part, blocks, threads):
            _sgns_chunk(words, bounds, block * SGNS_BLOCK, min(n, (block + 1) * SGNS_BLOCK), table, syn0, syn1,
                        window, negative, cbow, lr0, epoch, epochs)
