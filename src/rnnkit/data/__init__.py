"""Data loading and preparation."""

from .text import read_text as read_text
