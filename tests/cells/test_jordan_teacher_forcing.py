"""Teacher forcing feeds the previous target in place of the previous output (seed 003)."""

import torch

from rnnkit import JordanCell, Recurrent


def test_teacher_forcing_feeds_previous_target():
    cell = JordanCell(3, 8, 2).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    targets = torch.randn(4, 6, 2, dtype=torch.float64)
    out, _ = Recurrent(cell)(x, feedback=targets)
    # oracle: step t sees y_{t-1} := target_{t-1}; step 0 sees the zero initial state
    y_prev = torch.zeros(4, 2, dtype=torch.float64)
    for t in range(6):
        y, _ = cell(x[:, t], y_prev)
        torch.testing.assert_close(out[:, t], y)
        y_prev = targets[:, t]


def test_free_running_feeds_own_output():
    cell = JordanCell(3, 8, 2).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    free, _ = Recurrent(cell)(x)
    forced_with_own, _ = Recurrent(cell)(x, feedback=free)  # forcing with its own outputs changes nothing
    torch.testing.assert_close(free, forced_with_own)


def test_teacher_forcing_with_lengths_keeps_each_rows_final_state():
    """A short row's final state is the one after its last real step, never a value fed back at its padding:
    the same as running that row alone, cut to its length."""
    cell = JordanCell(3, 8, 2).double()
    x = torch.randn(3, 7, 3, dtype=torch.float64)
    targets = torch.randn(3, 7, 2, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5])
    out, final = Recurrent(cell)(x, lengths=lengths, feedback=targets)
    for row, n in enumerate(lengths.tolist()):
        alone_out, alone_final = Recurrent(cell)(x[row:row + 1, :n], feedback=targets[row:row + 1, :n])
        torch.testing.assert_close(final[row:row + 1], alone_final)
        torch.testing.assert_close(out[row:row + 1, :n], alone_out)
        assert (out[row, n:] == 0).all()
