"""Next-value forecasting of a series, trained over the stream with truncated BPTT."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import RunConfig, recurrent_kwargs
from ..data.datasets import load_series
from ..data.series import read_csv_column
from ..data.streams import StreamBatches
from ..io import write_json_atomic
from ..models import Forecaster
from .base import Task, split_point, teacher_forcing_at


class ForecastTask(Task):
    """Next-value prediction of a series (a CSV column, or generated Mackey-Glass τ = 17). The series is scaled
    with the training part's mean and standard deviation. Metrics: loss (MSE, scaled), rmse and mae in the
    series' own units."""

    name = "forecast"

    def __init__(self, config: RunConfig, scaler: dict | None = None, series: np.ndarray | None = None,
                 with_data: bool = True):
        d = config.data
        if not with_data:  # a trained run's scaler, no series read (for scoring other files)
            self.config, self.scaler, self.description = config, scaler, "forecaster"
            return
        if series is not None:
            self.column = d.column or "series"
        elif d.path:
            series, self.column = read_csv_column(d.path, d.column)
        else:
            series, self.column = load_series(d.dataset), d.dataset
        if len(series) < 4:
            raise ValueError(f"{d.path or self.column}: {len(series)} values; a forecast run needs at least 4 (a "
                             "training part and a validation part)")
        cut = split_point(len(series), d.val_fraction)
        self.scaler = scaler or {"mean": float(series[:cut].mean()), "std": float(series[:cut].std() or 1.0)}
        scaled = torch.from_numpy((series - self.scaler["mean"]) / self.scaler["std"]).float().unsqueeze(-1)
        self.config = config
        self.train = StreamBatches(scaled[:cut], d.batch_size, d.seq_length, seed=config.train.seed)
        val = scaled[cut - 1:]
        self.val = StreamBatches.validation(val, d.batch_size, d.seq_length)
        self.description = f"series {self.column!r}: {cut:,} training and {len(series) - cut:,} validation steps"

    def build_model(self) -> nn.Module:
        m = self.config.model
        if m.bidirectional == "true":
            raise ValueError("model.bidirectional: a forecaster must not see the values it predicts; use "
                             "bidirectional networks for classify and tag tasks")
        return Forecaster(1, m.hidden_size, m.num_layers, cell=m.cell, dropout=m.dropout, **recurrent_kwargs(m))

    def forward_kwargs(self, progress: float, step: int = 0) -> dict:
        """Scheduled sampling: the teacher-forcing probability, annealed linearly over training."""
        return {"teacher_forcing": teacher_forcing_at(self.config.train, progress)}

    def batch_terms(self, prediction, targets) -> dict:
        """Per-batch sums that :meth:`metrics` turns into means: absolute errors in the series' units."""
        return {"mae": (prediction - targets).abs().sum().item() * self.scaler["std"]}

    def metrics(self, loss: float, means: dict | None = None) -> dict:
        rmse = math.sqrt(max(loss, 0.0)) * self.scaler["std"]
        return {"loss": loss, "rmse": rmse, **(means or {})}

    def save_artifacts(self, run_dir: Path) -> list[str]:
        write_json_atomic(run_dir / "scaler.json", self.scaler)
        return ["scaler.json"]

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path, with_data: bool = True) -> ForecastTask:
        try:
            scaler = json.loads((run_dir / "scaler.json").read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{run_dir}: cannot read scaler.json ({e})") from None
        return cls(config, scaler, with_data=with_data)

    def file_batches(self, path: str) -> StreamBatches:
        """The validation part of another CSV series, scaled with this run's scaler."""
        config = dataclasses.replace(self.config, data=dataclasses.replace(self.config.data, path=path))
        return ForecastTask(config, self.scaler).val

    def sample(self, model, **kwargs) -> str:
        """The free-running forecast of the first validation steps, as a one-line report."""
        horizon = min(10, len(self.val.data) // 2)
        history, actual = self.val.data[:-horizon], self.val.data[-horizon:]
        forecast = model.rollout(history[None].to(next(model.parameters()).device), horizon).cpu()[0]
        err = (forecast - actual).squeeze(-1).numpy() * self.scaler["std"]
        return f"{horizon}-step free-running forecast at the end of validation: RMSE {np.sqrt((err ** 2).mean()):.4f}"
