import pytest
import torch

from rnnkit.registry import CELLS

#: Small constructor arguments per registered cell, used by the contract tests; a new cell only
#: needs an entry here when it requires arguments beyond (input_size, hidden_size).
CELL_KWARGS = {"jordan": {"output_size": 5}, "delay": {"delays": (1, 3)}, "leaky": {"tau": (1.0, 8.0)},
               "ntm": {"memory_size": 6, "memory_width": 4}}


def cell_kwargs(name: str) -> dict:
    return dict(CELL_KWARGS.get(name, {}))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(params=sorted(CELLS))
def cell_name(request):
    return request.param


def pytest_report_header(config):
    """Which path custom cells run in this session (rnnkit.native builds its kernels here on first use)."""
    from rnnkit import native

    return f"rnnkit native kernels: {native.status()}"


def pytest_terminal_summary(terminalreporter):
    """The same line at the end, where ``-q`` (which drops the header) still shows it."""
    from rnnkit import native

    terminalreporter.write_line(f"rnnkit native kernels: {native.status()}")
