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


def _split(X: np.ndarray, lengths) -> list[np.ndarray]:
    if lengths is None:
        return [X]
    lengths = np.asarray(lengths, int)
    if (lengths < 1).any() or lengths.sum() != len(X):
        raise ValueError(f"lengths must be positive and sum to the number of samples ({len(X)}); "
                         f"got sum {lengths.sum()}")
    return np.split(X, np.cumsum(lengths)[:-1])


class _HMM:
    """Shared machinery. Subclasses define emission log-probabilities, their M-step and sampling."""

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

    # ---- inference --------------------------------------------------------------------------------
    def _forward(self, X: np.ndarray):
        """Scaled forward pass (Rabiner 1989 §V.A): α̂_t = α_t / (c_1 ⋯ c_t) sums to 1 and
        log p(X) = Σ_t log c_t. Emission probabilities are divided by their per-step maximum first (added back
        to the log-likelihood), so nothing under- or overflows however long the sequence."""
        log_b = self._emission_logprob(X)  # (T, K)
        shift = log_b.max(1)
        b = np.exp(log_b - shift[:, None])
        A = self.transmat
        T, K = b.shape
        alpha, c = np.empty((T, K)), np.empty(T)
        a = self.startprob * b[0]
        for t in range(T):
            if t > 0:
                a = (alpha[t - 1] @ A) * b[t]
            c[t] = a.sum()
            alpha[t] = a / c[t]
        with np.errstate(divide="ignore"):
            loglik = float(np.log(c).sum() + shift.sum())
        return alpha, c, b, loglik

    def _forward_backward(self, X: np.ndarray):
        """Scaled α̂, β̂ (γ_t = α̂_t ⊙ β̂_t), the expected transition counts Σ_t ξ_t, and log p(X)."""
        alpha, c, b, loglik = self._forward(X)
        A = self.transmat
        T, K = alpha.shape
        beta = np.empty((T, K))
        beta[-1] = 1.0
        for t in range(T - 2, -1, -1):
            beta[t] = A @ (b[t + 1] * beta[t + 1]) / c[t + 1]
        # Σ_t ξ_t(i, j) = Σ_t α̂_t(i) A_ij b_t+1(j) β̂_t+1(j) / c_t+1, as one product over t
        xi_sum = A * (alpha[:-1].T @ (b[1:] * beta[1:] / c[1:, None])) if T > 1 else np.zeros((K, K))
        return alpha * beta, xi_sum, loglik

    def score(self, X, lengths=None) -> float:
        """log p(X) summed over the sequences."""
        return sum(self._forward(x)[3] for x in _split(self._check(X), lengths))

    def posteriors(self, X, lengths=None) -> np.ndarray:
        """γ_t(k) = p(z_t = k | the whole sequence), (n_samples, K)."""
        return np.concatenate([self._forward_backward(x)[0] for x in _split(self._check(X), lengths)])

    def decode(self, X, lengths=None) -> tuple[float, np.ndarray]:
        """Viterbi: the most probable state path and its joint log-probability (summed over sequences)."""
        total, paths = 0.0, []
        log_A = np.log(self.transmat)
        for x in _split(self._check(X), lengths):
            log_b = self._emission_logprob(x)
            T, K = log_b.shape
            delta = np.log(self.startprob) + log_b[0]
            back = np.zeros((T, K), int)
            for t in range(1, T):
                scores = delta[:, None] + log_A  # (from, to)
                back[t] = scores.argmax(0)
                delta = scores.max(0) + log_b[t]
            path = np.zeros(T, int)
            path[-1] = delta.argmax()
            for t in range(T - 1, 0, -1):
                path[t - 1] = back[t, path[t]]
            total += float(delta.max())
            paths.append(path)
        return total, np.concatenate(paths)

    # ---- learning ---------------------------------------------------------------------------------
    def fit(self, X, lengths=None, n_iter: int = 100, tol: float = 1e-4) -> list[float]:
        """Baum-Welch EM from the current parameters; returns the log-likelihood before each M-step (it never
        decreases). Stops when it improves by less than ``tol``."""
        seqs = _split(self._check(X), lengths)
        history = []
        for _ in range(n_iter):
            start = np.zeros(self.n_states)
            trans = np.zeros((self.n_states, self.n_states))
            gammas, total = [], 0.0
            for x in seqs:
                gamma, xi_sum, ll = self._forward_backward(x)
                total += ll
                gammas.append(gamma)
                start += gamma[0]
                trans += xi_sum
            history.append(total)
            if len(history) > 1 and history[-1] - history[-2] < tol:
                break
            self.startprob = start / start.sum()
            self.transmat = trans / np.maximum(trans.sum(1, keepdims=True), 1e-300)
            self._m_step(np.concatenate(seqs), np.concatenate(gammas))
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
            return np.log(self.emissionprob[:, X[:, 0]].T)

    def _m_step(self, X, gamma):
        counts = np.zeros_like(self.emissionprob)
        np.add.at(counts.T, X[:, 0], gamma)
        self.emissionprob = counts / np.maximum(counts.sum(1, keepdims=True), 1e-300)

    def _sample_emissions(self, states, rng):
        return np.array([[rng.choice(self.emissionprob.shape[1], p=self.emissionprob[s])] for s in states])


class GaussianHMM(_HMM):
    """Real vectors with a diagonal-covariance Gaussian per state: ``means`` (K, D), ``variances`` (K, D)."""

    def __init__(self, startprob, transmat, means, variances, min_variance: float = 1e-3):
        super().__init__(startprob, transmat)
        self.means = np.asarray(means, float)
        self.variances = np.asarray(variances, float)
        self.min_variance = min_variance
        if self.means.shape != self.variances.shape or self.means.shape[0] != self.n_states:
            raise ValueError(f"means and variances must both be ({self.n_states}, n_features)")
        if (self.variances <= 0).any():
            raise ValueError("variances must be positive")

    def _check(self, X) -> np.ndarray:
        X = np.asarray(X, float)
        X = X.reshape(-1, 1) if X.ndim == 1 else X
        if X.shape[1] != self.means.shape[1]:
            raise ValueError(f"GaussianHMM expects (n, {self.means.shape[1]}) observations; got {X.shape}")
        return X

    def _emission_logprob(self, X):
        diff = X[:, None, :] - self.means[None]  # (T, K, D)
        return -0.5 * (np.log(2 * np.pi * self.variances)[None] + diff ** 2 / self.variances[None]).sum(-1)

    def _m_step(self, X, gamma):
        weight = gamma.sum(0)[:, None]  # (K, 1)
        self.means = gamma.T @ X / weight
        second = gamma.T @ (X ** 2) / weight
        self.variances = np.maximum(second - self.means ** 2, self.min_variance)

    def _sample_emissions(self, states, rng):
        return rng.normal(self.means[states], np.sqrt(self.variances[states]))
