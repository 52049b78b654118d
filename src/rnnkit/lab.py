"""The long-term dependency lab: one command runs a grid of cells × lags on a long-term dependency task (the adding
problem, copy memory, pixel-by-pixel digits; :mod:`rnnkit.data.longterm`) with a time budget per run, and writes
what the lecture notes claim in a form that can be checked: a table of who solves what at which length, the
learning curves, and ‖∂L/∂h_t‖ against the distance T − t for every trained model.

A grid is resumable: each run lives in ``OUT/<experiment>/<variant>-T<lag>-seed<seed>``; a finished run (its
``lab-result.json``) is skipped, an interrupted one continues from its last checkpoint with the time it has left.

Variants are a cell with options and, where the claim is about training, training options (``VARIANTS``): the
plain tanh RNN, the IRNN, orthogonal and unitary recurrences, LSTM, GRU, MUT1, leaky units, delay paths, the
clockwork and deep-transition RNNs, the tanh RNN with Pascanu et al.'s regulariser, and without clipping.
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .io import write_bytes_atomic, write_json_atomic


@dataclass(frozen=True)
class Variant:
    cell: str
    cell_options: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)  # dotted training overrides this variant needs
    about: str = ""


VARIANTS = {
    "rnn": Variant("rnn", about="tanh Elman RNN (seed 000)"),
    "irnn": Variant("rnn", {"nonlinearity": "relu", "init": "identity"}, about="ReLU RNN with W = I (Le et al. 2015)"),
    "orthogonal": Variant("rnn", {"init": "orthogonal", "orthogonal": True},
                          about="tanh RNN with W_hh kept orthogonal"),
    "unitary": Variant("unitary", about="uRNN with modReLU (Arjovsky et al. 2016); hidden size = complex units"),
    "lstm": Variant("lstm", {"forget_bias": 1.0}, about="LSTM, forget-gate bias 1"),
    "gru": Variant("gru", about="GRU"),
    "mut1": Variant("mut1", about="MUT1 (Jozefowicz et al. 2015)"),
    "leaky": Variant("leaky", {"tau": [1.0, 50.0]}, about="leaky units, τ from 1 to 50 (seed 003)"),
    "delay": Variant("delay", {"delays": [1, 2, 4, 8, 16]}, about="delay paths 1, 2, 4, 8, 16 (seed 003)"),
    "clockwork": Variant("clockwork", {"modules": 5}, about="clockwork RNN, periods 1-16 (Koutník et al. 2014)"),
    "deep-transition": Variant("deep-transition", {"depth": 2}, about="DT(S)-RNN, depth 2 (Pascanu et al. 2014)"),
    "rnn-regularized": Variant("rnn", train={"train.gradient_regularizer": "2.0"},
                               about="tanh RNN + Pascanu et al.'s Ω (λ = 2) + clipping"),
    "rnn-noclip": Variant("rnn", train={"train.clip_norm": "0"}, about="tanh RNN without gradient clipping"),
}

TASKS = {"adding": "adding", "copy": "copy-memory", "pixels": "pixels"}
#: (metric, comparison, threshold, what it means) — when a run counts as solved
SOLVED = {"adding": ("loss", operator.lt, 0.01, "validation MSE < 0.01 (6% of the blind baseline 0.167)"),
          "copy": ("recalled", operator.ge, 0.99, "≥ 99% of the ten symbols recalled"),
          "pixels": ("accuracy", operator.ge, 0.9, "validation accuracy ≥ 90%")}
METRIC = {"adding": "baseline_ratio", "copy": "baseline_ratio", "pixels": "accuracy"}
DEFAULTS = {"model.hidden_size": "128", "model.num_layers": "1", "model.dropout": "0", "data.batch_size": "20",
            "train.lr": "1e-3", "train.clip_norm": "1.0", "train.steps": "100000000", "train.eval_every": "200",
            "train.checkpoint_every": "200", "train.log_every": "100"}


def run_name(variant: str, lag: int, seed: int) -> str:
    return f"{variant}-T{lag}-seed{seed}"


def run_grid(experiment: str, variants: list[str], lags: list[int], seeds: int, out: Path, minutes: float,
             overrides: dict | None = None, progress: bool = True, log=print) -> list[dict]:
    """Run (or continue) every (variant, lag, seed) of ``experiment`` for ``minutes`` each; returns their results and
    writes ``results.md`` / ``results.jsonl`` and the figures into ``out/experiment`` over every finished run there
    (so processes that share a grid, each with some variants, build one table). ``lags`` is ignored for ``pixels``
    (64 steps). ``overrides`` maps dotted options to values for every run; a key ``"variant:option"`` applies to
    that variant only (e.g. ``{"lstm:model.hidden_size": "40"}``, the per-model sizes of Arjovsky et al.)."""
    if experiment not in TASKS:
        raise ValueError(f"experiment must be one of {sorted(TASKS)}; got {experiment!r}")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; the lab knows {sorted(VARIANTS)}")
    for key in overrides or {}:
        if ":" in key and key.split(":", 1)[0] not in variants:
            raise ValueError(f"override {key!r} names variant {key.split(':', 1)[0]!r}, which is not in this grid "
                             f"({', '.join(variants)}); write VARIANT:OPTION")
    if experiment == "pixels":
        lags = [64]
    root = Path(out) / experiment
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for lag in lags:
        for variant in variants:
            for seed in range(seeds):
                results.append(_run_one(experiment, variant, lag, seed, root, minutes, overrides or {}, progress,
                                        log))
                write_report(experiment, collected(root), root)
    return results


def collected(root: Path) -> list[dict]:
    """Every finished run under ``root`` (also those of other processes sharing the grid), by lag, variant (in
    ``VARIANTS`` order) and seed."""
    order = {name: i for i, name in enumerate(VARIANTS)}
    results = [json.loads(p.read_text()) for p in root.glob("*/lab-result.json")]
    return sorted(results, key=lambda r: (r["lag"], order.get(r["variant"], len(order)), r["seed"]))


def _config(experiment: str, variant: str, lag: int, seed: int, minutes: float, overrides: dict):
    from .config import build_config

    v = VARIANTS[variant]
    shared = {k: val for k, val in overrides.items() if ":" not in k}
    own = {k.split(":", 1)[1]: val for k, val in overrides.items() if k.split(":", 1)[0] == variant and ":" in k}
    values = {**DEFAULTS, "data.task": TASKS[experiment], "model.cell": v.cell, "train.seed": str(seed),
              "train.time_limit": str(minutes), **v.train, **shared, **own}
    if experiment != "pixels":
        values["data.lag"] = str(lag)
    config = build_config({"model": {"cell_options": dict(v.cell_options)}}, values)
    return config


def _run_one(experiment, variant, lag, seed, root: Path, minutes, overrides, progress, log) -> dict:
    from .tasks import TASKS as TASK_CLASSES
    from .training import Trainer
    from .training.checkpoint import latest_checkpoint, load_weights
    from .training.trainer import TrainingStopped, read_metrics

    run_dir = root / run_name(variant, lag, seed)
    done = run_dir / "lab-result.json"
    if done.exists():
        return json.loads(done.read_text())
    config = _config(experiment, variant, lag, seed, minutes, overrides)
    task = TASK_CLASSES[config.data.task](config)
    resume = latest_checkpoint(run_dir) is not None or (run_dir / "config.json").exists()
    log(f"{experiment} {run_name(variant, lag, seed)}: {'continuing' if resume else 'training'} ({minutes:g} min)")
    stopped = ""
    try:
        summary = Trainer(config, task, run_dir, resume=resume, progress=progress).fit()
        stopped = summary["stopped"]
    except TrainingStopped as e:  # diverged: a result too (the claim about clipping is exactly this)
        stopped = f"diverged: {str(e).split(';')[0]}"
    history = read_metrics(run_dir / "metrics.jsonl")
    val = [r for r in history if r["split"] == "val"]
    metric, better, threshold, _ = SOLVED[experiment]
    best = None
    if val:
        best = (max if better is operator.ge else min)(val, key=lambda r: r.get(metric, math.nan))
    result = {"experiment": experiment, "variant": variant, "lag": lag, "seed": seed, "stopped": stopped,
              "updates": history[-1]["step"] if history else 0,
              "best": {k: v for k, v in (best or {}).items() if k not in ("split",)},
              "solved": bool(best) and bool(better(best.get(metric, math.nan), threshold)),
              "curve": [(r["step"], r.get(METRIC[experiment])) for r in val]}
    if (run_dir / "model.safetensors").exists():
        model = task.build_model()
        load_weights(model, run_dir / "model.safetensors")
        result["gradient_norms"] = gradient_norms_by_step(model, next(iter(task.val.sequential())))
    write_json_atomic(done, result)
    return result


def gradient_norms_by_step(model: torch.nn.Module, batch) -> list[float]:
    """‖∂L/∂h_t‖ (the first recurrent layer's state, all rows) for every step t of ``batch``, through the model's own
    loss: the recorded steps of the layer loop (:class:`rnnkit.layers.recurrent.StepRecorder`)."""
    from .cells.base import state_tensors
    from .layers.recurrent import StepRecorder

    model.eval()
    with StepRecorder() as rec:
        loss = model(batch.inputs, batch.targets, None, **batch.model_inputs()).loss
    first = rec.steps[0].cell
    states = [state_tensors(s.after)[0] for s in rec.steps if s.cell is first]
    grads = torch.autograd.grad(loss, states, allow_unused=True)
    return [0.0 if g is None else float(g.norm()) for g in grads]


def write_report(experiment: str, results: list[dict], root: Path) -> None:
    """``results.md`` (variant × lag: the metric, ✓ when solved), ``results.jsonl``, ``curves-T<lag>.png`` and
    ``gradients-T<lag>.png``."""
    from .plots import plot_gradient_flow, plot_lab_curves

    metric, _, _, criterion = SOLVED[experiment]
    shown = METRIC[experiment]
    lags = sorted({r["lag"] for r in results})
    variants = list(dict.fromkeys(r["variant"] for r in results))
    lines = [f"# {experiment}: {shown} at the best validation evaluation by {metric} (✓ solved: {criterion})", "",
             "| variant | " + " | ".join(f"T = {t}" for t in lags) + " |", "|---|" + "---:|" * len(lags)]
    for v in variants:
        cells = []
        for t in lags:
            runs = [r for r in results if r["variant"] == v and r["lag"] == t]
            if not runs:
                cells.append("")
                continue
            values = [f"{r['best'].get(shown, math.nan):.4f}" for r in runs]
            if metric not in (shown, "loss"):  # what decides "solved" too (copy: the share of symbols recalled)
                values = [f"{v} ({metric} {r['best'].get(metric, math.nan):.2f})" for v, r in zip(values, runs)]
            mark = f" ✓{sum(r['solved'] for r in runs)}/{len(runs)}" if any(r["solved"] for r in runs) else ""
            diverged = " (diverged)" if any(r["stopped"].startswith("diverged") for r in runs) else ""
            cells.append(" / ".join(values) + mark + diverged)
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines += ["", "Variants: " + "; ".join(f"{v}: {VARIANTS[v].about}" for v in variants) + "."]
    write_bytes_atomic(root / "results.md", ("\n".join(lines) + "\n").encode())
    write_bytes_atomic(root / "results.jsonl", "".join(json.dumps(r) + "\n" for r in results).encode())
    for t in lags:
        at = [r for r in results if r["lag"] == t]
        plot_lab_curves({f"{r['variant']} (seed {r['seed']})": r["curve"] for r in at}, root / f"curves-T{t}.png",
                        shown, f"{experiment}, T = {t}")
        norms = {f"{r['variant']} (seed {r['seed']})": list(reversed(r["gradient_norms"])) for r in at
                 if r.get("gradient_norms") and any(r["gradient_norms"])}
        if norms:
            plot_gradient_flow(norms, root / f"gradients-T{t}.png")
