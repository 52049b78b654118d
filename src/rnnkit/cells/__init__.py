"""Recurrent cells: one time step each. See :mod:`rnnkit.cells.base` for the contract."""

from .base import Cell as Cell
from .base import LSTMState as LSTMState
from .conv import ConvLSTMCell as ConvLSTMCell
from .delay import DelayCell as DelayCell
from .delay import DelayState as DelayState
from .elman import ElmanCell as ElmanCell
from .gru import ChoGRUCell as ChoGRUCell
from .gru import GRUCell as GRUCell
from .jordan import JordanCell as JordanCell
from .layernorm import LayerNormGRUCell as LayerNormGRUCell
from .layernorm import LayerNormLSTMCell as LayerNormLSTMCell
from .leaky import LeakyCell as LeakyCell
from .lstm import LSTMCell as LSTMCell
from .lstm import PeepholeLSTMCell as PeepholeLSTMCell
from .mut import MUT1Cell as MUT1Cell
from .mut import MUT2Cell as MUT2Cell
from .mut import MUT3Cell as MUT3Cell
from .recurrence import init_identity_ as init_identity_
from .recurrence import init_orthogonal_ as init_orthogonal_
from .recurrence import init_spectral_radius_ as init_spectral_radius_
from .recurrence import orthogonal_recurrence as orthogonal_recurrence
from .recurrence import spectral_radius as spectral_radius
