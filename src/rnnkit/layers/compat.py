"""Interop with torch.nn.LSTM / GRU / RNN: copy weights in either direction.

torch keeps two biases per gate block (b_ih, b_hh) "for CuDNN compatibility"; rnnkit's LSTM and Elman
cells keep one, b = b_ih + b_hh, which is the same function. The torch-form GRU keeps both (b_hn sits
inside the reset product), so its copy is one-to-one.
"""

from __future__ import annotations

import torch
from torch import nn

from .sequence import RNN

_CELL_FOR = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}


def from_torch(module: nn.RNNBase) -> RNN:
    """A new :class:`RNN` computing exactly what ``module`` (torch.nn.LSTM/GRU/RNN) computes."""
    kind = _CELL_FOR.get(type(module))
    if kind is None:
        raise ValueError(f"from_torch expects torch.nn.LSTM, GRU or RNN; got {type(module).__name__}")
    kwargs = {"bias": module.bias}
    if kind == "lstm" and module.proj_size:
        kwargs["proj_size"] = module.proj_size
    if kind == "rnn":
        kwargs["nonlinearity"] = module.nonlinearity
    rnn = RNN(module.input_size, module.hidden_size, module.num_layers, cell=kind, dropout=module.dropout,
              bidirectional=module.bidirectional, batch_first=module.batch_first, **kwargs)
    first = next(module.parameters())
    return load_torch_weights_(rnn.to(device=first.device, dtype=first.dtype), module)


@torch.no_grad()
def load_torch_weights_(rnn: RNN, module: nn.RNNBase) -> RNN:
    """Copy ``module``'s weights into ``rnn`` (same sizes, layers and directions)."""
    for k, cell in enumerate(rnn.cells):
        layer, direction = divmod(k, rnn.num_directions)
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        cell.weight_ih.copy_(getattr(module, "weight_ih" + sfx))
        cell.weight_hh.copy_(getattr(module, "weight_hh" + sfx))
        if module.bias:
            b_ih, b_hh = getattr(module, "bias_ih" + sfx), getattr(module, "bias_hh" + sfx)
            if getattr(cell, "bias_hh", None) is not None:  # torch-form GRU keeps both
                cell.bias_ih.copy_(b_ih)
                cell.bias_hh.copy_(b_hh)
            else:
                cell.bias_ih.copy_(b_ih + b_hh)
        if getattr(module, "proj_size", 0):
            cell.weight_hr.copy_(getattr(module, "weight_hr" + sfx))
    return rnn
