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
