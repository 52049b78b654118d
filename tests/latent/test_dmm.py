"""The deep Markov model: exact masking of padded batches, gradients through the reparameterised samples
(gradcheck in float64), the flows' log-determinants, importance sampling, and the proof on a linear-Gaussian
state-space model against rnnkit's Kalman filter."""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from rnnkit.baselines.kalman import LDSParams, kalman_filter, simulate
from rnnkit.latent import AffineIAF, DeepMarkovModel
from rnnkit.latent.dmm import to_lds_params


def _tiny(dtype=torch.float64, **kw):
    torch.manual_seed(0)
    options = dict(latent_size=3, emission="gaussian", transition="gated", transition_size=5, emission_size=4,
                   inference="st-lr", cell="gru", hidden_size=4)
    options.update(kw)
    return DeepMarkovModel(2, **options).to(dtype)


@pytest.mark.parametrize("inference", ["st-l", "st-r", "st-lr", "mean-field"])
@pytest.mark.parametrize("flows", [0, 2])
def test_padded_batch_equals_each_sequence_alone(inference, flows):
    model = _tiny(inference=inference, flows=flows, emission="bernoulli")
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([6, 2, 4])
    x = (torch.rand(3, 6, 2, generator=g) < 0.4).double()
    noise = torch.randn(3, 6, 3, generator=g, dtype=torch.float64)
    batch = model.terms(x, lengths, noise=noise)
    for i, n in enumerate(lengths.tolist()):
        alone = model.terms(x[i:i + 1, :n], noise=noise[i:i + 1, :n])
        for name in ("log_px", "kl", "log_pz", "log_qz"):
            assert torch.allclose(batch[name][i, :n], alone[name][0], atol=1e-12), name
            assert (batch[name][i, n:] == 0).all()


def test_elbo_gradients_flow_through_the_reparameterisation():
    """gradcheck of the ELBO (fixed ε) in float64 w.r.t. the observations, the noise and the parameters of the
    inference network, transition and emission: the gradient reaches q's parameters only through z = μ + σε."""
    model = _tiny()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    noise = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 3])

    def elbo(x, noise):
        t = model.terms(x, lengths, noise=noise)
        return (t["log_px"] - t["kl"]).sum()

    assert torch.autograd.gradcheck(elbo, (x, noise))
    names = ["inference.loc.weight", "inference.scale.bias", "inference.rnn.cells.0.weight_hh",
             "transition.gate.0.weight", "transition.scale.weight", "emission.loc.weight", "initial_raw_scale",
             "z_q_0"]
    params = {n: p.detach().clone().requires_grad_() for n, p in model.named_parameters() if n in names}
    assert len(params) == len(names)

    def loss_of(*values):
        torch.manual_seed(3)  # forward draws ε itself: the same ε at every evaluation
        return functional_call(model, dict(zip(params, values)), (x.detach(), None, None, lengths)).loss

    assert torch.autograd.gradcheck(loss_of, tuple(params.values()))


def test_iaf_log_determinant_equals_autograd_jacobian():
    torch.manual_seed(0)
    flow = AffineIAF(4, 8, reverse=True).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    z = torch.randn(4, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda v: flow(v)[0], z)
    assert torch.allclose(J.flip(0, 1).tril(), J.flip(0, 1))  # autoregressive in the reversed order: triangular
    assert torch.allclose(torch.logdet(J).reshape(()), flow(z)[1], atol=1e-10)


def test_importance_sampling_tightens_the_bound():
    model = _tiny(emission="bernoulli", inference="st-r")
    x = (torch.rand(4, 5, 2, generator=torch.Generator().manual_seed(4)) < 0.5).double()
    torch.manual_seed(5)
    elbos = torch.stack([(lambda t: (t["log_px"] - t["kl"]).sum(1))(model.terms(x)) for _ in range(200)]).mean(0)
    iw = model.importance_log_likelihood(x, samples=500)
    assert (iw > elbos).all()


def test_bad_observations_are_refused_by_shape():
    model = _tiny()
    with pytest.raises(ValueError, match=r"expected observations \(batch, time, 2\) of floats; got"):
        model(torch.zeros(3, 4, 5, dtype=torch.float64))


def test_linear_dmm_matches_the_kalman_filter():
    """Data from a linear-Gaussian state-space model; a DMM with linear transition and emission and the structured
    (ST-R) inference network with the linear combiner: its ELBO comes within 1% of the exact log-likelihood (the
    Kalman filter with the true parameters), the importance-sampled estimate closer still, and the learned dynamics
    match the true ones up to the invariances (A's eigenvalues; the learned model's exact likelihood)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    true = LDSParams(A=np.array([[0.9, 0.2], [0.0, 0.7]]), C=rng.normal(size=(4, 2)), Q=np.diag([0.1, 0.2]),
                     R=np.diag([0.1, 0.2, 0.15, 0.3]), mu0=np.zeros(2), P0=np.eye(2))
    ys = [simulate(true, 30, rng)[1] for _ in range(64)]
    steps = 64 * 30
    exact = sum(kalman_filter(y, true).loglik for y in ys) / steps
    x = torch.tensor(np.stack(ys), dtype=torch.float32)
    model = DeepMarkovModel(4, 2, emission="gaussian-linear", transition="linear", inference="st-r", cell="rnn",
                            hidden_size=8, combiner="linear")
    updates = 1500
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * s / updates)))
    for _ in range(updates):
        loss = model(x[torch.randint(0, 64, (32,))]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    with torch.no_grad():
        elbo = np.mean([float((lambda t: (t["log_px"] - t["kl"]).sum())(model.terms(x))) for _ in range(10)]) / steps
    iw = float(model.importance_log_likelihood(x, samples=200).sum()) / steps
    assert abs(elbo - exact) / abs(exact) < 0.01
    assert abs(iw - exact) < abs(elbo - exact) and abs(iw - exact) / abs(exact) < 0.005
    lds, d = to_lds_params(model)
    assert np.allclose(np.sort(np.linalg.eigvals(lds.A).real), [0.7, 0.9], atol=0.05)
    learned = sum(kalman_filter(y - d, lds).loglik for y in ys) / steps
    assert abs(learned - exact) / abs(exact) < 0.005
