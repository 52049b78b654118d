"""``rnnkit forecast``: several forecasters on one hold-out split, one table and one plot."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("forecast", help="compare forecasters (AR, MLP-AR, RNN cells, naive) on a series",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Hold out the last --horizon points, fit every model on the rest, forecast "
                                   "them (multi-step, free-running) and print RMSE/MAE/MASE/sMAPE with a PNG.")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--dataset", default="sunspots", help="a named series (see --list)")
    source.add_argument("--csv", help="a CSV file with a header row")
    p.add_argument("--column", default="", help="CSV column to forecast (default: the first numeric one)")
    p.add_argument("--covariates", default="", help="comma-separated CSV columns known in advance (exogenous); "
                   "used by <cell>-direct and <cell>-seq2seq models")
    p.add_argument("--fill", default="", choices=["", "ffill", "interpolate"],
                   help="fill missing CSV cells instead of stopping with an error")
    p.add_argument("--horizon", type=int, default=30, help="points held out and forecast")
    p.add_argument("--models", default="naive,ar,mlp-ar,lstm,gru",
                   help="comma-separated: naive, seasonal, ar, mlp-ar, kalman, any cell name (recursive), "
                        "or <cell>-direct / <cell>-seq2seq (direct multi-step)")
    p.add_argument("--season", type=int, default=1, help="season length for MASE and the seasonal naive model")
    p.add_argument("--steps", type=int, default=600, help="training updates for recurrent models")
    p.add_argument("--hidden", type=int, default=32, help="hidden units for recurrent models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="rnnkit-forecast", help="directory for forecast.png and results.json")
    p.add_argument("--list", action="store_true", help="list the named datasets and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data.datasets import describe_datasets, load_series
    from ..data.series import read_csv_column, read_csv_columns
    from ..forecasting import compare, plot_forecasts
    from ..io import write_json_atomic

    if args.list:
        for name, text in describe_datasets().items():
            print(f"{name:14s} {text}")
        return 0
    covariates = [c.strip() for c in args.covariates.split(",") if c.strip()]
    if covariates and not args.csv:
        raise ValueError("--covariates needs --csv (the covariate columns come from the file)")
    if args.csv and (covariates or args.fill):
        if not args.column:
            raise ValueError("--covariates and --fill need --column (the column to forecast)")
        series, name = read_csv_columns(args.csv, [args.column, *covariates], args.fill), args.column
        series = series if covariates else series[:, 0]
    elif args.csv:
        series, name = read_csv_column(args.csv, args.column)
    else:
        series, name = load_series(args.dataset), args.dataset
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise ValueError(f"--models lists no model; got {args.models!r}, expected comma-separated names such as "
                         "naive,ar,lstm")
    if args.season < 1 or args.horizon < 1:
        raise ValueError(f"--season and --horizon must be >= 1; got {args.season} and {args.horizon}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for model in models:  # every model is fitted afresh: the training runs of a previous comparison are replaced
        previous = out / "runs" / model
        if (previous / "config.json").is_file():
            shutil.rmtree(previous)
    results = compare(series, args.horizon, models, season=args.season, steps=args.steps, hidden=args.hidden,
                      seed=args.seed, run_root=out / "runs")
    extra = f", covariates {covariates}" if covariates else ""
    print(f"{name}: {len(series) - args.horizon} points of history, {args.horizon} held out{extra}\n")
    print("| model | RMSE | MAE | MASE | sMAPE % | notes |")
    print("|---|---:|---:|---:|---:|---|")
    for r in sorted(results, key=lambda r: r.metrics["rmse"]):
        notes = ", ".join(f"{k}={v}" for k, v in r.details.items() if k != "run_dir")
        m = r.metrics
        print(f"| {r.name} | {m['rmse']:.4g} | {m['mae']:.4g} | {m['mase']:.3f} | {m['smape']:.2f} | {notes} |")
    plot_forecasts(series, args.horizon, results, out / "forecast.png",
                   title=f"{name}: last {args.horizon} points forecast")
    write_json_atomic(out / "results.json", {"series": name, "horizon": args.horizon, "results": [
        {"model": r.name, **r.metrics, "forecast": r.forecast.tolist(), **r.details} for r in results]})
    print(f"\nwrote {out / 'forecast.png'} and {out / 'results.json'}")
    return 0
