"""Hidden Markov models with categorical or Gaussian emissions (seeds 001/002: the latent-state sequence models
that came before RNNs; Rabiner 1989).

Forward-backward is scaled (each α_t normalised, log p(X) = Σ log c_t; Rabiner 1989) and Viterbi runs in log
space, so sequences of any length neither under- nor overflow. Many sequences of different lengths come
concatenated with ``lengths``, as in hmmlearn: ``X`` is (n_samples, n_features) (categorical: one column of
symbol ids) and ``lengths`` sums to n_samples.

Verbs: ``score`` (log-likelihood), ``posteriors`` (state marginals γ), ``decode`` (Viterbi), ``fit``
(Baum-Welch EM), ``sample``.
"""

from __future__ import annotations

import numpy as np

from . import _compiled


def _offsets(n: int, lengths) -> np.ndarray:
    """Start offsets of the sequences in a concatenated array of ``n`` samples, plus ``n`` at the end."""
    if lengths is None:
        return np.array([0, n], dtype=np.int64)
    lengths = np.asarray(lengths, int)
    if (lengths < 1).any() or lengths.sum() != n:
        raise ValueError(f"lengths must be positive and sum to the number of samples ({n}); got sum {lengths.sum()}")
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


class _HMM:
    """Shared machinery. Subclasses define emission log-probabilities, their M-step and sampling.

    Inference runs on all sequences at once (concatenated, with offsets): the emission probabilities are computed
    in one vectorised call, and the recursions run in compiled loops (``rnnkit.baselines._compiled``, with numba)
    or, without numba, in the NumPy loops below (``compiled=False`` forces those)."""

    compiled = True

    def __init__(self, startprob, transmat):
        self.startprob = np.asarray(startprob, float)
        self.transmat = np.asarray(transmat, float)
        K = len(self.startprob)
        if self.transmat.shape != (K, K):
            raise ValueError(f"transmat must be ({K}, {K}) for {K} states; got {self.transmat.shape}")
        for name, rows in (("startprob", self.startprob[None]), ("transmat", self.transmat)):
            if (rows < 0).any() or not np.allclose(rows.sum(-1), 1.0):
                raise ValueError(f"{name} rows must be probabilities summing to 1")

    @property
    def n_states(self) -> int:
        return len(self.startprob)

    def _use_compiled(self) -> bool:
        return self.compiled and _compiled.AVAILABLE

    # ---- inference --------------------------------------------------------------------------------
    def _forward(self, X: np.ndarray, offsets: np.ndarray):
        """Scaled forward pass (Rabiner 1989 §V.A): α̂_t = α_t / (c_1 ⋯ c_t) sums to 1 and
        log p(X) = Σ_t log c_t. Emission probabilities are divided by their per-step maximum first (added back
        to the log-likelihood), so nothing under- or overflows however long the sequence. Returns α̂, c, the
        scaled emissions b and the log-likelihood of every sequence."""
        b, shift = self._scaled_emissions(X)
        A = self.transmat
        T, K = b.shape
        alpha, c = np.empty((T, K)), np.empty(T)
        if self._use_compiled():
            _compiled.hmm_forward(self.startprob, A, b, offsets, alpha, c)
        else:
            for lo, hi in zip(offsets[:-1], offsets[1:]):
                a = self.startprob * b[lo]
                for t in range(lo, hi):
                    if t > lo:
                        a = (alpha[t - 1] @ A) * b[t]
                    c[t] = a.sum()
                    alpha[t] = a / c[t]
        with np.errstate(divide="ignore"):
            per_step = np.log(c) + shift
        logliks = np.add.reduceat(per_step, offsets[:-1]) if len(per_step) else np.zeros(0)
        return alpha, c, b, logliks

    def _forward_backward(self, X: np.ndarray, offsets: np.ndarray):
        """γ_t = α̂_t ⊙ β̂_t, the expected transition counts Σ_t ξ_t (summed over sequences), the log-likelihood
        of every sequence."""
        alpha, c, b, logliks = self._forward(X, offsets)
        A = self.transmat
        T, K = alpha.shape
        beta = np.empty((T, K))
        if self._use_compiled():
            xi = np.zeros((len(offsets) - 1, K, K))
            _compiled.hmm_backward(A, b, c, offsets, beta, alpha, xi)
            return alpha * beta, xi.sum(0), logliks
        xi_sum = np.zeros((K, K))
        for lo, hi in zip(offsets[:-1], offsets[1:]):
            beta[hi - 1] = 1.0
            for t in range(hi - 2, lo - 1, -1):
                beta[t] = A @ (b[t + 1] * beta[t + 1]) / c[t + 1]
            # Σ_t ξ_t(i, j) = Σ_t α̂_t(i) A_ij b_t+1(j) β̂_t+1(j) / c_t+1, as one product over t
            if hi - lo > 1:
                xi_sum += A * (alpha[lo:hi - 1].T @ (b[lo + 1:hi] * beta[lo + 1:hi] / c[lo + 1:hi, None]))
        return alpha * beta, xi_sum, logliks

    def _scaled_emissions(self, X) -> tuple[np.ndarray, np.ndarray]:
        """b_t,k = p(x_t | k) / max_k p(x_t | k) and shift_t = log max_k p(x_t | k), from the log densities."""
        log_b = self._emission_logprob(X)  # (T, K)
        shift = log_b[:, 0].copy()  # the row maxima, one column at a time (NumPy's max over short rows is slow)
        for k in range(1, log_b.shape[1]):
            np.maximum(shift, log_b[:, k], out=shift)
        return np.exp(log_b - shift[:, None]), shift

    def score(self, X, lengths=None) -> float:
        """log p(X) summed over the sequences."""
        X = self._check(X)
        return float(self._forward(X, _offsets(len(X), lengths))[3].sum())

    def score_samples(self, X, lengths=None) -> np.ndarray:
        """log p(x) of every sequence, (n_sequences,)."""
        X = self._check(X)
        return self._forward(X, _offsets(len(X), lengths))[3]

    def posteriors(self, X, lengths=None) -> np.ndarray:
        """γ_t(k) = p(z_t = k | the whole sequence), (n_samples, K)."""
        X = self._check(X)
        return self._forward_backward(X, _offsets(len(X), lengths))[0]

    def decode(self, X, lengths=None) -> tuple[float, np.ndarray]:
        """Viterbi: the most probable state path and its joint log-probability (summed over sequences)."""
        X = self._check(X)
        offsets = _offsets(len(X), lengths)
        with np.errstate(divide="ignore"):
            log_A, log_start = np.log(self.transmat), np.log(self.startprob)
        log_b = self._emission_logprob(X)
        paths = np.zeros(len(X), np.int64)
        scores = np.zeros(len(offsets) - 1)
        if self._use_compiled():
            _compiled.hmm_viterbi(log_start, np.ascontiguousarray(log_A), log_b, offsets, paths, scores)
            return float(scores.sum()), paths
        for s, (lo, hi) in enumerate(zip(offsets[:-1], offsets[1:])):
            delta = log_start + log_b[lo]
            back = np.zeros((hi - lo, self.n_states), int)
            for t in range(lo + 1, hi):
                candidates = delta[:, None] + log_A  # (from, to)
                back[t - lo] = candidates.argmax(0)
                delta = candidates.max(0) + log_b[t]
            paths[hi - 1] = delta.argmax()
            for t in range(hi - 1, lo, -1):
                paths[t - 1] = back[t - lo, paths[t]]
            scores[s] = delta.max()
        return float(scores.sum()), paths

    # ---- learning ---------------------------------------------------------------------------------
    def fit(self, X, lengths=None, n_iter: int = 100, tol: float = 1e-4) -> list[float]:
        """Baum-Welch EM from the current parameters; returns the log-likelihood before each M-step (it never
        decreases). Stops when it improves by less than ``tol``."""
        X = self._check(X)
        offsets = _offsets(len(X), lengths)
        history = []
        for _ in range(n_iter):
            gamma, trans, logliks = self._forward_backward(X, offsets)
            history.append(float(logliks.sum()))
            if len(history) > 1 and history[-1] - history[-2] < tol:
                break
            start = gamma[offsets[:-1]].sum(0)
            self.startprob = start / start.sum()
            self.transmat = trans / np.maximum(trans.sum(1, keepdims=True), 1e-300)
            self._m_step(X, gamma)
        return history

    def sample(self, n: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw (X (n, n_features), states (n,))."""
        rng = rng or np.random.default_rng()
        states = np.zeros(n, int)
        states[0] = rng.choice(self.n_states, p=self.startprob)
        for t in range(1, n):
            states[t] = rng.choice(self.n_states, p=self.transmat[states[t - 1]])
        return self._sample_emissions(states, rng), states


class CategoricalHMM(_HMM):
    """Discrete symbols 0..M-1: ``emissionprob`` (K, M). X is (n, 1) integer symbols."""

    def __init__(self, startprob, transmat, emissionprob):
        super().__init__(startprob, transmat)
        self.emissionprob = np.asarray(emissionprob, float)
        if self.emissionprob.shape[0] != self.n_states or not np.allclose(self.emissionprob.sum(1), 1):
            raise ValueError(f"emissionprob must be ({self.n_states}, n_symbols) with rows summing to 1")

    def _check(self, X) -> np.ndarray:
        X = np.asarray(X)
        X = X.reshape(-1, 1) if X.ndim == 1 else X
        if X.shape[1] != 1 or not np.issubdtype(X.dtype, np.integer):
            raise ValueError(f"CategoricalHMM expects integer symbols of shape (n, 1); got {X.dtype} {X.shape}")
        if X.min() < 0 or X.max() >= self.emissionprob.shape[1]:
            raise ValueError(f"symbols must lie in [0, {self.emissionprob.shape[1] - 1}]")
        return X

    def _emission_logprob(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.emissionprob.T)[X[:, 0]]  # log of the K x M table, then one row per step

    def _scaled_emissions(self, X):
        """The same scaling made once on the K x M table: each symbol's column divided by its largest entry, then
        one row per step (instead of a log and an exp per step and state)."""
        top = self.emissionprob.max(0)  # (M,)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = (self.emissionprob / top).T  # (M, K); a symbol no state emits: 0/0, as log-space's -inf - -inf
            shift = np.log(top)
        return scaled[X[:, 0]], shift[X[:, 0]]

    def _m_step(self, X, gamma):
        counts = np.zeros_like(self.emissionprob)
        np.add.at(counts.T, X[:, 0], gamma)
        self.emissionprob = counts / np.maximum(counts.sum(1, keepdims=True), 1e-300)

    def _sample_emissions(self, states, rng):
        return np.array([[rng.choice(self.emissionprob.shape[1], p=self.emissionprob[s])] for s in states])


class GaussianHMM(_HMM):
    """Real vectors with a Gaussian per state: ``means`` (K, D) and ``variances`` (K, D) (diagonal covariances), or
    full covariance matrices (K, D, D) (``covariance_type`` follows from their shape). The M-step is maximum
    likelihood; diagonal variances are floored at ``min_variance`` (hmmlearn's ``min_covar``), and a full
    covariance whose smallest eigenvalue falls below it gets ``min_variance`` added to its diagonal."""

    def __init__(self, startprob, transmat, means, variances, min_variance: float = 1e-3):
        super().__init__(startprob, transmat)
        self.means = np.asarray(means, float)
        self.variances = np.asarray(variances, float)
        self.min_variance = min_variance
        K, D = self.means.shape if self.means.ndim == 2 else (None, None)
        self.covariance_type = "full" if self.variances.ndim == 3 else "diag"
        expected = (K, D, D) if self.covariance_type == "full" else (K, D)
        if K != self.n_states or self.variances.shape != expected:
            raise ValueError(f"means must be ({self.n_states}, n_features) and variances ({self.n_states}, "
                             "n_features) or full covariances (n_states, n_features, n_features); got "
                             f"{self.means.shape} and {self.variances.shape}")
        if self.covariance_type == "diag" and (self.variances <= 0).any():
            raise ValueError("variances must be positive")
        if self.covariance_type == "full":
            try:
                np.linalg.cholesky(self.variances)
            except np.linalg.LinAlgError:
                raise ValueError("every full covariance must be symmetric positive definite") from None

    def _check(self, X) -> np.ndarray:
        X = np.asarray(X, float)
        X = X.reshape(-1, 1) if X.ndim == 1 else X
        if X.shape[1] != self.means.shape[1]:
            raise ValueError(f"GaussianHMM expects (n, {self.means.shape[1]}) observations; got {X.shape}")
        return X

    def _emission_logprob(self, X):
        diff = X[:, None, :] - self.means[None]  # (T, K, D)
        if self.covariance_type == "diag":
            return -0.5 * (np.log(2 * np.pi * self.variances)[None] + diff ** 2 / self.variances[None]).sum(-1)
        # log N(x; μ_k, Σ_k) = -½ (D log 2π + log|Σ_k| + ‖L_k⁻¹ (x - μ_k)‖²),  Σ_k = L_k L_kᵀ
        L = np.linalg.cholesky(self.variances)  # (K, D, D)
        z = np.linalg.solve(L[None], diff[..., None])[..., 0]  # (T, K, D)
        log_det = 2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(-1)
        return -0.5 * (X.shape[1] * np.log(2 * np.pi) + log_det[None] + (z ** 2).sum(-1))

    def _m_step(self, X, gamma):
        weight = gamma.sum(0)[:, None]  # (K, 1)
        self.means = gamma.T @ X / weight
        if self.covariance_type == "diag":
            second = gamma.T @ (X ** 2) / weight
            self.variances = np.maximum(second - self.means ** 2, self.min_variance)
            return
        diff = X[:, None, :] - self.means[None]  # (T, K, D)
        cov = np.einsum("tk,tki,tkj->kij", gamma, diff, diff) / weight[:, :, None]  # maximum likelihood (hmmlearn)
        smallest = np.linalg.eigvalsh(cov)[:, 0]
        cov[smallest < self.min_variance] += self.min_variance * np.eye(X.shape[1])  # a collapsing state only
        self.variances = cov

    def _sample_emissions(self, states, rng):
        if self.covariance_type == "full":
            L = np.linalg.cholesky(self.variances)
            noise = rng.standard_normal(self.means[states].shape)
            return self.means[states] + np.einsum("tij,tj->ti", L[states], noise)
        return rng.normal(self.means[states], np.sqrt(self.variances[states]))
