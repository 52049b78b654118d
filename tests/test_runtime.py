"""Process-wide malloc settings applied by the command line."""

import sys

import pytest

from rnnkit.runtime import tune_malloc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tune_malloc_applies_on_glibc_and_can_be_turned_off(monkeypatch):
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert tune_malloc() is True
    monkeypatch.setenv("RNNKIT_NO_MALLOC_TUNING", "1")
    assert tune_malloc() is False
