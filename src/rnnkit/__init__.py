"""rnnkit: recurrent sequence models, exact and fast.

Cells (one step each) live in :mod:`rnnkit.cells`, the time loop in :mod:`rnnkit.layers`, name → class
maps in :mod:`rnnkit.registry`.
"""

from .cells import (
    Cell as Cell,
)
from .cells import (
    ChoGRUCell as ChoGRUCell,
)
from .cells import (
    DelayCell as DelayCell,
)
from .cells import (
    ElmanCell as ElmanCell,
)
from .cells import (
    GRUCell as GRUCell,
)
from .cells import (
    JordanCell as JordanCell,
)
from .cells import (
    LayerNormGRUCell as LayerNormGRUCell,
)
from .cells import (
    LayerNormLSTMCell as LayerNormLSTMCell,
)
from .cells import (
    LeakyCell as LeakyCell,
)
from .cells import (
    LSTMCell as LSTMCell,
)
from .cells import (
    LSTMState as LSTMState,
)
from .cells import (
    MUT1Cell as MUT1Cell,
)
from .cells import (
    MUT2Cell as MUT2Cell,
)
from .cells import (
    MUT3Cell as MUT3Cell,
)
from .cells import (
    PeepholeLSTMCell as PeepholeLSTMCell,
)
from .layers import RNN as RNN
from .layers import Recurrent as Recurrent
from .memory import NTMCell as NTMCell
from .registry import CELLS as CELLS
from .registry import build_cell as build_cell

__version__ = "0.1.0"
