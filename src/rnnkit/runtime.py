"""Process-wide settings that make CPU training fast, applied by the ``rnnkit`` command (not on import).

glibc's malloc hands large freed blocks back to the operating system and page-faults them in again on the next
update: every training step re-pays for its activations. Raising the mmap and trim thresholds keeps that memory
in the process; measured up to 1.8x on ``nn.LSTM`` training on a 2-core machine, and
``benchmarks/bench_tinyshakespeare.py`` / ``bench_ptb.py`` run the same way (environment variables
``MALLOC_MMAP_THRESHOLD_`` & co., set before the process starts). ``RNNKIT_NO_MALLOC_TUNING=1`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_SETTINGS = {_M_MMAP_THRESHOLD: 256 << 20, _M_TRIM_THRESHOLD: 2**31 - 1, _M_TOP_PAD: 512 << 20}


def tune_malloc() -> bool:
    """Keep freed tensor memory in the process (glibc only). Returns whether the settings were applied."""
    if not sys.platform.startswith("linux") or os.environ.get("RNNKIT_NO_MALLOC_TUNING"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in _SETTINGS.items())
