"""AR(p) equals statsmodels AutoReg; naive forecasts, metrics, MLP-AR and the forecast comparison."""

import numpy as np
import pytest
from statsmodels.tsa.ar_model import AutoReg

from rnnkit.baselines import MLPAR, ARModel, LastValue, SeasonalNaive
from rnnkit.data.datasets import DATASETS, load_series
from rnnkit.metrics import forecast_metrics, mase, smape


@pytest.mark.parametrize("p", [1, 3, 9])
def test_ar_equals_statsmodels_autoreg(p):
    y = load_series("sunspots")[:-30]
    ours = ARModel(p).fit(y)
    ref = AutoReg(y, lags=p, trend="c").fit()
    np.testing.assert_allclose(ours.params, ref.params, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.forecast(30), ref.forecast(30), rtol=1e-9)
    assert ours.sigma2 == pytest.approx(ref.sigma2, rel=1e-9)
    np.testing.assert_allclose(ours.predict_one_step(y), ref.fittedvalues, rtol=1e-9)


def test_ar_interval_matches_statsmodels():
    y = load_series("sunspots")[:-30]
    ours = ARModel(4).fit(y)
    ref = AutoReg(y, lags=4, trend="c").fit().get_prediction(start=len(y), end=len(y) + 9).conf_int(alpha=0.05)
    lo, hi = ours.forecast_interval(10)
    np.testing.assert_allclose(np.column_stack([lo, hi]), ref, rtol=1e-6)


def test_ar_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    y = np.zeros(5000)
    for t in range(2, 5000):
        y[t] = 0.5 + 0.6 * y[t - 1] - 0.3 * y[t - 2] + rng.normal()
    np.testing.assert_allclose(ARModel(2).fit(y).params, [0.5, 0.6, -0.3], atol=0.05)
    assert ARModel.select_order(y, max_p=8, validation=500) >= 2  # needs the second lag


def test_naive_forecasts():
    y = np.array([1.0, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(LastValue().fit(y).forecast(3), [7, 7, 7])
    np.testing.assert_array_equal(SeasonalNaive(3).fit(y).forecast(5), [5, 6, 7, 5, 6])
    np.testing.assert_array_equal(SeasonalNaive(2).predict_one_step(y), y[:-2])


def test_metrics_by_hand():
    actual, forecast, history = [2.0, 4.0], [3.0, 2.0], [1.0, 2.0, 4.0, 3.0]
    m = forecast_metrics(actual, forecast, history)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 4) / 2))
    assert m["mae"] == pytest.approx(1.5)
    assert m["mase"] == pytest.approx(1.5 / ((1 + 2 + 1) / 3))  # naive in-sample MAE = 4/3
    assert m["smape"] == pytest.approx(100 * (1 / 5 + 2 / 6))
    assert smape([0.0], [0.0]) == 0.0
    with pytest.raises(ValueError, match="constant history"):
        mase([1.0], [1.0], [2.0, 2.0, 2.0])


def test_mlp_ar_one_step_beats_its_own_multi_step():
    """Seed 004: fed its own outputs, the MLP-AR's error builds up with the horizon."""
    y = load_series("mackey-glass")[:1200]
    model = MLPAR(p=8, epochs=300).fit(y[:1000])
    one_step = model.predict_one_step(y[1000 - 8:1100])
    err_one = np.sqrt(np.mean((one_step - y[1000:1100]) ** 2))
    err_multi = np.sqrt(np.mean((model.forecast(100) - y[1000:1100]) ** 2))
    assert err_one < 0.02 < err_multi
    assert err_one * 5 < err_multi


def test_every_named_dataset_loads():
    for name in DATASETS:
        y = load_series(name)
        assert y.ndim == 1 and len(y) >= 100 and np.isfinite(y).all()
    with pytest.raises(ValueError, match="unknown dataset 'sunspot'"):
        load_series("sunspot")


def test_forecast_cli_compares_models(tmp_path, capsys):
    from rnnkit.cli.main import main

    code = main(["-q", "forecast", "--dataset", "nile", "--horizon", "10", "--models", "naive,ar,seasonal,gru",
                 "--steps", "60", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    for name in ("naive", "ar", "seasonal", "gru"):
        assert f"| {name} |" in out
    assert (tmp_path / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["forecast", "--models", "arima"]) == 2
    assert "unknown forecaster 'arima'" in capsys.readouterr().err


@pytest.mark.parametrize("name,loader", [
    ("sunspots", lambda sm: sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"]),
    ("nile", lambda sm: sm.datasets.nile.load_pandas().data["volume"]),
    ("macrodata", lambda sm: sm.datasets.macrodata.load_pandas().data["realgdp"]),
    ("co2", lambda sm: sm.datasets.co2.load_pandas().data["co2"].interpolate()),
    ("elnino", lambda sm: sm.datasets.elnino.load_pandas().data.iloc[:, 1:].stack()),
])
def test_datasets_equal_statsmodels_loaders(name, loader):
    import statsmodels.api as sm

    np.testing.assert_allclose(load_series(name), np.asarray(loader(sm), float))
