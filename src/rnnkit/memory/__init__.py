"""Explicit memory (seed 003): the neural Turing machine as a recurrent cell, and its addressing functions."""

from .addressing import address as address
from .addressing import content_weighting as content_weighting
from .addressing import cosine_similarity as cosine_similarity
from .addressing import interpolate as interpolate
from .addressing import read as read
from .addressing import sharpen as sharpen
from .addressing import shift as shift
from .addressing import write as write
from .ntm import FeedForwardController as FeedForwardController
from .ntm import NTMCell as NTMCell
from .ntm import NTMState as NTMState
