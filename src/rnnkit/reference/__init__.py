"""From-scratch NumPy recurrent networks: forward and hand-derived BPTT, as the notes write them.

The teaching text and the test oracle for the torch code: no autograd anywhere in this package.
"""

from .base import ReferenceRNN as ReferenceRNN
from .base import clip_by_norm as clip_by_norm
from .base import clip_elementwise as clip_elementwise
from .base import gradient_check as gradient_check
from .base import random_step_if_above as random_step_if_above
from .base import recurrent_matrix as recurrent_matrix
from .base import state_gradient_norms as state_gradient_norms
from .models import GRU as GRU
from .models import LSTM as LSTM
from .models import VanillaRNN as VanillaRNN
