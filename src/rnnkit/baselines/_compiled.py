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
def hmm_viterbi(log_start, log_A_T, log_b, offsets, paths, scores):
    """The most probable state path of every sequence (log space), and its log-probability. ``log_A_T`` is the
    transposed log transition matrix (to, from), so the inner loop over "from" reads contiguous memory."""
    K = log_A_T.shape[0]
    delta = np.empty(K)
    new = np.empty(K)
    longest = 0
    for s in range(len(offsets) - 1):
        longest = max(longest, offsets[s + 1] - offsets[s])
    back = np.zeros((longest, K), dtype=np.int64)
    for s in range(len(offsets) - 1):
        lo, hi = offsets[s], offsets[s + 1]
        for k in range(K):
            delta[k] = log_start[k] + log_b[lo, k]
        for t in range(lo + 1, hi):
            for j in range(K):
                row = log_A_T[j]
                best, arg = delta[0] + row[0], 0
                for i in range(1, K):
                    v = delta[i] + row[i]
                    if v > best:
                        best, arg = v, i
                back[t - lo, j] = arg
                new[j] = best + log_b[t, j]
            delta[:] = new
        arg = 0
        for k in range(1, K):
            if delta[k] > delta[arg]:
                arg = k
        scores[s] = delta[arg]
        paths[hi - 1] = arg
        for t in range(hi - 1, lo, -1):
            paths[t - 1] = back[t - lo, paths[t]]
