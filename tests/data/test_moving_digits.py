"""Moving digits (rnnkit.data.images.moving_digits): each frame holds the sequence's digits whole, moved by their
velocity and reflected at the edges; the same seed gives the same sequences; the parts use disjoint digit images."""

import numpy as np
import pytest

from rnnkit.data.images import _bundled_digits, moving_digits


def test_one_digit_glides_and_bounces_inside_the_frame():
    seqs = moving_digits(20, frames=30, size=16, digits=1, seed=3)
    assert seqs.shape == (20, 30, 1, 16, 16) and seqs.dtype == np.float32
    assert 0 <= seqs.min() and seqs.max() <= 1
    images, _ = _bundled_digits("train")
    for seq in seqs:
        mass = seq.sum(axis=(1, 2, 3))
        np.testing.assert_allclose(mass, mass[0], rtol=1e-5)  # the whole digit in every frame: nothing cut off
        # the digit's top-left corner moves by at most 2 pixels (+1 for rounding) a frame
        corners = []
        for frame in seq[:, 0]:
            rows, cols = np.nonzero(frame)
            corners.append((rows.min(), cols.min()))
        steps = np.abs(np.diff(np.array(corners), axis=0))
        assert steps.max() <= 3
        first = seq[0, 0]
        rows, cols = np.nonzero(first)
        assert any(np.allclose(first[r:r + 8, c:c + 8], image) for image in images
                   for r in range(max(0, rows.max() - 7), min(rows.min(), 8) + 1)
                   for c in range(max(0, cols.max() - 7), min(cols.min(), 8) + 1))


def test_seeds_and_parts():
    a = moving_digits(4, seed=1)
    assert np.array_equal(a, moving_digits(4, seed=1))
    assert not np.array_equal(a, moving_digits(4, seed=2))
    assert not np.array_equal(a, moving_digits(4, seed=1, part="test"))
    train, test = _bundled_digits("train")[0], _bundled_digits("test")[0]
    assert len(train) + len(test) == 1797
    with pytest.raises(ValueError, match="size >= 8"):
        moving_digits(2, size=6)
