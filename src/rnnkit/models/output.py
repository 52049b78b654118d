"""The one result type every task model returns (nanoGPT's ``(logits, loss)``, with the recurrent state)."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class Output(NamedTuple):
    prediction: Tensor  # logits (B, T, V) or values (B, T, F)
    loss: Tensor | None  # mean loss over the targets, when targets are given
    state: object  # the recurrent state after the last step, to carry into the next chunk
