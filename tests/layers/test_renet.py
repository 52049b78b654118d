"""The ReNet layer: each sweep equals the 1-D sequence layer run along the rows / columns by hand; flipping the image
flips the matching direction; patches; bad shapes give errors that name the expected form."""

import pytest
import torch

from rnnkit.layers import RNN, ReNet
from rnnkit.layers.renet import sweep
from rnnkit.models.image_classifier import ImageClassifier


@pytest.mark.parametrize("cell", ["gru", "rnn", "mut1"])
def test_each_direction_equals_the_sequence_layer_along_rows_and_columns(cell):
    layer = ReNet(2, 3, cell=cell, patch=1).double()
    images = torch.randn(2, 2, 4, 5, dtype=torch.float64)
    x = images.permute(0, 2, 3, 1)  # (B, H, W, C)
    rows = sweep(x, layer.horizontal, "rows")
    for b in range(2):
        for r in range(4):  # every row of pixels, left to right, as one sequence
            by_hand, _ = layer.horizontal(x[b, r][None])
            torch.testing.assert_close(rows[b, r], by_hand[0])
    out = layer(images)
    assert out.shape == (2, 6, 4, 5)
    for b in range(2):
        for c in range(5):  # every column of the row sweep's map, top to bottom
            by_hand, _ = layer.vertical(rows[b, :, c][None])
            torch.testing.assert_close(out[b, :, :, c].T, by_hand[0])


def test_flipping_the_image_flips_the_matching_direction():
    """With both directions' weights equal, the left→right pass over the mirrored image is the right→left pass over
    the original, mirrored back (and likewise up/down)."""
    rnn = RNN(1, 3, cell="gru", bidirectional=True).double()
    rnn.cells[1].load_state_dict(rnn.cells[0].state_dict())
    x = torch.randn(2, 4, 6, 1, dtype=torch.float64)
    fwd, bwd = sweep(x, rnn, "rows").split(3, -1)
    fwd_m, bwd_m = sweep(x.flip(2), rnn, "rows").split(3, -1)  # mirrored left-right
    torch.testing.assert_close(fwd_m, bwd.flip(2))  # left→right on the mirror = right→left on the original
    torch.testing.assert_close(bwd_m, fwd.flip(2))
    up, down = sweep(x, rnn, "columns").split(3, -1)
    up_m, down_m = sweep(x.flip(1), rnn, "columns").split(3, -1)  # upside down
    torch.testing.assert_close(up_m, down.flip(1))
    torch.testing.assert_close(down_m, up.flip(1))


def test_patches_and_stacking():
    layer = ReNet(1, 4, patch=2)
    images = torch.arange(16.0).view(1, 1, 4, 4)
    p = layer.patches(images)
    assert p.shape == (1, 2, 2, 4) and p[0, 0, 1].tolist() == [2.0, 3.0, 6.0, 7.0]
    model = ImageClassifier(10, (1, 8, 8), "renet", hidden_size=4, num_layers=2, patch=2)
    assert model(torch.rand(3, 1, 8, 8)).prediction.shape == (3, 10)


def test_bad_images_name_the_expected_form():
    with pytest.raises(ValueError, match="multiples of 2; got 5×4"):
        ReNet(1, 4, patch=2)(torch.rand(1, 1, 5, 4))
    with pytest.raises(ValueError, match=r"expected images \(batch, 1 channels"):
        ReNet(1, 4)(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"expected images \(batch, 1, 8, 8\)"):
        ImageClassifier(10, (1, 8, 8), "cnn")(torch.rand(2, 1, 8, 9))
