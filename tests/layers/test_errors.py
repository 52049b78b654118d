"""Bad input raises a ValueError that names the expected and the received shape."""

import pytest
import torch

from rnnkit import RNN, JordanCell, LSTMCell, Recurrent, build_cell

B, T, D, H = 3, 5, 4, 6


@pytest.fixture(params=[True, False], ids=["native", "loop"])
def lstm(request):
    return RNN(D, H, num_layers=2, cell="lstm", use_native=request.param)


@pytest.mark.parametrize("shape,match", [
    ((B, T, D + 1), r"features=4.*got shape \(3, 5, 5\)"),
    ((T, D), r"3-D input .*got 2-D shape \(5, 4\)"),
    ((B, T, D, 1), r"3-D input .*got 4-D shape"),
    ((B, 0, D), r"empty input"),
])
def test_bad_input_shapes(lstm, shape, match):
    with pytest.raises(ValueError, match=match):
        lstm(torch.randn(shape))


@pytest.mark.parametrize("lengths,match", [
    ([5, 0, 2], r"in \[1, 5\].*got min 0"),
    ([5, 6, 2], r"in \[1, 5\].*max 6"),
    ([5, 2], r"lengths of shape \(3,\).*got \(2,\)"),
    ([5.0, 2.0, 1.0], r"integer lengths"),
])
def test_bad_lengths(lstm, lengths, match):
    with pytest.raises(ValueError, match=match):
        lstm(torch.randn(B, T, D), lengths=lengths)


def test_bad_state(lstm):
    good = lstm.initial_state(B)
    with pytest.raises(ValueError, match=r"expected initial state LSTMState\(h=\(2, 3, 6\), c=\(2, 3, 6\)\); "
                                         r"got \(\(2, 4, 6\), \(2, 3, 6\)\)"):
        lstm(torch.randn(B, T, D), (torch.zeros(2, 4, H), good.c))  # mismatched batch
    with pytest.raises(ValueError, match=r"got \(2, 3, 6\)"):
        lstm(torch.randn(B, T, D), good.h)  # a tensor where (h, c) is expected


def test_cell_step_errors():
    cell = LSTMCell(D, H)
    with pytest.raises(ValueError, match=r"expected input \(batch, 4\); got \(3, 5, 4\)"):
        cell(torch.randn(B, T, D))
    with pytest.raises(ValueError, match=r"expected state LSTMState\(h=\(3, 6\), c=\(3, 6\)\); got \(3, 6\)"):
        cell(torch.randn(B, D), torch.zeros(B, H))


def test_unknown_cell_lists_names():
    with pytest.raises(ValueError, match=r"unknown cell 'lstn'; expected one of \[.*'lstm'.*\]"):
        build_cell("lstn", D, H)
    with pytest.raises(ValueError, match=r"needs \['output_size'\]"):
        build_cell("jordan", D, H)
    with pytest.raises(ValueError, match=r"bad arguments for cell 'gru'"):
        build_cell("gru", D, H, delays=(1, 2))


def test_feedback_errors():
    with pytest.raises(ValueError, match="does not feed its output back"):
        Recurrent(LSTMCell(D, H))(torch.randn(B, T, D), feedback=torch.randn(B, T, H))
    with pytest.raises(ValueError, match=r"feedback must have shape \(batch, time, 2\)"):
        Recurrent(JordanCell(D, H, 2))(torch.randn(B, T, D), feedback=torch.randn(B, T, 3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_wrong_dtypes_name_the_expected_one(lstm, dtype):
    """A float32 module refuses other input and state dtypes by name (not a matmul or oneDNN error); the layer,
    a single Recurrent, a cell and a step all check. A module converted to the dtype accepts it."""
    expected = r"expected {} of dtype torch.float32 \(its parameters' dtype\); got " + str(dtype).replace(".", r"\.")
    x = torch.randn(B, T, D)
    with pytest.raises(ValueError, match=expected.format("input")):
        lstm(x.to(dtype))
    with pytest.raises(ValueError, match=expected.format("initial state")):
        lstm(x, tuple(s.to(dtype) for s in lstm.initial_state(B)))
    with pytest.raises(ValueError, match=expected.format("input")):
        Recurrent(LSTMCell(D, H))(x.to(dtype))
    with pytest.raises(ValueError, match=expected.format("input")):
        LSTMCell(D, H)(x[:, 0].to(dtype))
    with pytest.raises(ValueError, match=expected.format("x")):
        lstm.step(x[:, 0].to(dtype))
    with pytest.raises(ValueError, match=r"floating-point dtype torch.float32; got torch.int64 \(token ids need an "):
        lstm(x.long())
    converted = lstm.to(dtype)
    assert converted(x.to(dtype))[0].dtype == dtype


def test_autocast_inputs_are_not_refused():
    rnn = RNN(D, H, cell="gru")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = rnn(torch.randn(B, T, D, dtype=torch.bfloat16))
    assert out.shape == (B, T, H)
