"""The NumPy reference: hand-written BPTT equals central differences (full and truncated), equals rnnkit's
torch cells under autograd, and the notes' truncation and clipping behave as written."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rnnkit.reference import (
    GRU,
    LSTM,
    VanillaRNN,
    clip_by_norm,
    clip_elementwise,
    gradient_check,
    random_step_if_above,
)
from rnnkit.reference.compare import reference_names, torch_twin

MODELS = [VanillaRNN, LSTM, GRU]
T, V_SIZE, D, H, K = 9, 5, 3, 6, 4


def token_data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V_SIZE, T), rng.integers(0, K, T)


def real_data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, D)), rng.normal(size=(T, K))


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("truncate", [None, 0, 3])
def test_gradients_equal_central_differences_softmax(cls, truncate):
    model = cls(V_SIZE, H, K, output="softmax", seed=1)
    errors = gradient_check(model, *token_data(), truncate=truncate)
    assert set(errors) == set(model.params)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("truncate", [None, 2])
def test_gradients_equal_central_differences_linear(cls, truncate):
    model = cls(D, H, K, output="linear", seed=2)
    errors = gradient_check(model, *real_data(), truncate=truncate)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("cls", MODELS)
def test_truncation_longer_than_sequence_is_full_bptt(cls):
    model = cls(V_SIZE, H, K, seed=3)
    x, y = token_data()
    _, full, _ = model.backward(x, y)
    _, truncated, _ = model.backward(x, y, truncate=T - 1)
    _, short, _ = model.backward(x, y, truncate=1)
    for name in full:
        np.testing.assert_allclose(truncated[name], full[name], atol=1e-13)
    assert any(np.abs(short[n] - full[n]).max() > 1e-6 for n in full)  # truncation does change W's gradient


@pytest.mark.parametrize("cls", MODELS)
def test_forward_and_gradients_equal_torch_cells(cls):
    model = cls(D, H, K, output="softmax", seed=4)
    x, _ = real_data()
    y = np.random.default_rng(5).integers(0, K, T)
    o, states, _ = model.forward(x)
    loss, grads, _ = model.backward(x, y)

    layer, head = torch_twin(model)
    out, _ = layer(torch.from_numpy(x)[None])
    logits = head(out)[0]
    torch_loss = F.cross_entropy(logits, torch.from_numpy(y), reduction="sum")
    torch_loss.backward()
    np.testing.assert_allclose(logits.detach().numpy(), o, atol=1e-12)
    np.testing.assert_allclose(out[0].detach().numpy(), np.array([s[0] for s in states[1:]]), atol=1e-12)
    assert torch_loss.item() == pytest.approx(loss, abs=1e-10)
    for torch_name, ref_name in reference_names(model).items():
        np.testing.assert_allclose(getattr(layer.cell, torch_name).grad.numpy(), grads[ref_name], atol=1e-12)
    np.testing.assert_allclose(head.weight.grad.numpy(), grads["V"], atol=1e-12)


def test_one_hot_inputs_index_columns_of_U():
    """Seed 004: indexing U by x[t] is multiplying U with a one-hot vector."""
    model = VanillaRNN(V_SIZE, H, K, seed=6)
    x, y = token_data()
    o_ids, _, _ = model.forward(x)
    o_onehot, _, _ = model.forward(np.eye(V_SIZE)[x])
    np.testing.assert_allclose(o_ids, o_onehot, atol=1e-14)
    _, g_ids, _ = model.backward(x, y)
    _, g_onehot, _ = model.backward(np.eye(V_SIZE)[x], y)
    np.testing.assert_allclose(g_ids["U"], g_onehot["U"], atol=1e-14)


def test_clipping_variants():
    grads = {"W": np.array([[3.0, -4.0]]), "b": np.array([12.0])}
    clipped = clip_elementwise(grads, 5.0)
    np.testing.assert_array_equal(clipped["W"], [[3.0, -4.0]])
    np.testing.assert_array_equal(clipped["b"], [5.0])
    rescaled, norm = clip_by_norm(grads, 6.5)
    assert norm == pytest.approx(13.0)
    np.testing.assert_allclose(rescaled["b"], [6.0])  # same direction, norm 6.5
    assert np.sqrt(sum((g ** 2).sum() for g in rescaled.values())) == pytest.approx(6.5)
    untouched, _ = clip_by_norm(grads, 100.0)
    np.testing.assert_array_equal(untouched["W"], grads["W"])


@pytest.mark.parametrize("cls", MODELS)
def test_state_gradient_norms_equal_torch_diagnostics(cls):
    from rnnkit.diagnostics import gradient_norms
    from rnnkit.reference import state_gradient_norms

    model = cls(D, H, K, output="linear", seed=7)
    x, _ = real_data()
    layer, _ = torch_twin(model)
    expected = gradient_norms(layer.cell, torch.from_numpy(x)[None]).numpy()
    np.testing.assert_allclose(state_gradient_norms(model, x), expected, rtol=1e-10)


def test_random_step_above_threshold():
    grads = {"W": np.array([[3.0, -4.0]]), "b": np.array([12.0])}  # norm 13
    rng = np.random.default_rng(0)
    stepped, norm = random_step_if_above(grads, 2.0, rng)
    assert norm == pytest.approx(13.0)
    assert np.sqrt(sum((g ** 2).sum() for g in stepped.values())) == pytest.approx(2.0)
    assert not np.allclose(stepped["b"] / 2.0, grads["b"] / 13.0)  # a new direction
    kept, _ = random_step_if_above(grads, 20.0, rng)
    assert kept is grads
