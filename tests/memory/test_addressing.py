"""Each addressing stage, the read and the write against Graves et al. 2014's equations, written out with loops
on hand-made and random inputs."""

import math

import pytest
import torch

from rnnkit.memory import (
    address,
    content_weighting,
    cosine_similarity,
    interpolate,
    read,
    sharpen,
    shift,
    write,
)

B, K, N, M = 2, 3, 7, 4


def _simplex(*shape):
    return torch.softmax(torch.randn(*shape, dtype=torch.float64), -1)


def test_content_weighting_is_softmax_of_strength_times_cosine():
    memory = torch.randn(B, N, M, dtype=torch.float64)
    keys = torch.randn(B, K, M, dtype=torch.float64)
    beta = torch.rand(B, K, dtype=torch.float64) * 5
    w = content_weighting(keys, beta, memory)
    for b in range(B):
        for h in range(K):
            k = keys[b, h]
            cos = torch.stack([k @ memory[b, i] / (k.norm() * memory[b, i].norm()) for i in range(N)])  # eq. 6
            expected = torch.exp(beta[b, h] * cos) / torch.exp(beta[b, h] * cos).sum()  # eq. 5
            torch.testing.assert_close(w[b, h], expected, rtol=1e-12, atol=1e-12)


def test_cosine_of_a_zero_row_is_zero_not_nan():
    memory = torch.zeros(1, 3, M, dtype=torch.float64)
    memory[0, 1] = 1.0
    cos = cosine_similarity(torch.ones(1, 1, M, dtype=torch.float64), memory)
    torch.testing.assert_close(cos, torch.tensor([[[0.0, 1.0, 0.0]]], dtype=torch.float64))


def test_interpolation_is_the_gated_mixture():
    wc, wp = _simplex(B, K, N), _simplex(B, K, N)
    g = torch.rand(B, K, dtype=torch.float64)
    torch.testing.assert_close(interpolate(wc, wp, g), g[..., None] * wc + (1 - g[..., None]) * wp)  # eq. 7


def test_shift_moves_a_one_hot_weighting_circularly():
    w = torch.zeros(1, 1, N, dtype=torch.float64)
    w[0, 0, N - 1] = 1.0
    forward_one = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64)  # shifts -1, 0, +1
    torch.testing.assert_close(shift(w, forward_one)[0, 0], torch.eye(N, dtype=torch.float64)[0])  # wraps to 0
    back_one = torch.tensor([[[1.0, 0.0, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(shift(w, back_one)[0, 0], torch.eye(N, dtype=torch.float64)[N - 2])


@pytest.mark.parametrize("shift_range", [0, 1, 2])
def test_shift_is_circular_convolution(shift_range):
    w = _simplex(B, K, N)
    s = _simplex(B, K, 2 * shift_range + 1)
    out = shift(w, s)
    for b in range(B):
        for h in range(K):
            for i in range(N):  # eq. 8: w~(i) = sum_j w(j) s(i - j), indices mod N, s over shifts -S..S
                expected = sum(w[b, h, j] * s[b, h, d + shift_range] for j in range(N)
                               for d in range(-shift_range, shift_range + 1) if (i - j) % N == d % N)
                torch.testing.assert_close(out[b, h, i], expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.sum(-1), torch.ones(B, K, dtype=torch.float64))


def test_sharpening_renormalises_and_gamma_one_is_identity():
    w = _simplex(B, K, N)
    gamma = 1 + torch.rand(B, K, dtype=torch.float64) * 3
    out = sharpen(w, gamma)
    expected = w ** gamma[..., None] / (w ** gamma[..., None]).sum(-1, keepdim=True)  # eq. 9
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(sharpen(w, torch.ones(B, K, dtype=torch.float64)), w)
    assert (out.max(-1).values >= w.max(-1).values - 1e-12).all()  # sharper, never flatter


def test_sharpening_a_blurred_weighting_with_a_large_gamma_stays_finite():
    w = torch.full((1, 1, 128), 1 / 128)  # float32: (1/128)^30 underflows to 0 in every entry
    w[0, 0, 5] *= 1.01
    w = w / w.sum()
    gamma = torch.tensor([[30.0]], requires_grad=True)
    out = sharpen(w, gamma)
    assert torch.isfinite(out).all() and abs(float(out.detach().sum()) - 1) < 1e-4 and int(out.argmax()) == 5
    out[0, 0, 5].backward()
    assert torch.isfinite(gamma.grad).all()


def test_sharpening_refuses_gamma_below_one():
    with pytest.raises(ValueError, match="gamma >= 1"):
        sharpen(_simplex(1, 1, N), torch.tensor([[0.5]], dtype=torch.float64))


def test_shift_refuses_a_range_wider_than_the_memory():
    with pytest.raises(ValueError, match="2S\\+1 <= N"):
        shift(_simplex(1, 1, 3), _simplex(1, 1, 5))


def test_address_stays_on_the_simplex_with_exact_zeros_and_finite_gradients():
    memory = torch.randn(B, N, M, dtype=torch.float64)
    prev = torch.zeros(B, K, N, dtype=torch.float64)
    prev[..., 0] = 1.0  # one-hot previous weighting: exact zeros elsewhere
    params = [torch.randn(B, K, M, dtype=torch.float64), torch.full((B, K), 200.0, dtype=torch.float64),
              torch.zeros(B, K, dtype=torch.float64), _simplex(B, K, 3), torch.full((B, K), 30.0, dtype=torch.float64)]
    params = [p.requires_grad_() for p in params]
    w = address(memory, prev, *params)
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(B, K, dtype=torch.float64))
    w.pow(2).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in params)


def test_read_is_the_weighted_average_of_rows():
    memory = torch.randn(B, N, M, dtype=torch.float64)
    w = _simplex(B, K, N)
    r = read(memory, w)
    for b in range(B):
        for h in range(K):
            torch.testing.assert_close(r[b, h], sum(w[b, h, i] * memory[b, i] for i in range(N)))  # eq. 2


@pytest.mark.parametrize("heads", [1, 2])
def test_write_erases_then_adds_as_the_paper(heads):
    memory = torch.randn(B, N, M, dtype=torch.float64)
    w = _simplex(B, heads, N)
    e = torch.rand(B, heads, M, dtype=torch.float64)
    a = torch.randn(B, heads, M, dtype=torch.float64)
    out = write(memory, w, e, a)
    for b in range(B):
        for i in range(N):
            kept = memory[b, i].clone()
            for h in range(heads):  # eq. 3: M~(i) = M(i) * prod_h (1 - w_h(i) e_h)
                kept = kept * (1 - w[b, h, i] * e[b, h])
            expected = kept + sum(w[b, h, i] * a[b, h] for h in range(heads))  # eq. 4
            torch.testing.assert_close(out[b, i], expected)


def test_a_full_weight_with_a_full_erase_resets_the_location():
    memory = torch.randn(1, N, M, dtype=torch.float64)
    w = torch.zeros(1, 1, N, dtype=torch.float64)
    w[0, 0, 3] = 1.0
    out = write(memory, w, torch.ones(1, 1, M, dtype=torch.float64), torch.zeros(1, 1, M, dtype=torch.float64))
    assert (out[0, 3] == 0).all()
    torch.testing.assert_close(out[0, :3], memory[0, :3])
    assert not math.isnan(float(out.sum()))
