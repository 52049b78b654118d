"""Data loading and preparation."""

from .text import default_text as default_text
from .text import read_text as read_text
