"""``rnnkit esn``: echo state networks on a series (one-step and free-run NRMSE, a forecast PNG, the saved ESN)
or on a file of labelled sequences (``--classify``)."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("esn", help="echo state network: forecast a series or classify sequences (reservoir computing)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Fit an ESN's readout in closed form. On a series: trained one step ahead on the "
                                   "first --train-fraction, scored on the rest one step ahead and free-running "
                                   "--horizon steps (outputs fed back). With --classify FILE: pooled states and a "
                                   "ridge classifier, scored on --val FILE (or a held-out part).")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--dataset", default="mackey-glass", help="a named series (rnnkit forecast --list)")
    source.add_argument("--csv", help="a CSV file with a header row")
    source.add_argument("--classify", metavar="FILE", help="labelled sequences (.ts, CSV id,label,features or JSONL)")
    p.add_argument("--column", default="", help="CSV column (default: the first numeric one)")
    p.add_argument("--val", metavar="FILE", help="--classify: a separate validation file")
    p.add_argument("--pooling", default="mean", choices=["last", "mean", "both"], help="--classify: states pooled")
    p.add_argument("--units", type=int, default=500)
    p.add_argument("--spectral-radius", type=float, default=1.25)
    p.add_argument("--leak", type=float, default=0.3, help="leak rate a = 1/tau in (0, 1]")
    p.add_argument("--input-scaling", type=float, default=1.0)
    p.add_argument("--connectivity", type=float, default=0.1, help="density of the recurrent matrix")
    p.add_argument("--bias-scaling", type=float, default=0.0)
    p.add_argument("--ridge", default="1e-6", help="readout regularisation, or 'gcv' (generalised cross-validation)")
    p.add_argument("--include-input", action="store_true", help="the readout also sees the input")
    p.add_argument("--washout", type=int, default=100, help="states dropped at the start of training")
    p.add_argument("--train-fraction", type=float, default=0.8, help="the first part of the series for training")
    p.add_argument("--horizon", type=int, default=84, help="free-running steps scored")
    p.add_argument("--search", type=int, default=0, metavar="TRIALS",
                   help="random search over spectral radius, leak, input scaling and ridge, scored on the last "
                        "fifth of the training part (free runs for series) or a random fifth of the training "
                        "examples (accuracy, --classify)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="rnnkit-esn", help="directory for the ESN, results.json and PNGs")
    p.set_defaults(run=run)


def _ridge(text: str):
    if text == "gcv":
        return "gcv"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"--ridge must be a number >= 0 or 'gcv'; got {text!r}")
    return value


def _check(args) -> None:
    if args.units < 1 or args.washout < 0 or args.horizon < 1 or args.search < 0:
        raise ValueError("--units and --horizon must be >= 1, --washout and --search >= 0")
    if not 0 < args.train_fraction < 1:
        raise ValueError(f"--train-fraction must be in (0, 1); got {args.train_fraction}")


def run(args: argparse.Namespace) -> int:
    _check(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return _classify(args, out) if args.classify else _forecast(args, out)


def _settings(args) -> dict:
    return {"spectral_radius": args.spectral_radius, "leak": args.leak, "input_scaling": args.input_scaling,
            "connectivity": args.connectivity, "bias_scaling": args.bias_scaling, "ridge": _ridge(args.ridge)}


def _search(args, score, out: Path, what: str) -> dict:
    """The best settings of a random search (scored by ``score(settings)``, lower is better), with its plot."""
    from ..reservoir.search import DEFAULT_SPACE, plot_search, random_search

    base = _settings(args)
    results = random_search(lambda p: score({**base, **p}), DEFAULT_SPACE, args.search, args.seed,
                            progress=not getattr(args, "quiet", False))
    plot_search(results, out / "search.png", title=f"{args.search} trials: {what}")
    best = {**base, **results[0][0]}
    shown = ", ".join(f"{k} {v:.3g}" for k, v in results[0][0].items())
    print(f"search: best {what} {results[0][1]:.4g} with {shown}; wrote {out / 'search.png'}")
    return best


def _forecast(args, out: Path) -> int:
    from ..data.datasets import load_series
    from ..data.series import read_csv_column
    from ..io import write_json_atomic
    from ..reservoir.forecast import fit_series, free_run_nrmse, free_runs, one_step, scale_to_unit

    series, name = read_csv_column(args.csv, args.column) if args.csv else (load_series(args.dataset), args.dataset)
    n = len(series)
    end = int(n * args.train_fraction)
    if n - end <= args.horizon + 1 or end <= args.washout + 10:
        raise ValueError(f"{name}: {n} points leave {end} for training and {n - end} for testing; need more than "
                         f"--washout + 10 = {args.washout + 10} and --horizon + 1 = {args.horizon + 1}")
    x, (lo, hi) = scale_to_unit(series, end)

    def build(settings, until):
        ridge = settings.pop("ridge")
        return fit_series(x, until, args.units, args.washout, ridge, args.include_input, args.seed, **settings)

    settings = _settings(args)
    if args.search:
        fit_end = end - max(args.horizon + 1, (end - args.washout) // 5)
        starts = list(range(fit_end, end - args.horizon - 1, max(1, (end - args.horizon - 1 - fit_end) // 20)))

        def score(s):
            try:
                return free_run_nrmse(build(dict(s), fit_end), x, starts, args.horizon)["nrmse_window"]
            except (ValueError, RuntimeError):  # a singular readout or an unstable reservoir: the worst score
                return math.inf
        settings = _search(args, score, out, f"{args.horizon}-step free-run NRMSE (validation)")
    started = time.perf_counter()
    esn = build(dict(settings), end)
    fitted = time.perf_counter() - started
    predicted, nrmse_one = one_step(esn, x, end, n - 1)
    run = free_runs(esn, x, [end], args.horizon)[0]
    first = free_run_nrmse(esn, x, [end], args.horizon)["nrmse_window"]
    test_starts = range(end, n - args.horizon - 1, max(1, (n - args.horizon - 1 - end) // 50))
    scores = free_run_nrmse(esn, x, test_starts, args.horizon)
    print(f"{name}: {end} points for training, {n - end} for testing; {args.units} units, fit in {fitted:.2f} s "
          f"(ridge {esn.ridge:.3g})")
    print(f"one-step NRMSE {nrmse_one:.4g}; {args.horizon}-step free run from the end of training: NRMSE "
          f"{first:.4g}; over {len(test_starts)} test starts: NRMSE at step {args.horizon} "
          f"{scores[f'nrmse_at_{args.horizon}']:.4g}")
    esn.save(out / "esn")
    unscale = (hi - lo) / 2
    _plot_forecast(series, end, (predicted + 1) * unscale + lo, (run + 1) * unscale + lo, args.horizon,
                   out / "forecast.png", name)
    write_json_atomic(out / "results.json", {"series": name, "train_points": end, "scaling": {"min": lo, "max": hi},
                                             "settings": settings | {"ridge": esn.ridge}, "one_step_nrmse": nrmse_one,
                                             "free_run_nrmse": first, **scores, "fit_seconds": fitted})
    print(f"wrote {out / 'esn'}, {out / 'forecast.png'} and {out / 'results.json'}")
    return 0


def _plot_forecast(series, end, one_step, free_run, horizon, path: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..plots import save_figure

    shown = min(len(series) - end - 1, max(3 * horizon, 200))
    t = np.arange(end + 1, end + 1 + shown)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(t, series[end + 1:end + 1 + shown], color="black", lw=1.2, label="actual")
    ax.plot(t, one_step[:shown], lw=1, ls="--", label="one step ahead")
    ax.plot(np.arange(end + 1, end + 1 + horizon), free_run, lw=1.4, label=f"free run ({horizon} steps)")
    ax.set(xlabel="t", ylabel=name, title=f"{name}: echo state network on the test part")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _classify(args, out: Path) -> int:
    import numpy as np

    from ..config import build_config
    from ..io import write_json_atomic
    from ..plots import plot_confusion
    from ..reservoir import ESNClassifier, Reservoir
    from ..tasks import ClassifyTask

    overrides = {"data.task": "classify", "data.path": args.classify, "train.seed": str(args.seed)}
    if args.val:
        overrides["data.val_path"] = args.val
    task = ClassifyTask(build_config(None, overrides))  # read, split and standardised as `rnnkit train` does
    if not task.numeric:
        raise ValueError(f"{args.classify}: ESN classification reads numeric sequences (.ts, CSV, JSONL); got "
                         f"{task.format}")
    train_x, train_y = task.train.inputs, task.train.targets
    val_x, val_y = task.val.inputs, np.asarray(task.val.targets)

    def build(settings, xs, ys):
        ridge = settings.pop("ridge")
        reservoir = Reservoir(task.num_features, args.units, seed=args.seed, **settings)
        return ESNClassifier(reservoir, len(task.labels), args.pooling).fit(xs, ys, ridge=ridge)

    settings = _settings(args)
    if args.search:  # a random fifth of the training examples (files are often sorted by class)
        order = np.random.default_rng(args.seed).permutation(len(train_x))
        held, kept = order[:max(1, len(order) // 5)], order[max(1, len(order) // 5):]
        fit_x, fit_y = [train_x[i] for i in kept], [train_y[i] for i in kept]
        held_x, held_y = [train_x[i] for i in held], np.asarray([train_y[i] for i in held])

        def score(s):
            try:
                model = build(dict(s), fit_x, fit_y)
                return 1 - float((model.predict(held_x).numpy() == held_y).mean())
            except (ValueError, RuntimeError):
                return math.inf
        settings = _search(args, score, out, "validation error")
    started = time.perf_counter()
    model = build(dict(settings), train_x, train_y)
    fitted = time.perf_counter() - started
    predicted = model.predict(val_x).numpy()
    accuracy = float((predicted == val_y).mean())
    from ..metrics import confusion_matrix

    confusion = confusion_matrix(val_y, predicted, len(task.labels))
    plot_confusion(confusion, [str(label) for label in task.labels], out / "confusion.png",
                   title=f"ESN, {args.units} units: accuracy {accuracy:.4f}")
    print(f"{task.description}; {args.units} units, {args.pooling} pooling, fit in {fitted:.2f} s")
    print(f"validation accuracy {accuracy:.4f} ({int((predicted == val_y).sum())} of {len(val_y)})")
    write_json_atomic(out / "results.json", {"file": args.classify, "accuracy": accuracy, "fit_seconds": fitted,
                                             "settings": settings, "labels": task.labels,
                                             "confusion": confusion.tolist()})
    print(f"wrote {out / 'confusion.png'} and {out / 'results.json'}")
    return 0
