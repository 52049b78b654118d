"""The convolutional LSTM (rnnkit.cells.conv, rnnkit.layers.ConvLSTM): with 1 × 1 kernels every pixel is an LSTM of
its own, equal to torch.nn.LSTM with the same weights; with k × k kernels a unit sees only its neighbourhood, which
widens by k // 2 pixels per step; padding is inert; finite differences agree."""

import pytest
import torch
from torch import nn

from rnnkit.cells import ConvLSTMCell, LSTMState
from rnnkit.layers import ConvLSTM

from ..conftest import assert_rows_alone


def test_one_by_one_kernels_make_every_pixel_a_torch_lstm():
    torch.manual_seed(0)
    net = ConvLSTM(3, (5, 4), kernel_size=1).double()
    x = torch.randn(2, 6, 3, 4, 3, dtype=torch.float64)
    out, finals = net(x)
    sizes = [5, 4]
    ref = nn.ModuleList([nn.LSTM(3, 5, batch_first=True), nn.LSTM(5, 4, batch_first=True)]).double()
    with torch.no_grad():
        for lstm, cell in zip(ref, net.cells):
            lstm.weight_ih_l0.copy_(cell.weight_ih[:, :, 0, 0])
            lstm.weight_hh_l0.copy_(cell.weight_hh[:, :, 0, 0])
            lstm.bias_ih_l0.copy_(cell.bias_ih)
            lstm.bias_hh_l0.zero_()
    pixels = x.permute(0, 3, 4, 1, 2).reshape(2 * 4 * 3, 6, 3)  # (B·H·W, T, C): each pixel a sequence
    h = pixels
    for k, lstm in enumerate(ref):
        h, (h_n, c_n) = lstm(h)
        as_image = h_n[0].view(2, 4, 3, sizes[k]).permute(0, 3, 1, 2)
        torch.testing.assert_close(finals[k].h, as_image, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out, h.view(2, 4, 3, 6, 4).permute(0, 3, 4, 1, 2), rtol=1e-10, atol=1e-12)


def test_a_unit_sees_a_neighbourhood_that_widens_by_the_kernel_radius_per_step():
    """One layer, 3 × 3 kernels: H_t at a pixel depends on the inputs within t + 1 pixels (Chebyshev distance) of
    it, X_1 ... X_{t+1} counted from step 0; none beyond."""
    torch.manual_seed(0)
    net = ConvLSTM(1, 2, kernel_size=3).double()
    x = torch.randn(1, 3, 1, 11, 11, dtype=torch.float64, requires_grad=True)
    out, _ = net(x)
    rows, cols = torch.meshgrid(torch.arange(11), torch.arange(11), indexing="ij")
    distance = torch.maximum((rows - 5).abs(), (cols - 5).abs())
    for t in range(3):
        (grad,) = torch.autograd.grad(out[0, t, :, 5, 5].sum(), x, retain_graph=True)
        seen = grad[0, :, 0].abs().sum(0) > 0
        assert torch.equal(seen, distance <= t + 1), t


def test_padded_rows_give_what_they_give_alone():
    torch.manual_seed(0)
    net = ConvLSTM(2, 3, kernel_size=3, num_layers=2, zoneout=(0.1, 0.3)).double().eval()
    x = torch.randn(3, 5, 2, 6, 6, dtype=torch.float64)
    assert_rows_alone(net, x, torch.tensor([5, 2, 4]), lambda finals, row: [t[row] for f in finals for t in f])


def test_time_major_input_and_a_given_state():
    torch.manual_seed(0)
    net = ConvLSTM(1, 2, kernel_size=3)
    x = torch.randn(2, 4, 1, 5, 5)
    out, finals = net(x)
    first, carried = net(x[:, :2])  # the state carried over two calls equals one call
    rest, finals2 = net(x[:, 2:], state=carried)
    torch.testing.assert_close(torch.cat([first, rest], 1), out)
    torch.testing.assert_close(finals2[0].h, finals[0].h)
    net.batch_first = False
    torch.testing.assert_close(net(x.transpose(0, 1))[0].transpose(0, 1), out)


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 2, kernel_size=3).double()
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    state = LSTMState(*(torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True) for _ in range(2)))
    assert torch.autograd.gradcheck(lambda x, h, c: cell(x, LSTMState(h, c))[1], (x, *state))


def test_bad_inputs_are_named():
    net = ConvLSTM(3, 4)
    with pytest.raises(ValueError, match=r"5-D input \(batch, time, channels, height, width\) with channels=3"):
        net(torch.randn(2, 5, 3, 8))
    with pytest.raises(ValueError, match="one \\(h, c\\) per layer"):
        net(torch.randn(2, 5, 3, 8, 8), state=[(torch.zeros(2, 4, 7, 8), torch.zeros(2, 4, 7, 8))])
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvLSTM(3, 4, kernel_size=2)
    with pytest.raises(ValueError, match="one kernel_size per layer"):
        ConvLSTM(3, (4, 4), kernel_size=(3,))
