"""Several forecasters on one split: the same history, the same horizon, the same metrics and one plot.

Models by name (``FORECASTERS``): ``naive`` (last value), ``seasonal`` (last season), ``ar`` (AR(p), p chosen
on validation), ``mlp-ar`` (seed 004's feed-forward autoregression), and any registered recurrent cell
(``lstm``, ``gru``, ``mut1``, ...): a :class:`~rnnkit.models.Forecaster` trained with the training engine, its
multi-step forecast free-running (each prediction fed back).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .baselines import MLPAR, ARModel, LastValue, SeasonalNaive
from .metrics import forecast_metrics
from .tasks import Task

log = logging.getLogger("rnnkit.forecast")


@dataclass
class ForecastResult:
    name: str
    forecast: np.ndarray
    metrics: dict
    interval: tuple[np.ndarray, np.ndarray] | None = None
    details: dict = field(default_factory=dict)


def _validation_size(history: np.ndarray, horizon: int) -> int:
    return max(horizon, len(history) // 10)


def _fit_ar(history, horizon, options):
    val = _validation_size(history, horizon)
    p = ARModel.select_order(history, max_p=min(options.get("max_p", 30), len(history) // 4), validation=val)
    model = ARModel(p).fit(history)
    return model.forecast(horizon), model.forecast_interval(horizon), {"p": p}


def _fit_mlp_ar(history, horizon, options):
    p = min(options.get("window", 12), len(history) // 4)
    model = MLPAR(p=p, seed=options.get("seed", 0)).fit(history)
    return model.forecast(horizon), None, {"p": p}


def _fit_kalman(history, horizon, options):
    """A linear dynamical system with ``kalman_states`` hidden states, fitted by EM on the standardised series;
    the forecast is the predicted observation mean with a 95% Gaussian interval."""
    from .baselines.kalman import em, forecast, initial_params, kalman_filter

    k = options.get("kalman_states", 4)
    mean, std = history.mean(), history.std() or 1.0
    z = ((history - mean) / std)[:, None]
    params, trace = em([z], initial_params([z], k, seed=options.get("seed", 0)), iterations=200)
    means, covs = forecast(kalman_filter(z, params), params, horizon)
    m, sd = means[:, 0] * std + mean, np.sqrt(covs[:, 0, 0]) * std
    return m, (m - 1.96 * sd, m + 1.96 * sd), {"states": k, "em_iterations": len(trace)}


def _fit_naive(history, horizon, options):
    return LastValue().fit(history).forecast(horizon), None, {}


def _fit_seasonal(history, horizon, options):
    m = options.get("season", 1)
    return SeasonalNaive(m).fit(history).forecast(horizon), None, {"season": m}


def _train_quietly(config, task, run_dir: Path, name: str) -> dict:
    """Run the training engine with one summary line per model instead of a line per evaluation."""
    from .training import Trainer

    train_log = logging.getLogger("rnnkit.train")
    level = train_log.level
    train_log.setLevel(logging.WARNING)
    try:
        summary = Trainer(config, task, run_dir, progress=False).fit()
    finally:
        train_log.setLevel(level)
    log.info("%s: best validation loss %.4f after %d updates", name, summary["best_val_loss"], summary["steps"])
    return summary


def train_recurrent_forecaster(history: np.ndarray, cell: str, horizon: int = 1, steps: int = 600, hidden: int = 32,
                               seed: int = 0, run_root=None, lr: float = 0.005, clip_norm: float = 5.0,
                               progress: bool = False):
    """Train a one-layer :class:`~rnnkit.models.Forecaster` over ``cell`` on ``history`` with the training engine
    (truncated BPTT over the series, early-stopping weights from the last part as validation); ``progress``
    shows the engine's progress bar and evaluations instead of one summary line.
    Returns (model in eval mode, scaler dict {"mean", "std"})."""
    from .config import build_config
    from .tasks import ForecastTask
    from .training.checkpoint import load_weights

    n = len(history)
    seq = max(4, min(50, n // 12))
    val_fraction = min(0.5, _validation_size(history, horizon) / n)
    overrides = {"data.task": "forecast", "model.cell": cell, "data.seq_length": str(seq),
                 "data.batch_size": str(max(1, min(16, int(n * (1 - val_fraction)) // (2 * seq)))),
                 "data.val_fraction": f"{val_fraction:.4f}", "model.hidden_size": str(hidden),
                 "model.num_layers": "1", "model.dropout": "0", "train.steps": str(steps),
                 "train.eval_every": "25", "train.checkpoint_every": "100000", "train.log_every": "50",
                 "train.lr": repr(lr), "train.clip_norm": repr(clip_norm), "train.seed": str(seed)}
    config = build_config(None, overrides)
    task = ForecastTask(config, series=history)
    run_dir = Path(run_root or tempfile.mkdtemp(prefix="rnnkit-forecast-")) / cell
    if progress:
        from .training import Trainer

        Trainer(config, task, run_dir, progress=True).fit()
    else:
        _train_quietly(config, task, run_dir, cell)
    model = task.build_model()
    load_weights(model, run_dir / "model.safetensors")
    return model.eval(), task.scaler


def _fit_recurrent(cell: str):
    def fit(history, horizon, options):
        import torch

        model, scaler = train_recurrent_forecaster(history, cell, horizon, options.get("steps", 600),
                                                   options.get("hidden", 32), options.get("seed", 0),
                                                   options.get("run_root"))
        inputs = torch.from_numpy((history - scaler["mean"]) / scaler["std"]).float().view(1, -1, 1)
        forecast = model.rollout(inputs, horizon)[0, :, 0].numpy().astype(float)
        return forecast * scaler["std"] + scaler["mean"], None, {}

    return fit


class _WindowTask(Task):
    """Windows of a (scaled) multivariate history as a dataset of examples: inputs are the windows, targets the
    next ``horizon`` values of column 0, and the known covariates of each horizon travel as the batch field
    ``future`` (M, horizon, C)."""

    description = "windows"

    def __init__(self, z: np.ndarray, horizon: int, window: int, n_train_steps: int, batch_size: int, seed: int,
                 build):
        import torch

        from .data.batches import ExampleBatches
        from .data.windows import make_windows

        inputs, targets = make_windows(z, window, horizon, target_columns=[0])
        def tensor(a):
            return torch.from_numpy(np.ascontiguousarray(a)).float()

        inputs, targets = tensor(inputs), tensor(targets)
        fields = {}
        if z.shape[1] > 1:  # each window's known covariates over its horizon
            fields["future"] = tensor(z[np.arange(len(inputs))[:, None] + window + np.arange(horizon), 1:])
        last_train = n_train_steps - window - horizon + 1  # windows whose targets end inside the training part
        def part(sl):
            return {name: values[sl] for name, values in fields.items()}

        self.train = ExampleBatches(inputs[:last_train], targets[:last_train], min(batch_size, last_train), seed=seed,
                                    fields=part(slice(None, last_train)), bucket=False)
        self.val = ExampleBatches(inputs[last_train:], targets[last_train:], max(1, len(inputs) - last_train),
                                  fields=part(slice(last_train, None)), bucket=False)
        self.build_model = build


def _fit_direct(cell: str, mode: str):
    def fit(history, horizon, options):
        import torch

        from .config import build_config
        from .data.windows import StandardScaler
        from .models import DirectForecaster
        from .training.checkpoint import load_weights

        history2d = history if history.ndim == 2 else history[:, None]
        future_covariates = options.get("future_covariates")
        n, n_features = history2d.shape
        window = options.get("window") or max(2 * horizon, min(60, n // 5))
        n_val = _validation_size(history2d, horizon)
        n_train = n - n_val
        if n_train < window + horizon + 8:
            raise ValueError(f"{cell}-{mode}: {n} points are too few for windows of {window} + {horizon}")
        scaler = StandardScaler().fit(history2d[:n_train])
        z = scaler.transform(history2d)

        def build():
            return DirectForecaster(n_features, horizon, 1, options.get("hidden", 32), 1, cell=cell, mode=mode,
                                    num_future=n_features - 1)

        task = _WindowTask(z, horizon, window, n_train, 32, options.get("seed", 0), build)
        config = build_config(None, {"train.steps": str(options.get("steps", 600)), "train.eval_every": "25",
                                     "train.checkpoint_every": "100000", "train.log_every": "50",
                                     "train.lr": "0.005", "train.seed": str(options.get("seed", 0)),
                                     "data.batch_size": "1"})
        run_dir = Path(options.get("run_root") or tempfile.mkdtemp(prefix="rnnkit-forecast-")) / f"{cell}-{mode}"
        _train_quietly(config, task, run_dir, f"{cell}-{mode}")
        model = build()
        load_weights(model, run_dir / "model.safetensors")
        future = None
        if n_features > 1:
            if future_covariates is None:
                raise ValueError("covariates need their values over the horizon (known in advance)")
            fut = scaler.transform(np.column_stack([np.zeros(horizon), future_covariates]))[:, 1:]
            future = torch.from_numpy(fut).float()[None]
        with torch.no_grad():
            x = torch.from_numpy(z[-window:]).float()[None]
            pred = model.eval()(x, future=future).prediction[0, :, 0].numpy()
        return scaler.inverse(pred[:, None], [0])[:, 0], None, {"window": window}

    return fit


FORECASTERS = {"naive": _fit_naive, "seasonal": _fit_seasonal, "ar": _fit_ar, "mlp-ar": _fit_mlp_ar,
               "kalman": _fit_kalman}


def forecaster(name: str):
    from .registry import CELLS

    if name in FORECASTERS:
        return FORECASTERS[name]
    if name in CELLS:
        return _fit_recurrent(name)
    base, _, mode = name.rpartition("-")
    if base in CELLS and mode in ("direct", "seq2seq"):
        return _fit_direct(base, "heads" if mode == "direct" else "seq2seq")
    raise ValueError(f"unknown forecaster {name!r}; expected one of {sorted(FORECASTERS)}, a cell "
                     f"{sorted(CELLS)} (recursive multi-step), or a cell with -direct / -seq2seq")


def compare(series, horizon: int, models: list[str], season: int = 1, **options) -> list[ForecastResult]:
    """Hold out the last ``horizon`` points, fit every model on the rest, forecast them and score.

    ``series`` is (N,) or (N, 1 + C): column 0 is forecast, the other C columns are covariates known in advance
    (their values over the horizon are given to the models that use them: ``<cell>-direct`` and
    ``<cell>-seq2seq``); the other models see column 0 only.
    """
    series = np.asarray(series, float)
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1; got {horizon}")
    if season < 1:
        raise ValueError(f"season must be >= 1 (1: no seasonality); got {season}")
    if not models:
        raise ValueError("no model to compare; name at least one, e.g. naive,ar,lstm")
    if len(series) < horizon + 30:
        raise ValueError(f"the series has {len(series)} points; at least horizon + 30 = {horizon + 30} needed")
    fits = {name: forecaster(name) for name in models}  # fail on a bad name before any training
    target = series if series.ndim == 1 else series[:, 0]
    history, actual = target[:-horizon], target[-horizon:]
    results = []
    for name, fit in fits.items():
        log.info("fitting %s", name)
        uses_covariates = series.ndim == 2 and name.endswith(("-direct", "-seq2seq"))
        extra = {"future_covariates": series[-horizon:, 1:]} if uses_covariates else {}
        forecast, interval, details = fit(series[:-horizon] if uses_covariates else history, horizon,
                                          {**options, **extra, "season": season})
        results.append(ForecastResult(name, forecast, forecast_metrics(actual, forecast, history, season),
                                      interval, details))
    return results


def plot_forecasts(series, horizon: int, results: list[ForecastResult], path: Path, title: str = "",
                   context: int = 100) -> None:
    """History (its last ``context`` points), actual values and every forecast; intervals where available."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io import write_bytes_atomic

    series = np.asarray(series, float)
    series = series if series.ndim == 1 else series[:, 0]
    n = len(series)
    start = max(0, n - horizon - context)
    t_future = np.arange(n - horizon, n)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(np.arange(start, n - horizon), series[start:n - horizon], color="black", lw=1.2, label="history")
    ax.plot(t_future, series[-horizon:], color="black", ls="--", lw=1.2, label="actual")
    for r in results:
        line, = ax.plot(t_future, r.forecast, lw=1.4, label=f"{r.name} (RMSE {r.metrics['rmse']:.3g})")
        if r.interval is not None:
            ax.fill_between(t_future, *r.interval, color=line.get_color(), alpha=0.15)
    ax.axvline(n - horizon - 0.5, color="grey", lw=0.8)
    ax.set(xlabel="t", ylabel="value", title=title or "Forecasts")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    from io import BytesIO

    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
