"""The rnnkit torch twin of a NumPy reference model: the same function, so each checks the other."""

from __future__ import annotations

import torch
from torch import nn

from ..cells.elman import ElmanCell
from ..cells.gru import ChoGRUCell
from ..cells.lstm import LSTMCell
from ..layers.recurrent import Recurrent
from .base import ReferenceRNN
from .models import GRU, LSTM, VanillaRNN

# reference class -> (torch cell class, {torch parameter name: reference parameter name})
_TWINS = {
    VanillaRNN: (ElmanCell, {"weight_ih": "U", "weight_hh": "W", "bias_ih": "b"}),
    LSTM: (LSTMCell, {"weight_ih": "Wx", "weight_hh": "Wh", "bias_ih": "b"}),
    GRU: (ChoGRUCell, {"weight_ih": "Wx", "weight_hrz": "Whrz", "weight_hh": "Whh", "bias_ih": "b"}),
}


def torch_twin(model: ReferenceRNN, dtype=torch.float64) -> tuple[Recurrent, nn.Linear]:
    """A ``Recurrent`` layer and output ``Linear`` (V, c) holding copies of ``model``'s weights."""
    cell_class, names = _TWINS[type(model)]
    cell = cell_class(model.input_size, model.hidden_size).to(dtype)
    head = nn.Linear(model.hidden_size, model.output_size).to(dtype)
    with torch.no_grad():
        for torch_name, ref_name in names.items():
            getattr(cell, torch_name).copy_(torch.from_numpy(model.params[ref_name]))
        head.weight.copy_(torch.from_numpy(model.params["V"]))
        head.bias.copy_(torch.from_numpy(model.params["c"]))
    return Recurrent(cell), head


def reference_names(model: ReferenceRNN) -> dict[str, str]:
    """{torch parameter name of the twin's cell: reference parameter name}."""
    return dict(_TWINS[type(model)][1])
