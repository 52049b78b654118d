"""Reading, writing and addressing an N×M memory, as the neural Turing machine does it (Graves et al. 2014, §3;
seed 003 "explicit memory": reads are weighted averages, writes change every cell by a different amount, the
weights focused on a few cells by a softmax so that SGD can train them).

Every function works on a batch of sequences and any number of heads at once:

* ``memory``: (B, N, M): N locations of width M;
* a weighting ``w``: (B, K, N) for K heads, each row on the simplex (w ≥ 0, Σ_i w(i) = 1);
* per-head scalars (β, g, γ): (B, K); keys and erase / add vectors: (B, K, M); shift distributions: (B, K, 2S+1)
  over the shifts −S … S.

The four addressing stages (Graves §3.3, eq. 5-9) are separate functions so each can be checked against its
equation; :func:`address` chains them.
"""

from __future__ import annotations

import torch
from torch import Tensor

COSINE_EPS = 1e-8


def cosine_similarity(keys: Tensor, memory: Tensor) -> Tensor:
    """K[u, v] = u·v / (‖u‖ ‖v‖) between every key and every memory row (Graves eq. 6): (B, K, M), (B, N, M) →
    (B, K, N). A norm below 1e-8 counts as 1e-8, so an all-zero row scores 0 instead of 0/0."""
    k = keys / keys.norm(dim=-1, keepdim=True).clamp_min(COSINE_EPS)
    m = memory / memory.norm(dim=-1, keepdim=True).clamp_min(COSINE_EPS)
    return torch.bmm(k, m.transpose(1, 2))


def content_weighting(keys: Tensor, strength: Tensor, memory: Tensor) -> Tensor:
    """Focus by content (Graves eq. 5): w^c(i) = exp(β K[k, M(i)]) / Σ_j exp(β K[k, M(j)]), a softmax over the
    N locations of the cosine similarity scaled by the key strength β ≥ 0 (B, K)."""
    return torch.softmax(strength.unsqueeze(-1) * cosine_similarity(keys, memory), dim=-1)


def interpolate(content: Tensor, previous: Tensor, gate: Tensor) -> Tensor:
    """Interpolation gate (Graves eq. 7): w^g = g w^c + (1 − g) w_{t−1}, with g ∈ (0, 1) (B, K)."""
    g = gate.unsqueeze(-1)
    return g * content + (1 - g) * previous


_SHIFT_INDEX: dict[tuple, Tensor] = {}


def _shift_index(size: int, shift_range: int, device) -> Tensor:
    """index[i, d] = (i − s_d) mod N for the shifts s_d = −S … S: gathering w at it lines up w(i − s) under s.
    Built once per (N, S, device): a step would otherwise spend five small operations on it."""
    key = (size, shift_range, str(device))
    index = _SHIFT_INDEX.get(key)
    if index is None:
        i = torch.arange(size, device=device).unsqueeze(1)
        shifts = torch.arange(-shift_range, shift_range + 1, device=device)
        index = _SHIFT_INDEX[key] = (i - shifts) % size  # (N, 2S+1)
    return index


def shift(weights: Tensor, distribution: Tensor) -> Tensor:
    """Convolutional shift (Graves eq. 8): w̃(i) = Σ_j w^g(j) s(i − j), indices modulo N, with the shift
    distribution s (B, K, 2S+1) over the shifts −S … S (a softmax: s ≥ 0, Σ s = 1). A shift of +1 moves the
    focus one location forward. Needs 2S + 1 ≤ N (each shift a different location)."""
    N, width = weights.shape[-1], distribution.shape[-1]
    if width % 2 != 1:
        raise ValueError(f"a shift distribution covers the shifts -S..S, an odd count 2S+1; got {width}")
    if width > N:
        raise ValueError(f"a shift range S = {width // 2} needs 2S+1 <= N memory locations; got N = {N}")
    rolled = weights[..., _shift_index(N, width // 2, weights.device)]  # (B, K, N, 2S+1): w(i − s)
    return torch.matmul(rolled, distribution.unsqueeze(-1)).squeeze(-1)


def _sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    # w^γ / Σ w^γ computed as softmax(γ log w): the same numbers, but w^γ itself underflows for a blurred weighting
    # and a large γ (float32: (1/128)^21 < 1e-45, so every entry is 0 and the quotient 0/0), and pow's backward with
    # a tensor exponent dominated the step's time. A weight below the smallest normal number counts as that: 0^γ is
    # 0 either way, but its derivative in γ, 0^γ · log 0, is 0 · (−inf) = NaN
    return torch.softmax(gamma.unsqueeze(-1) * weights.clamp_min(torch.finfo(weights.dtype).tiny).log(), -1)


def sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    """Sharpening (Graves eq. 9): w(i) = w̃(i)^γ / Σ_j w̃(j)^γ with γ ≥ 1 (B, K), which undoes the blur of the
    shift. γ = 1 leaves w̃ as it is; the result is renormalised onto the simplex."""
    if bool((gamma < 1).any()):
        raise ValueError(f"sharpening needs gamma >= 1 (gamma < 1 would blur the weighting); got min "
                         f"{gamma.min().item():.4g}")
    return _sharpen(weights, gamma)


def address(memory: Tensor, previous: Tensor, key: Tensor, strength: Tensor, gate: Tensor, distribution: Tensor,
            gamma: Tensor) -> Tensor:
    """The whole addressing mechanism (Graves Figure 2): content → interpolation → shift → sharpening, for
    every head at once. Returns the new weightings (B, K, N)."""
    w = interpolate(content_weighting(key, strength, memory), previous, gate)
    return _sharpen(shift(w, distribution), gamma)


def read(memory: Tensor, weights: Tensor) -> Tensor:
    """Read (Graves eq. 2): r = Σ_i w(i) M(i), the weighted average of the rows, for each head: (B, K, M)."""
    return torch.bmm(weights, memory)


def write(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Write (Graves eq. 3-4): M̃(i) = M(i) ∘ Π_h [1 − w_h(i) e_h], then M(i) = M̃(i) + Σ_h w_h(i) a_h, for the
    write heads h with weightings (B, K, N), erase vectors e ∈ (0, 1)^M and add vectors (B, K, M). A location is
    reset only where a weight and an erase entry are both 1; the erasures of several heads commute, so the
    order of the heads does not matter."""
    keep = 1 - weights.unsqueeze(-1) * erase.unsqueeze(-2)  # (B, K, N, M)
    kept = memory * (keep[:, 0] if keep.shape[1] == 1 else keep.prod(1))
    return kept + torch.bmm(weights.transpose(1, 2), add)
