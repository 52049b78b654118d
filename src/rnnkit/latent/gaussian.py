"""Diagonal Gaussians by (loc, scale), the closed forms the deep Markov model's free energy needs.

    log N(z; μ, σ²) = −½ Σ_i [log 2π + 2 log σ_i + ((z_i − μ_i)/σ_i)²]
    KL(N(μ_q, σ_q²) ‖ N(μ_p, σ_p²)) = Σ_i [log(σ_p,i/σ_q,i) + (σ_q,i² + (μ_q,i − μ_p,i)²) / (2σ_p,i²) − ½]

(summed over the last dimension; Kingma & Welling 2014 appendix B, Krishnan et al. 2017 eq. 6). They equal
``torch.distributions`` (tested) without building distribution objects at every time step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

LOG_2PI = math.log(2 * math.pi)
MIN_SCALE = 1e-4  # softplus(·) + MIN_SCALE keeps every standard deviation away from 0


def positive_scale(raw: Tensor) -> Tensor:
    """A standard deviation from an unconstrained value: softplus(raw) + 1e-4."""
    return F.softplus(raw) + MIN_SCALE


def log_normal(z: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """log N(z; loc, diag(scale²)), summed over the last dimension."""
    return -0.5 * (LOG_2PI + 2 * scale.log() + ((z - loc) / scale) ** 2).sum(-1)


def kl_normal(loc_q: Tensor, scale_q: Tensor, loc_p: Tensor, scale_p: Tensor) -> Tensor:
    """KL(N(loc_q, scale_q²) ‖ N(loc_p, scale_p²)) for diagonal Gaussians, summed over the last dimension."""
    ratio = (scale_q / scale_p) ** 2
    return 0.5 * (ratio + ((loc_q - loc_p) / scale_p) ** 2 - 1 - ratio.log()).sum(-1)


def sample_normal(loc: Tensor, scale: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The reparameterised draw z = loc + scale ⊙ ε, ε ~ N(0, I) (or the given ``noise``), and ε."""
    eps = torch.randn_like(loc) if noise is None else noise
    return loc + scale * eps, eps
