"""Windowing, time splits, scaling on training data, CSV filling, and direct multi-step models."""

import numpy as np
import pytest
import torch

from rnnkit.data.series import fill_missing, read_csv_column, read_csv_columns
from rnnkit.data.windows import StandardScaler, make_windows, split_by_time
from rnnkit.forecasting import compare
from rnnkit.models import DirectForecaster


def test_windows_and_horizon_targets():
    series = np.column_stack([np.arange(10.0), 100 + np.arange(10.0)])
    X, Y = make_windows(series, input_length=3, horizon=2, target_columns=[0])
    assert X.shape == (6, 3, 2) and Y.shape == (6, 2, 1)
    np.testing.assert_array_equal(X[0, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(Y[0, :, 0], [3, 4])
    np.testing.assert_array_equal(Y[-1, :, 0], [8, 9])
    with pytest.raises(ValueError, match="no window"):
        make_windows(series, 9, 2)


def test_time_split_never_shuffles_and_scaler_sees_train_only():
    train, val, test = split_by_time(100, val_fraction=0.2, test_size=10)
    assert (train, val, test) == (slice(0, 72), slice(72, 90), slice(90, 100))
    data = np.arange(100.0)[:, None]
    scaler = StandardScaler().fit(data[train])
    assert scaler.mean[0] == pytest.approx(35.5)  # the mean of 0..71, not of the whole series
    np.testing.assert_allclose(scaler.inverse(scaler.transform(data)), data)


def test_fill_options_and_errors(tmp_path):
    np.testing.assert_array_equal(fill_missing(np.array([np.nan, 1.0, np.nan, 3.0]), "ffill"), [1, 1, 1, 3])
    np.testing.assert_array_equal(fill_missing(np.array([0.0, np.nan, 4.0]), "interpolate"), [0, 2, 4])
    f = tmp_path / "d.csv"
    f.write_text("a,b\n1,x\n2,3\n")
    with pytest.raises(ValueError, match=r"row 2, column 'b': not a number \('x'\)"):
        read_csv_columns(f, ["a", "b"], fill="ffill")  # filling never hides non-numbers
    f.write_text("a,b\n1,\n2,3\n")
    with pytest.raises(ValueError, match="row 2, column 'b': missing; pass a fill option"):
        read_csv_columns(f, ["a", "b"])
    np.testing.assert_array_equal(read_csv_columns(f, ["a", "b"], fill="ffill"), [[1, 3], [2, 3]])
    for cell in ("inf", "-Infinity", "1e400"):  # never a value: it poisons the scaler and every model
        f.write_text(f"a,b\n1,2\n2,{cell}\n")
        with pytest.raises(ValueError, match=rf"row 3, column 'b': not a finite number \('{cell}'\)"):
            read_csv_columns(f, ["a", "b"], fill="ffill")
        with pytest.raises(ValueError, match=r"row 3, column 'b': not a finite number.*choose another column"):
            read_csv_column(f, "b")
        assert read_csv_column(f)[1] == "a"  # the first all-finite column


@pytest.mark.parametrize("mode", ["heads", "seq2seq"])
def test_direct_forecaster_shapes_and_covariates(mode):
    model = DirectForecaster(num_features=3, horizon=5, num_targets=1, hidden_size=8, mode=mode, num_future=2)
    x, y = torch.randn(4, 12, 3), torch.randn(4, 5, 1)
    out = model(x, y, future=torch.randn(4, 5, 2))
    assert out.prediction.shape == (4, 5, 1) and out.loss.ndim == 0
    if mode == "seq2seq":  # the decoder reads the known future covariates
        other = model(x, y, future=torch.randn(4, 5, 2)).prediction
        assert not torch.allclose(out.prediction, other)


def test_direct_models_learn_and_use_known_covariates():
    """A target driven by a covariate known in advance: the seq2seq model that reads it beats the naive one."""
    rng = np.random.default_rng(0)
    t = np.arange(500)
    cov = np.sign(np.sin(0.21 * t))  # a square wave the target follows
    y = 2 * cov + 0.05 * rng.normal(size=500)
    results = {r.name: r.metrics["rmse"] for r in compare(np.column_stack([y, cov]), 20,
                                                           ["naive", "gru-seq2seq"], steps=300)}
    assert results["gru-seq2seq"] < 0.5 * results["naive"]
