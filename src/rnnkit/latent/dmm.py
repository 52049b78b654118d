"""The deep Markov model (deep Kalman filter) of seed 000 (Krishnan, Shalit & Sontag 2015, 2017).

Generative model, for t = 1 … T (z_0 fixed; p(z_1) learned or N(0, I)):

    z_t | z_{t−1} ~ N(F^μ(z_{t−1}), diag F^σ(z_{t−1})²)       transition: feed-forward networks
    x_t | z_t     ~ Bernoulli(σ(G(z_t)))  or  N(G^μ(z_t), diag G^σ(z_t)²)     emission

Approximate posterior (the inference network), built on rnnkit's sequence layer (any cell):

    q(z_{1:T} | x_{1:T}) = Π_t q(z_t | z_{t−1}, h_t),   h_t an RNN summary of x_{1:t} (ST-L), x_{t:T} (ST-R), or both
    (ST-LR); the mean-field variant drops z_{t−1}. The combiner (Krishnan 2017 §4):
    h̃ = (tanh(W z_{t−1} + b) + Σ_directions h_t) / (directions + 1),  μ = W_μ h̃ + b_μ,  σ = softplus(W_σ h̃ + b_σ)
    optionally followed by inverse autoregressive flows (Kingma et al. 2016).

Training maximises the free energy (seed 000: F(q, θ) = E_q[log p(x|z)] + E_q[log p(z)/q(z)]) by gradient
ascent through reparameterised samples z_t = μ_t + σ_t ⊙ ε_t:

    ELBO = Σ_t E_q[log p(x_t | z_t)] − Σ_t E_q(z_{t−1})[KL(q(z_t | z_{t−1}, x) ‖ p(z_t | z_{t−1}))]

with the KL in closed form per step (a Monte-Carlo term with flows), optionally annealed (× β < 1 early on), and
padded steps masked so a batch of different lengths is exact. The ELBO bounds log p(x); the importance-sampled
estimate log (1/K) Σ_k p(x, z^k) / q(z^k | x) is tighter and is the number to report (Burda et al. 2016).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..layers.recurrent import reverse_padded
from ..layers.sequence import RNN
from .gaussian import LOG_2PI, kl_normal, log_normal, positive_scale, sample_normal

# ---- transitions: z_{t-1} (..., Z) -> (loc, scale) of z_t -------------------------------------------------------


class GatedTransition(nn.Module):
    """Krishnan et al. 2017's gated transition function (as in Pyro's DMM example):

        g = σ(W_2 ReLU(W_1 z + b_1) + b_2),   h = W_4 ReLU(W_3 z + b_3) + b_4
        μ = (1 − g) ⊙ (W_μ z + b_μ) + g ⊙ h   (W_μ starts as the identity),   σ = softplus(W_σ ReLU(h) + b_σ)
    """

    def __init__(self, latent_size: int, hidden_size: int):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(latent_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, latent_size))
        self.proposal = nn.Sequential(nn.Linear(latent_size, hidden_size), nn.ReLU(),
                                      nn.Linear(hidden_size, latent_size))
        self.linear = nn.Linear(latent_size, latent_size)
        self.scale = nn.Linear(latent_size, latent_size)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(latent_size))
            self.linear.bias.zero_()

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        g = torch.sigmoid(self.gate(z))
        h = self.proposal(z)
        return (1 - g) * self.linear(z) + g * h, positive_scale(self.scale(F.relu(h)))


class MLPTransition(nn.Module):
    """μ, σ from a two-layer ReLU network: u = ReLU(W_2 ReLU(W_1 z + b_1) + b_2), μ = W_μ u + b_μ,
    σ = softplus(W_σ u + b_σ) (Krishnan et al. 2015)."""

    def __init__(self, latent_size: int, hidden_size: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(latent_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size),
                                  nn.ReLU())
        self.loc, self.scale = nn.Linear(hidden_size, latent_size), nn.Linear(hidden_size, latent_size)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        u = self.body(z)
        return self.loc(u), positive_scale(self.scale(u))


class LinearTransition(nn.Module):
    """The linear-Gaussian state model z_t = A z_{t−1} + w_t, w_t ~ N(0, diag σ²) (σ = softplus(s), one per unit):
    the Kalman filter's state equation with diagonal noise, as a special case of the DMM (A starts as 0.5 I)."""

    def __init__(self, latent_size: int, hidden_size: int = 0):
        super().__init__()
        self.linear = nn.Linear(latent_size, latent_size, bias=False)
        self.raw_scale = nn.Parameter(torch.zeros(latent_size))
        with torch.no_grad():
            self.linear.weight.copy_(0.5 * torch.eye(latent_size))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.linear(z), positive_scale(self.raw_scale).expand_as(z)


