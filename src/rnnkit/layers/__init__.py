"""Layers: loops over time (and nothing else). They know no cell equations."""

from .compat import from_torch as from_torch
from .compat import load_torch_weights_ as load_torch_weights_
from .conv import ConvLSTM as ConvLSTM
from .recurrent import Recurrent as Recurrent
from .recurrent import reverse_padded as reverse_padded
from .renet import ReNet as ReNet
from .sequence import RNN as RNN
