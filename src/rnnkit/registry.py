"""Name → class maps, so configs and the CLI pick components by name without if/elif chains."""

from __future__ import annotations

from .cells.base import Cell
from .cells.delay import DelayCell
from .cells.elman import ElmanCell
from .cells.gru import ChoGRUCell, GRUCell
from .cells.hierarchy import ClockworkCell, DeepTransitionCell
from .cells.jordan import JordanCell
from .cells.layernorm import LayerNormGRUCell, LayerNormLSTMCell
from .cells.leaky import LeakyCell
from .cells.lstm import LSTMCell, PeepholeLSTMCell
from .cells.mut import MUT1Cell, MUT2Cell, MUT3Cell
from .cells.unitary import UnitaryCell
from .memory.ntm import NTMCell

CELLS: dict[str, type[Cell]] = {
    "rnn": ElmanCell,
    "jordan": JordanCell,
    "lstm": LSTMCell,
    "peephole-lstm": PeepholeLSTMCell,
    "gru": GRUCell,
    "gru-cho": ChoGRUCell,
    "layernorm-lstm": LayerNormLSTMCell,
    "layernorm-gru": LayerNormGRUCell,
    "mut1": MUT1Cell,
    "mut2": MUT2Cell,
    "mut3": MUT3Cell,
    "leaky": LeakyCell,
    "delay": DelayCell,
    "unitary": UnitaryCell,
    "clockwork": ClockworkCell,
    "deep-transition": DeepTransitionCell,
    "ntm": NTMCell,
}

#: Constructor arguments a name implies (e.g. ``"jordan"`` needs an output size).
REQUIRED_KWARGS: dict[str, tuple[str, ...]] = {"jordan": ("output_size",)}


def cell_class(name: str) -> type[Cell]:
    """The cell class registered under ``name``; unknown names list the valid ones."""
    try:
        return CELLS[name]
    except KeyError:
        raise ValueError(f"unknown cell {name!r}; expected one of {sorted(CELLS)}") from None


def build_cell(name: str, input_size: int, hidden_size: int, **kwargs) -> Cell:
    """Build a registered cell, e.g. ``build_cell("mut2", 32, 32)``."""
    cls = cell_class(name)
    missing = [k for k in REQUIRED_KWARGS.get(name, ()) if k not in kwargs]
    if missing:
        raise ValueError(f"cell {name!r} needs {missing}")
    try:
        return cls(input_size, hidden_size, **kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments for cell {name!r}: {e}") from None
