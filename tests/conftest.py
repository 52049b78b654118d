import pytest
import torch

from rnnkit.registry import CELLS

#: Small constructor arguments per registered cell, used by the contract tests; a new cell only
#: needs an entry here when it requires arguments beyond (input_size, hidden_size).
CELL_KWARGS = {"jordan": {"output_size": 5}, "delay": {"delays": (1, 3)}, "leaky": {"tau": (1.0, 8.0)},
               "ntm": {"memory_size": 6, "memory_width": 4}}


def cell_kwargs(name: str) -> dict:
    return dict(CELL_KWARGS.get(name, {}))


def assert_rows_alone(module, x, lengths, final_rows):
    """A padded batch through a batch-first sequence ``module`` (``module(x, lengths=...) -> (out, final)``) gives
    each row what that row gives alone, zero outputs at its padding and the same final state; ``final_rows(final,
    row)`` picks one row's tensors of a final state."""
    out, final = module(x, lengths=lengths)
    for row, n in enumerate(lengths.tolist()):
        alone, final_alone = module(x[row:row + 1, :n])
        torch.testing.assert_close(out[row, :n], alone[0], rtol=1e-12, atol=1e-12)
        assert (out[row, n:] == 0).all()
        for a, b in zip(final_rows(final, row), final_rows(final_alone, 0)):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


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
