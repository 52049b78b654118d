"""Generation from language models: sampling strategies and beam search, with the state carried token to token."""

from .sampling import beam_search as beam_search
from .sampling import choose_next as choose_next
from .sampling import generate as generate
from .sampling import gumbel_argmax as gumbel_argmax
