"""The one result type every task model returns (nanoGPT's ``(logits, loss)``, with the recurrent state), and the
classification loss they share."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from .. import native


class Output(NamedTuple):
    prediction: Tensor  # logits (B, T, V) or values (B, T, F)
    loss: Tensor | None  # mean loss over the targets, when targets are given
    state: object  # the recurrent state after the last step, to carry into the next chunk


def cross_entropy(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean cross-entropy of logits (N, C) against class ids (N,), rows with ``ignore_index`` left out: the value
    and gradient of ``F.cross_entropy`` (reduced in float32, or float64 for float64 logits). Where autograd needs its
    gradient on the CPU, rnnkit's native kernel computes loss and gradient in one pass over the logits in their own
    dtype (bf16 under autocast: no widened copy; ``benchmarks/bench_precision.py``); otherwise torch's."""
    if (logits.requires_grad and torch.is_grad_enabled() and logits.device.type == "cpu" and logits.dim() == 2
            and logits.dtype in (torch.float32, torch.float64, torch.bfloat16) and targets.dtype == torch.int64
            and targets.dim() == 1 and native.extension() is not None and not native.python_loop_forced()):
        return _NativeCrossEntropy.apply(logits.contiguous(), targets, ignore_index)
    return F.cross_entropy(logits, targets, ignore_index=ignore_index)


class _NativeCrossEntropy(torch.autograd.Function):
    """The loss and its gradient (softmax − one-hot) / n from one kernel call; backward hands back that gradient,
    times the incoming one when it is not 1."""

    @staticmethod
    def forward(ctx, logits: Tensor, targets: Tensor, ignore_index: int) -> Tensor:
        loss, grad = native.extension().cross_entropy_forward(logits, targets, ignore_index)
        ctx.save_for_backward(grad)
        return loss.to(torch.float64 if logits.dtype == torch.float64 else torch.float32)

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        (grad,) = ctx.saved_tensors
        if bool(grad_loss == 1):
            return grad, None, None
        return grad * grad_loss.to(grad.dtype), None, None
