"""The shared machinery of the NumPy reference models: output layer, loss, full and truncated BPTT,
gradient clipping and the numerical gradient check.

Notation (seeds 003 and 004): inputs x_t, hidden state s_t (h_t), output o_t = V s_t + c,
p_t = softmax(o_t), loss L = Σ_t L_t. A model defines one forward step and its hand-written backward;
this module runs them over time.

References: seed 003 "Gradient computation" (∇ for o_t, s_t, V, W, U, b, c); seed 004 ``RNNNumpy``
(``forward_propagation``, ``bptt`` with ``bptt_truncate``); Karpathy's min-char-rnn (``lossFun``).
"""

from __future__ import annotations

import numpy as np

Params = dict[str, np.ndarray]


def softmax(o: np.ndarray) -> np.ndarray:
    e = np.exp(o - o.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class ReferenceRNN:
    """Base class: a recurrent core (defined by the subclass) with the output layer o_t = V s_t + c.

    Args:
        input_size: D, or the vocabulary size when inputs are token ids (one-hot, seed 004: "indexing U by
            x[t] is the same as multiplying U with a one-hot vector").
        hidden_size: H. output_size: K.
        output: ``"softmax"`` (integer targets, cross-entropy, the notes' language-model setting) or
            ``"linear"`` (real targets (T, K), L = ½ Σ_t ‖o_t - y_t‖²).
        seed: for the initial weights, U(-1/√H, 1/√H) as torch.nn.

    Subclasses implement ``_init_core(rng)``, ``initial_state()``, ``_step(x_t, state) -> (state, cache)``
    and ``_step_backward(cache, dstate) -> (dstate_prev, grads)``; the state is a tuple with h first.
    """

    core_names: tuple[str, ...] = ()

    def __init__(self, input_size: int, hidden_size: int, output_size: int, output: str = "softmax", seed: int = 0):
        if output not in ("softmax", "linear"):
            raise ValueError(f"output must be 'softmax' or 'linear'; got {output!r}")
        self.input_size, self.hidden_size, self.output_size, self.output = input_size, hidden_size, output_size, output
        rng = np.random.default_rng(seed)
        bound = 1 / np.sqrt(hidden_size)
        self.params: Params = self._init_core(rng, bound)
        self.params["V"] = rng.uniform(-bound, bound, (output_size, hidden_size))
        self.params["c"] = rng.uniform(-bound, bound, output_size)

    # ---- to implement -------------------------------------------------------------------------
    def _init_core(self, rng, bound: float) -> Params:
        raise NotImplementedError

    def initial_state(self) -> tuple:
        return (np.zeros(self.hidden_size),)

    def _step(self, x_t, state: tuple):
        raise NotImplementedError

    def _step_backward(self, cache, dstate: tuple):
        raise NotImplementedError

    # ---- shared -------------------------------------------------------------------------------
    def _input_term(self, W: np.ndarray, x_t) -> np.ndarray:
        """W x_t, with x_t a vector or a token id (a column of W)."""
        return W[:, x_t] if np.ndim(x_t) == 0 else W @ x_t

    def _input_grad(self, dW: np.ndarray, delta: np.ndarray, x_t) -> None:
        """dW += delta x_tᵀ, in place (a column update for a token id)."""
        if np.ndim(x_t) == 0:
            dW[:, x_t] += delta
        else:
            dW += np.outer(delta, x_t)

    def forward(self, x, state: tuple | None = None):
        """Run the sequence. Returns (outputs o (T, K), states [s_0 .. s_T] as tuples, step caches)."""
        state = self.initial_state() if state is None else state
        V, c = self.params["V"], self.params["c"]
        states, caches, outputs = [state], [], []
        for x_t in x:
            state, cache = self._step(x_t, state)
            states.append(state)
            caches.append(cache)
            outputs.append(V @ state[0] + c)
        return np.array(outputs), states, caches

    def _output_deltas(self, o: np.ndarray, y) -> tuple[float, np.ndarray]:
        """Loss and ∇_{o_t} L for every t (seed 003 step 2: p_t - 1[i = y_t])."""
        if self.output == "softmax":
            p = softmax(o)
            y = np.asarray(y)
            loss = -np.log(p[np.arange(len(y)), y]).sum()
            delta = p.copy()
            delta[np.arange(len(y)), y] -= 1.0
            return float(loss), delta
        diff = o - np.asarray(y, dtype=float)
        return float(0.5 * (diff ** 2).sum()), diff

    def loss(self, x, y, state: tuple | None = None) -> float:
        o, _, _ = self.forward(x, state)
        return self._output_deltas(o, y)[0]

    def truncated_loss(self, x, y, truncate: int, anchors: list) -> float:
        """The function whose gradient truncated BPTT computes: Σ_t L_t, each L_t computed from the state
        ``anchors[j]`` held fixed, j = max(0, t - truncate), through steps j..t with the current parameters.
        ``anchors`` are the states of an earlier forward pass (``forward(x)[1]``)."""
        V, c = self.params["V"], self.params["c"]
        total = 0.0
        for t in range(len(x)):
            j = max(0, t - truncate)
            state = anchors[j]
            for step in range(j, t + 1):
                state, _ = self._step(x[step], state)
            o_t = V @ state[0] + c
            total += self._output_deltas(o_t[None], np.asarray(y)[t:t + 1])[0]
        return total

    def backward(self, x, y, truncate: int | None = None, state: tuple | None = None):
        """Loss and gradients of every parameter by back-propagation through time.

        ``truncate=None``: full BPTT, one backward sweep. ``truncate=k``: as seed 004's ``bptt`` with
        ``bptt_truncate = k``: the error at each output t is propagated back through at most k + 1 steps
        (t, t-1, ..., t-k). With k ≥ T - 1 the two agree exactly (tested).
        Returns ``(loss, grads, final_state)``.
        """
        o, states, caches = self.forward(x, state)
        loss, delta_o = self._output_deltas(o, y)
        grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        V = self.params["V"]
        T = len(caches)
        for t in range(T):  # output layer (seed 003 step 5 and ∇V = Σ_t ∇_{o_t} L s_tᵀ)
            grads["V"] += np.outer(delta_o[t], states[t + 1][0])
            grads["c"] += delta_o[t]
        dh_out = delta_o @ V  # (T, H): ∇_{s_t} L through o_t (seed 003 step 3)

        def zero_state():
            return tuple(np.zeros_like(s) for s in states[0])

        if truncate is None:
            dstate = zero_state()
            for t in reversed(range(T)):  # seed 003 step 4: s_t has s_{t+1} and o_t as consumers
                dstate = (dstate[0] + dh_out[t], *dstate[1:])
                dstate, step_grads = self._step_backward(caches[t], dstate)
                _accumulate(grads, step_grads)
        else:
            if truncate < 0:
                raise ValueError(f"truncate must be >= 0 (steps back); got {truncate}")
            for t in reversed(range(T)):
                dstate = (dh_out[t], *zero_state()[1:])
                for j in range(t, max(0, t - truncate) - 1, -1):
                    dstate, step_grads = self._step_backward(caches[j], dstate)
                    _accumulate(grads, step_grads)
        return loss, grads, states[-1]


def state_gradient_norms(model: ReferenceRNN, x, state: tuple | None = None) -> np.ndarray:
    """‖∂L/∂h_t‖ for t = 1..T with L = Σ h_T (the same quantity as ``rnnkit.diagnostics.gradient_norms``),
    by the model's own backward steps. Entry t - 1 is for distance T - t."""
    _, states, caches = model.forward(x, state)
    dstate = (np.ones_like(states[-1][0]), *(np.zeros_like(s) for s in states[-1][1:]))
    norms = []
    for t in reversed(range(len(caches))):
        norms.append(np.linalg.norm(dstate[0]))
        dstate, _ = model._step_backward(caches[t], dstate)
    return np.array(norms[::-1])


def _accumulate(total: Params, part: Params) -> None:
    for k, v in part.items():
        total[k] += v


def clip_elementwise(grads: Params, limit: float) -> Params:
    """Clip each gradient entry to [-limit, limit] (seed 003: "clip minibatch param gradient element-wise";
    min-char-rnn's ``np.clip(dparam, -5, 5)``)."""
    return {k: np.clip(g, -limit, limit) for k, g in grads.items()}


def clip_by_norm(grads: Params, max_norm: float) -> tuple[Params, float]:
    """If ‖g‖ > V then g ← g V / ‖g‖, over all parameters together (seed 003). Returns (grads, ‖g‖ before)."""
    norm = float(np.sqrt(sum((g ** 2).sum() for g in grads.values())))
    scale = max_norm / norm if norm > max_norm else 1.0
    return {k: g * scale for k, g in grads.items()}, norm


def random_step_if_above(grads: Params, threshold: float, rng: np.random.Generator) -> tuple[Params, float]:
    """When ‖g‖ > threshold, replace g by a random direction of norm ``threshold`` (seed 003's third variant,
    "random step when above threshold"; Goodfellow et al. 2016 §10.11.1). Returns (grads, ‖g‖ before)."""
    norm = float(np.sqrt(sum((g ** 2).sum() for g in grads.values())))
    if norm <= threshold:
        return grads, norm
    noise = {k: rng.standard_normal(g.shape) for k, g in grads.items()}
    noise_norm = np.sqrt(sum((n ** 2).sum() for n in noise.values()))
    return {k: n * threshold / noise_norm for k, n in noise.items()}, norm


def recurrent_matrix(model: ReferenceRNN) -> np.ndarray:
    """The square matrix that multiplies the state in the candidate update: W (vanilla), the g-gate block of
    W_h (LSTM), W_hh (GRU). Its spectrum is what seeds 000/003 relate to vanishing and exploding gradients."""
    p, H = model.params, model.hidden_size
    if "W" in p:
        return p["W"]
    if "Whh" in p:
        return p["Whh"]
    return p["Wh"][2 * H:3 * H]


def gradient_check(model: ReferenceRNN, x, y, truncate: int | None = None, eps: float = 1e-3,
                   max_entries: int | None = None, seed: int = 0) -> dict[str, float]:
    """Central differences against ``model.backward``: the largest relative error per parameter.

    Without ``truncate`` the reference is the loss. With ``truncate=k`` it is ``truncated_loss``: each L_t
    through its last k + 1 steps, the state before them held at its unperturbed value, which is exactly the
    function truncated BPTT differentiates.

    The numerical derivative is the fourth-order central difference
    (L(θ-2ε) - 8 L(θ-ε) + 8 L(θ+ε) - L(θ+2ε)) / 12ε, whose O(ε⁴) error lets float64 resolve gradients
    down to ~1e-5 at a relative error below 1e-6 (the two-point formula's O(ε²) error does not).
    Relative error per entry: |a - n| / max(|a| + |n|, 1e-6); the floor keeps entries whose true gradient is
    ~0 (e.g. 7e-10, below what any finite difference resolves in float64) from reporting noise as error.
    ``max_entries`` checks a random subset per parameter (speed).
    """
    _, analytic, _ = model.backward(x, y, truncate=truncate)
    rng = np.random.default_rng(seed)
    if truncate is None:
        def objective():
            return model.loss(x, y)
    else:
        anchors = model.forward(x)[1]

        def objective():
            return model.truncated_loss(x, y, truncate, anchors)
    errors = {}
    for name in model.params:
        p = model.params[name]
        flat = np.arange(p.size)
        if max_entries is not None and p.size > max_entries:
            flat = rng.choice(p.size, max_entries, replace=False)
        worst = 0.0
        for i in flat:
            idx = np.unravel_index(i, p.shape)
            old = p[idx]
            values = []
            for k in (-2, -1, 1, 2):
                p[idx] = old + k * eps
                values.append(objective())
            p[idx] = old
            # differences first, so a flat L gives exactly 0
            numeric = ((values[0] - values[3]) - 8 * (values[1] - values[2])) / (12 * eps)
            a = analytic[name][idx]
            worst = max(worst, abs(a - numeric) / max(abs(a) + abs(numeric), 1e-6))
        errors[name] = worst
    return errors
