"""Layers: loops over time (and nothing else). They know no cell equations."""

from .recurrent import Recurrent as Recurrent
from .recurrent import reverse_padded as reverse_padded
from .sequence import RNN as RNN
