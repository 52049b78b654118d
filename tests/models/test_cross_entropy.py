"""rnnkit's cross-entropy (models/output.py): the native kernel's loss and gradient against torch's F.cross_entropy,
in float64 exactly, in float32 and under bf16 autocast to rounding, with ignored rows, scaled gradients and bad
targets."""

import pytest
import torch
from torch.nn import functional as F

from rnnkit import native
from rnnkit.models.output import cross_entropy

pytestmark = pytest.mark.skipif(native.extension() is None, reason="rnnkit's native kernels are not built here")


def _both(logits, targets, ignore_index=-100, scale=1.0):
    """(loss, grad) from rnnkit's cross_entropy and from F.cross_entropy on the same leaf values."""
    results = []
    for fn in (cross_entropy, lambda x, t, ignore_index: F.cross_entropy(x, t, ignore_index=ignore_index)):
        x = logits.detach().clone().requires_grad_()
        loss = fn(x, targets, ignore_index=ignore_index)
        (loss * scale).backward()
        results.append((loss.detach(), x.grad))
    return results


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (64, 10_000), (300, 65)])
def test_float64_equals_torch(shape):
    torch.manual_seed(0)
    N, V = shape
    logits = torch.randn(N, V, dtype=torch.float64) * 4
    targets = torch.randint(0, V, (N,))
    targets[1::3] = -100
    (loss, grad), (ref_loss, ref_grad) = _both(logits, targets)
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-14)


def test_float32_and_a_scaled_gradient_equal_torch():
    torch.manual_seed(1)
    logits, targets = torch.randn(128, 500) * 3, torch.randint(0, 500, (128,))
    (loss, grad), (ref_loss, ref_grad) = _both(logits, targets, scale=0.37)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-8)


def test_gradcheck():
    torch.manual_seed(2)
    logits = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 5, -100, 2, 2])
    assert torch.autograd.gradcheck(lambda x: cross_entropy(x, targets), (logits,))


def test_bf16_logits_are_read_in_bf16_and_reduced_in_float32():
    """Under autocast the logits come out of the product in bf16; the loss equals torch's (which widens them to
    float32 first) to float32 rounding, and the gradient to bf16 rounding, in bf16."""
    torch.manual_seed(3)
    h, w = torch.randn(256, 64), torch.randn(1000, 64) * 0.3
    targets = torch.randint(0, 1000, (256,))
    grads, losses = [], []
    for fn in (cross_entropy, lambda x, t: F.cross_entropy(x, t)):
        hh = h.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = hh @ w.t()
            loss = fn(logits, targets)
        assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
        loss.backward()
        grads.append(hh.grad)
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grads[0], grads[1], rtol=0.02, atol=2e-4)


def test_edge_cases_match_torch():
    logits = torch.randn(4, 5, requires_grad=True)
    every_row_ignored = torch.full((4,), -100)
    assert cross_entropy(logits, every_row_ignored).isnan() and F.cross_entropy(logits, every_row_ignored).isnan()
    with pytest.raises(RuntimeError, match="Target 5 is out of bounds"):
        cross_entropy(logits, torch.tensor([0, 1, 5, 2]))
    bad = logits.detach().clone()
    bad[1, 2] = float("nan")
    assert cross_entropy(bad.requires_grad_(), torch.tensor([0, 1, 2, 3])).isnan()  # the Trainer's NaN guard sees it


def test_without_autograd_or_inside_python_loop_torch_computes_it():
    logits, targets = torch.randn(3, 4, requires_grad=True), torch.tensor([0, 1, 2])
    assert cross_entropy(logits, targets).grad_fn.name() == "_NativeCrossEntropyBackward"
    with native.python_loop():
        assert cross_entropy(logits, targets).grad_fn.name() == "NllLossBackward0"
    with torch.no_grad():
        torch.testing.assert_close(cross_entropy(logits, targets), F.cross_entropy(logits, targets))
