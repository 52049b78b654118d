"""The long-term dependency generators: their structure, and the baselines against their closed forms (0.167 and
1/24 for adding, 10·log 8/(T+20) for copy memory)."""

import math

import numpy as np
import pytest

from rnnkit.data.longterm import (
    adding_baseline,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
    pixel_digits,
)


@pytest.mark.parametrize("form", ["modern", "original"])
def test_adding_structure_and_baseline(form):
    T = 50
    x, y = adding_problem(np.random.default_rng(0), 200_000, T, form)
    marked = x[:, :, 1] == 1
    assert x.shape == (200_000, T, 2) and (marked.sum(1) == 2).all()
    rows, steps = np.nonzero(marked)
    first, second = steps[::2], steps[1::2]
    values = x[:, :, 0][marked].reshape(-1, 2).sum(1)
    if form == "modern":
        assert (first < T // 2).all() and (second >= T // 2).all()
        assert np.allclose(y, values, atol=1e-6)
    else:
        assert (np.minimum(first, second) < 10).all() and (np.maximum(first, second) < T // 2 - 1).all()
        assert np.allclose(y, 0.5 + values / 4, atol=1e-6)
        ends = x[:, [0, -1], 1]
        assert np.isin(ends, (-1, 1)).all()
    best_constant = y.mean()
    mse = float(((y - best_constant) ** 2).mean())
    assert mse == pytest.approx(adding_baseline(form), rel=0.01)
    assert adding_baseline("modern") == pytest.approx(0.1667, abs=1e-4)


def test_copy_memory_structure_and_baseline():
    T = 100
    x, y = copy_memory(np.random.default_rng(1), 50_000, T)
    assert x.shape == y.shape == (50_000, T + 20)
    assert ((x[:, :10] >= 1) & (x[:, :10] <= 8)).all() and (x[:, T + 9] == 9).all()
    assert (np.delete(x, list(range(10)) + [T + 9], axis=1) == 0).all()
    assert (y[:, :T + 10] == 0).all() and (y[:, -10:] == x[:, :10]).all()
    # the blind strategy: blanks with certainty, then 1/8 for each symbol; its mean cross-entropy per step
    p = np.zeros((T + 20, 10))
    p[:T + 10, 0] = 1.0
    p[T + 10:, 1:9] = 1 / 8
    ce = -np.log(p[np.arange(T + 20)[None], y]).mean()
    assert ce == pytest.approx(copy_memory_baseline(T), rel=1e-12)
    assert copy_memory_baseline(T) == pytest.approx(10 * math.log(8) / 120)


def test_pixel_digits_rows_and_permutation():
    pytest.importorskip("sklearn")
    x, y = pixel_digits("digits")
    xp, yp = pixel_digits("digits", permuted=True)
    xt, _ = pixel_digits("digits-test", permuted=True)
    assert x.shape == (1438, 64, 1) and xt.shape == (359, 64, 1) and (y == yp).all()
    order = np.random.default_rng(0).permutation(64)
    assert np.array_equal(xp[:, :, 0], x[:, order, 0]) and 0 <= x.min() and x.max() <= 1
    with pytest.raises(ValueError, match="needs T >= 12"):
        adding_problem(np.random.default_rng(0), 1, 8, "original")
    with pytest.raises(ValueError, match="adding form must be one of"):
        adding_problem(np.random.default_rng(0), 1, 8, "new")
