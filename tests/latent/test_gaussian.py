"""The Gaussian closed forms against torch.distributions and against Monte-Carlo estimates."""

import torch
from torch.distributions import Normal, kl_divergence

from rnnkit.latent import kl_normal, log_normal


def _params(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64), torch.rand(shape, generator=g, dtype=torch.float64)
            + 0.3)


def test_kl_equals_torch_distributions_and_the_closed_form():
    (mq, sq), (mp, sp) = _params((5, 7), 0), _params((5, 7), 1)
    expected = kl_divergence(Normal(mq, sq), Normal(mp, sp)).sum(-1)
    assert torch.allclose(kl_normal(mq, sq, mp, sp), expected, atol=1e-12)
    # a known case by hand: KL(N(1, 1) || N(0, 4)) = log 2 + (1 + 1) / 8 - 1/2
    one = torch.ones(1, 1, dtype=torch.float64)
    assert torch.allclose(kl_normal(one, one, 0 * one, 2 * one), torch.tensor([0.6931471805599453 + 0.25 - 0.5],
                                                                              dtype=torch.float64))
    assert torch.allclose(kl_normal(mq, sq, mq, sq), torch.zeros(5, dtype=torch.float64), atol=1e-14)


def test_kl_equals_a_monte_carlo_estimate_to_sampling_error():
    (mq, sq), (mp, sp) = _params((3, 4), 2), _params((3, 4), 3)
    g = torch.Generator().manual_seed(4)
    n = 200_000
    z = mq + sq * torch.randn((n, 3, 4), generator=g, dtype=torch.float64)
    samples = log_normal(z, mq, sq) - log_normal(z, mp, sp)  # log q - log p at draws from q
    estimate, error = samples.mean(0), samples.std(0) / n ** 0.5
    assert ((estimate - kl_normal(mq, sq, mp, sp)).abs() < 4 * error).all()


def test_log_normal_equals_torch_distributions():
    (m, s), (z, _) = _params((6, 3), 5), _params((6, 3), 6)
    assert torch.allclose(log_normal(z, m, s), Normal(m, s).log_prob(z).sum(-1), atol=1e-12)
