"""Forecasting benchmarks: yearly sunspots (hold out the last 30 years) and Mackey-Glass τ = 17 (one-step and
84-step free-running), for naive, AR, MLP-AR, LSTM, GRU and a custom cell (MUT1).

Model choices use the validation part of the history only (AR's order, the networks' early stopping); the test
part is scored once. Usage: ``python benchmarks/bench_forecast.py [--steps 1500] [--seed 0]``
"""

from __future__ import annotations

import argparse

import torch

from rnnkit.baselines import MLPAR, ARModel, LastValue
from rnnkit.data.datasets import load_series
from rnnkit.forecasting import _validation_size, train_recurrent_forecaster
from rnnkit.metrics import mase, rmse

CELLS = ["lstm", "gru", "mut1"]


def sunspots(steps: int, seed: int) -> None:
    y = load_series("sunspots")
    h = 30
    history, actual = y[:-h], y[-h:]
    rows = []
    val = _validation_size(history, h)
    p = ARModel.select_order(history, max_p=30, validation=val)
    forecasts = {"naive": LastValue().fit(history).forecast(h), f"AR({p})": ARModel(p).fit(history).forecast(h),
                 "MLP-AR(12)": MLPAR(p=12, seed=seed).fit(history).forecast(h)}
    for cell in CELLS:
        model, sc = train_recurrent_forecaster(history, cell, h, steps=steps, seed=seed)
        z = torch.from_numpy((history - sc["mean"]) / sc["std"]).float().view(1, -1, 1)
        forecasts[cell] = model.rollout(z, h)[0, :, 0].numpy() * sc["std"] + sc["mean"]
    for name, f in forecasts.items():
        rows.append((name, rmse(actual, f), mase(actual, f, history)))
    print("\n### Yearly sunspots, 1979-2008 held out (30-step free-running forecast)\n")
    print("| model | RMSE | MASE |")
    print("|---|---:|---:|")
    for name, r, m in sorted(rows, key=lambda r: r[1]):
        print(f"| {name} | {r:.2f} | {m:.3f} |")


def mackey_glass(steps: int, seed: int) -> None:
    y = load_series("mackey-glass")
    train_end, test_end, h = 2000, 2500, 84
    history = y[:train_end]
    one_step, free = {}, {}
    one_step["naive"] = y[train_end - 1:test_end - 1]
    free["naive"] = LastValue().fit(history).forecast(h)
    p = ARModel.select_order(history, max_p=30, validation=200)
    ar = ARModel(p).fit(history)
    one_step[f"AR({p})"] = ar.predict_one_step(y[train_end - p:test_end])
    free[f"AR({p})"] = ar.forecast(h)
    mlp = MLPAR(p=17, seed=seed).fit(history)
    one_step["MLP-AR(17)"] = mlp.predict_one_step(y[train_end - 17:test_end])
    free["MLP-AR(17)"] = mlp.forecast(h)
    for cell in CELLS:
        model, sc = train_recurrent_forecaster(history, cell, h, steps=steps, seed=seed)
        z = torch.from_numpy((y[:test_end] - sc["mean"]) / sc["std"]).float().view(1, -1, 1)
        with torch.no_grad():
            pred = model(z[:, :-1]).prediction[0, train_end - 1:, 0].numpy()  # teacher-forced: one step ahead
        one_step[cell] = pred * sc["std"] + sc["mean"]
        free[cell] = model.rollout(z[:, :train_end], h)[0, :, 0].numpy() * sc["std"] + sc["mean"]
    actual_one, actual_free = y[train_end:test_end], y[train_end:train_end + h]
    print("\n### Mackey-Glass τ=17: trained on t < 2000; one-step on t = 2000..2499, 84-step free-running from "
          "t = 2000\n")
    print("| model | one-step RMSE | one-step MASE | 84-step RMSE | 84-step MASE |")
    print("|---|---:|---:|---:|---:|")
    for name in sorted(one_step, key=lambda n: rmse(actual_free, free[n])):
        print(f"| {name} | {rmse(actual_one, one_step[name]):.5f} | {mase(actual_one, one_step[name], history):.4f} "
              f"| {rmse(actual_free, free[name]):.4f} | {mase(actual_free, free[name], history):.3f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1500, help="training updates per recurrent model")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    sunspots(args.steps, args.seed)
    mackey_glass(args.steps, args.seed)


if __name__ == "__main__":
    main()