TRANSITIONS = {"gated": GatedTransition, "mlp": MLPTransition, "linear": LinearTransition}

# ---- emissions: z_t (..., Z) -> a distribution over x_t (..., D) ------------------------------------------------


class BernoulliEmission(nn.Module):
    """x_t,i ~ Bernoulli(σ(ℓ_i)), ℓ = W_3 ReLU(W_2 ReLU(W_1 z + b_1) + b_2) + b_3: independent binary units
    (the 88 keys of a piano roll) given z_t."""

    def __init__(self, latent_size: int, output_size: int, hidden_size: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size),
                                 nn.ReLU(), nn.Linear(hidden_size, output_size))

    def log_prob(self, x: Tensor, z: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(self.net(z), x, reduction="none").sum(-1)

    def mean(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.net(z))

    def sample(self, z: Tensor, generator=None) -> Tensor:
        p = self.mean(z)
        return (torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device) < p).to(p.dtype)


class GaussianEmission(nn.Module):
    """x_t ~ N(μ, diag σ²): ``linear`` — μ = C z + d with a learned σ per unit (the Kalman filter's observation
    equation with diagonal noise); otherwise μ, σ = softplus(·) from a ReLU network."""

    def __init__(self, latent_size: int, output_size: int, hidden_size: int, linear: bool = False):
        super().__init__()
        self.linear = linear
        if linear:
            self.loc = nn.Linear(latent_size, output_size)
            self.raw_scale = nn.Parameter(torch.zeros(output_size))
        else:
            self.body = nn.Sequential(nn.Linear(latent_size, hidden_size), nn.ReLU())
            self.loc, self.scale = nn.Linear(hidden_size, output_size), nn.Linear(hidden_size, output_size)

    def params(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if self.linear:
            loc = self.loc(z)
            return loc, positive_scale(self.raw_scale).expand_as(loc)
        u = self.body(z)
        return self.loc(u), positive_scale(self.scale(u))

    def log_prob(self, x: Tensor, z: Tensor) -> Tensor:
        return log_normal(x, *self.params(z))

    def mean(self, z: Tensor) -> Tensor:
        return self.params(z)[0]

    def sample(self, z: Tensor, generator=None) -> Tensor:
        loc, scale = self.params(z)
        return loc + scale * torch.randn(loc.shape, generator=generator, dtype=loc.dtype, device=loc.device)


def build_emission(kind: str, latent_size: int, output_size: int, hidden_size: int) -> nn.Module:
    if kind == "bernoulli":
        return BernoulliEmission(latent_size, output_size, hidden_size)
    if kind in ("gaussian", "gaussian-linear"):
        return GaussianEmission(latent_size, output_size, hidden_size, linear=kind == "gaussian-linear")
    raise ValueError(f"emission must be one of {EMISSIONS}; got {kind!r}")


EMISSIONS = ("bernoulli", "gaussian", "gaussian-linear")

# ---- inverse autoregressive flow --------------------------------------------------------------------------------


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (MADE; Germain et al. 2015)."""

    def __init__(self, in_features: int, out_features: int, mask: Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class AffineIAF(nn.Module):
    """One inverse autoregressive flow step (Kingma et al. 2016, their numerically stable form):

        [m, s] = MADE(z),  σ = sigmoid(s),  z' = σ ⊙ z + (1 − σ) ⊙ m,  log |det ∂z'/∂z| = Σ_i log σ_i

    m_i, s_i depend on z_{<i} only (in the order ``order``), so the Jacobian is triangular.
    """

    def __init__(self, latent_size: int, hidden_size: int, reverse: bool = False):
        super().__init__()
        order = torch.arange(latent_size)
        if reverse:
            order = order.flip(0)
        degrees_in = order  # unit i of z has degree order[i]
        degrees_hidden = torch.arange(hidden_size) % max(latent_size - 1, 1)
        mask_in = (degrees_hidden[:, None] >= degrees_in[None, :]).float()
        mask_out = (degrees_in[:, None] > degrees_hidden[None, :]).float()
        self.hidden = MaskedLinear(latent_size, hidden_size, mask_in)
        self.m = MaskedLinear(hidden_size, latent_size, mask_out)
        self.s = MaskedLinear(hidden_size, latent_size, mask_out)
        with torch.no_grad():  # start near the identity map: σ ≈ sigmoid(2) ≈ 0.88 (Kingma et al.'s forget-gate bias)
            self.s.bias.fill_(2.0)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        u = F.elu(self.hidden(z))
        gate = torch.sigmoid(self.s(u))
        return gate * z + (1 - gate) * self.m(u), F.logsigmoid(self.s(u)).sum(-1)


# ---- the inference network --------------------------------------------------------------------------------------

INFERENCES = ("st-l", "st-r", "st-lr", "mean-field")
COMBINERS = ("tanh", "linear")


class InferenceNetwork(nn.Module):
    """q(z_t | z_{t−1}, h_t): an RNN over x (forward: ST-L, backward: ST-R, both: ST-LR and mean-field) and the
    combiner. ``combiner="tanh"`` is Krishnan et al.'s (above); ``"linear"``, μ = W_z z_{t−1} + W_h h_t + b,
    σ = softplus(W_σ h_t + b_σ), has the form of the exact posterior of a linear-Gaussian model."""

    def __init__(self, input_size: int, latent_size: int, kind: str = "st-r", cell: str = "rnn",
                 hidden_size: int = 600, num_layers: int = 1, combiner: str = "tanh", dropout: float = 0.0,
                 **cell_kwargs):
        super().__init__()
        if kind not in INFERENCES:
            raise ValueError(f"inference must be one of {INFERENCES}; got {kind!r}")
        if combiner not in COMBINERS:
            raise ValueError(f"combiner must be one of {COMBINERS}; got {combiner!r}")
        self.kind, self.combiner = kind, combiner
        both = kind in ("st-lr", "mean-field")
        self.rnn = RNN(input_size, hidden_size, num_layers, cell=cell, dropout=dropout, bidirectional=both,
                       **cell_kwargs)
        self.directions = 2 if both else 1
        H = self.rnn.output_size // self.directions
        self.uses_previous = kind != "mean-field"
        if combiner == "tanh":
            self.from_z = nn.Linear(latent_size, H) if self.uses_previous else None
            self.loc, self.scale = nn.Linear(H, latent_size), nn.Linear(H, latent_size)
        else:
            self.from_z = nn.Linear(latent_size, latent_size, bias=False) if self.uses_previous else None
            self.loc = nn.Linear(H * self.directions, latent_size)
            self.scale = nn.Linear(H * self.directions, latent_size)
        self.hidden_per_direction = H

    def encode(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        """h (B, T, H·directions): x_{1:t} forward, x_{t:T} backward (each sequence reversed within its length)."""
        if self.kind == "st-r":
            out, _ = self.rnn(reverse_padded(x, lengths), lengths=lengths)
            return reverse_padded(out, lengths)
        return self.rnn(x, lengths=lengths)[0]

    def combine(self, z_prev: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """(loc, scale) of q(z_t | z_{t−1}, h_t)."""
        if self.combiner == "linear":
            loc = self.loc(h) + (self.from_z(z_prev) if self.uses_previous else 0)
            return loc, positive_scale(self.scale(h))
        parts = h.split(self.hidden_per_direction, -1)
        total = sum(parts) + (torch.tanh(self.from_z(z_prev)) if self.uses_previous else 0)
        mixed = total / (len(parts) + int(self.uses_previous))
        return self.loc(mixed), positive_scale(self.scale(mixed))


# ---- the model --------------------------------------------------------------------------------------------------


class DeepMarkovModel(nn.Module):
    """A deep Markov model with its inference network (the module docstring has the equations).

    ``terms(x, lengths)`` → per-step ELBO terms; ``forward(inputs, targets=None, state=None, lengths=None,
    kl_weight=1)`` → ``Output(terms (B, T, 2) = [log p(x_t|z_t), KL_t], loss = −(Σ log p − β Σ KL) / Σ steps, None)``
    (the negative ELBO per time step, in nats); ``importance_log_likelihood`` → log p̂(x) per sequence;
    ``sample`` → ancestral samples.

    Args: input_size (x's size, 88 for piano rolls), latent_size, emission (``bernoulli``, ``gaussian``,
    ``gaussian-linear``), transition (``gated``, ``mlp``, ``linear``), transition_size / emission_size (hidden
    units of those networks), inference (``st-l``, ``st-r``, ``st-lr``, ``mean-field``), cell / hidden_size /
    num_layers of the inference RNN (any registered cell), combiner (``tanh``, ``linear``), flows (IAF steps after
    the combiner), initial (``learned``: p(z_1) = N(μ_1, σ_1²) with learned μ_1, σ_1; ``fixed``: N(0, I)).
    """

    def __init__(self, input_size: int, latent_size: int = 100, emission: str = "bernoulli",
                 transition: str = "gated", transition_size: int = 200, emission_size: int = 100,
                 inference: str = "st-r", cell: str = "rnn", hidden_size: int = 600, num_layers: int = 1,
                 combiner: str = "tanh", flows: int = 0, initial: str = "learned", dropout: float = 0.0,
                 **cell_kwargs):
        super().__init__()
        if transition not in TRANSITIONS:
            raise ValueError(f"transition must be one of {sorted(TRANSITIONS)}; got {transition!r}")
        if initial not in ("learned", "fixed"):
            raise ValueError(f"initial must be 'learned' or 'fixed'; got {initial!r}")
        self.input_size, self.latent_size, self.emission_kind = input_size, latent_size, emission
        self.transition = TRANSITIONS[transition](latent_size, transition_size)
        self.emission = build_emission(emission, latent_size, input_size, emission_size)
        self.inference = InferenceNetwork(input_size, latent_size, inference, cell, hidden_size, num_layers,
                                          combiner, dropout, **cell_kwargs)
        self.flows = nn.ModuleList(AffineIAF(latent_size, max(2 * latent_size, 8), reverse=i % 2 == 1)
                                   for i in range(flows))
        self.initial = initial
        self.z_q_0 = nn.Parameter(torch.zeros(latent_size))  # the combiner's z_0 (part of q)
        if initial == "learned":
            self.initial_loc = nn.Parameter(torch.zeros(latent_size))
            self.initial_raw_scale = nn.Parameter(torch.full((latent_size,), math.log(math.e - 1)))  # σ_1 = 1

    def prior_first(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """(loc, scale) of p(z_1), shaped like ``like`` (B, Z)."""
        if self.initial == "fixed":
            return torch.zeros_like(like), torch.ones_like(like)
        return self.initial_loc.expand_as(like), positive_scale(self.initial_raw_scale).expand_as(like)

    def terms(self, x: Tensor, lengths: Tensor | None = None, noise: Tensor | None = None,
              encoded: Tensor | None = None) -> dict[str, Tensor]:
        """Per-step terms (each (B, T), zero at padded steps) for one posterior sample per sequence: ``log_px``
        log p(x_t | z_t); ``kl`` KL(q(z_t|·) ‖ p(z_t|z_{t−1})) in closed form (with flows: log q − log p at the
        sample); ``log_pz``, ``log_qz`` the densities at the sample (importance weights); ``mask``. ``noise``
        (B, T, Z) fixes ε (tests)."""
        B, T, _ = x.shape
        mask = _step_mask(lengths, B, T, x.device, x.dtype)
        h = self.inference.encode(x, lengths)
        z_prev = self.z_q_0.expand(B, -1)
        zs, locs, scales, log_q = [], [], [], []
        for t in range(T):  # q(z_t | z_{t-1}, h_t) needs the sample of z_{t-1}: the one sequential part
            loc, scale = self.inference.combine(z_prev, h[:, t])
            z, eps = sample_normal(loc, scale, None if noise is None else noise[:, t])
            lq = -0.5 * (LOG_2PI + eps ** 2).sum(-1) - scale.log().sum(-1)
            for flow in self.flows:
                z, log_det = flow(z)
                lq = lq - log_det
            zs.append(z)
            locs.append(loc)
            scales.append(scale)
            log_q.append(lq)
            z_prev = z
        Z = torch.stack(zs, 1)  # (B, T, Z)
        first_loc, first_scale = self.prior_first(Z[:, 0])
        if T > 1:  # p(z_t | z_{t-1}) for t >= 2, every step at once given the samples
            loc_p, scale_p = self.transition(Z[:, :-1])
            loc_p, scale_p = torch.cat([first_loc[:, None], loc_p], 1), torch.cat([first_scale[:, None], scale_p], 1)
        else:
            loc_p, scale_p = first_loc[:, None], first_scale[:, None]
        log_pz = log_normal(Z, loc_p, scale_p)
        log_qz = torch.stack(log_q, 1)
        if len(self.flows):
            kl = log_qz - log_pz
        else:
            kl = kl_normal(torch.stack(locs, 1), torch.stack(scales, 1), loc_p, scale_p)
        log_px = self.emission.log_prob(x, Z)
        return {"log_px": log_px * mask, "kl": kl * mask, "log_pz": log_pz * mask, "log_qz": log_qz * mask,
                "mask": mask, "z": Z}

    def forward(self, inputs: Tensor, targets: Tensor | None = None, state=None, lengths=None,
                kl_weight: float = 1.0):
        from ..models.output import Output

        _check_input(inputs, self.input_size)
        terms = self.terms(inputs, lengths)
        steps = terms["mask"].sum()
        loss = -(terms["log_px"].sum() - kl_weight * terms["kl"].sum()) / steps
        return Output(torch.stack([terms["log_px"], terms["kl"]], -1), loss, None)

    @torch.no_grad()
    def importance_log_likelihood(self, x: Tensor, lengths: Tensor | None = None, samples: int = 100,
                                  rows_per_pass: int = 2048) -> Tensor:
        """log p̂(x) per sequence (B,): log (1/K) Σ_k p(x, z^k) / q(z^k | x) with K = ``samples`` posterior draws
        (Burda et al. 2016). A lower bound in expectation that tightens as K grows; K = 1 is the ELBO sample."""
        B, T, D = x.shape
        per_pass = max(1, rows_per_pass // B)
        encoded = self.inference.encode(x, lengths)  # the same for every sample
        weights = []
        for start in range(0, samples, per_pass):
            k = min(per_pass, samples - start)
            ls = None if lengths is None else torch.as_tensor(lengths).repeat(k)
            t = self.terms(x.repeat(k, 1, 1), ls, encoded=encoded.repeat(k, 1, 1))
            weights.append((t["log_px"] + t["log_pz"] - t["log_qz"]).sum(1).view(k, B))
        w = torch.cat(weights)
        return torch.logsumexp(w, 0) - math.log(samples)

    @torch.no_grad()
    def sample(self, num: int, length: int, generator: torch.Generator | None = None,
               mean: bool = False) -> tuple[Tensor, Tensor]:
        """Ancestral samples from the generative model: (x (num, length, D), z (num, length, Z)); ``mean``: the
        emission's mean (key probabilities) instead of a draw of x."""
        p = next(self.parameters())
        zero = torch.zeros(num, self.latent_size, dtype=p.dtype, device=p.device)
        loc, scale = self.prior_first(zero)
        zs = []
        for _ in range(length):
            z = loc + scale * torch.randn(loc.shape, generator=generator, dtype=loc.dtype, device=loc.device)
            zs.append(z)
            loc, scale = self.transition(z)
        Z = torch.stack(zs, 1)
        x = self.emission.mean(Z) if mean else self.emission.sample(Z, generator)
        return x, Z


def _step_mask(lengths, B: int, T: int, device, dtype) -> Tensor:
    if lengths is None:
        return torch.ones(B, T, device=device, dtype=dtype)
    lengths = torch.as_tensor(lengths, device=device)
    return (torch.arange(T, device=device)[None] < lengths[:, None]).to(dtype)


def _check_input(x, size: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != size or not x.dtype.is_floating_point:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"DeepMarkovModel expected observations (batch, time, {size}) of floats; got {got}")


def to_lds_params(model: DeepMarkovModel):
    """The linear-Gaussian state-space model a DMM with ``transition="linear"`` and ``emission="gaussian-linear"``
    is — :class:`rnnkit.baselines.kalman.LDSParams` (A, C, diagonal Q and R, μ_0, diagonal P_0) and the emission's
    offset d (y_t = C z_t + d + v_t; the Kalman filter takes y − d) — so its exact log-likelihood, filter and
    smoother come from the Kalman filter."""
    import numpy as np

    from ..baselines.kalman import LDSParams

    if not isinstance(model.transition, LinearTransition) or not getattr(model.emission, "linear", False):
        raise ValueError("to_lds_params needs a DMM with transition='linear' and emission='gaussian-linear'")
    with torch.no_grad():
        t, e = model.transition, model.emission
        mu0, s0 = model.prior_first(torch.zeros(1, model.latent_size, dtype=t.linear.weight.dtype))
        return LDSParams(A=t.linear.weight.double().numpy(), C=e.loc.weight.double().numpy(),
                         Q=np.diag(positive_scale(t.raw_scale).double().numpy() ** 2),
                         R=np.diag(positive_scale(e.raw_scale).double().numpy() ** 2),
                         mu0=mu0[0].double().numpy(), P0=np.diag(s0[0].double().numpy() ** 2)), \
            e.loc.bias.double().numpy()
