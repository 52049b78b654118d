"""``rnnkit train`` and ``rnnkit evaluate``: thin wrappers over rnnkit.training; options come from rnnkit.config."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..config import build_config, load_toml, option_table


def _add_config_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("configuration (also settable in a TOML file: [model] cell = \"gru\" ...)")
    for key, tname, default, help_text in option_table():
        group.add_argument(f"--{key}", dest=key, default=None, metavar=tname.upper() if "{" not in tname else tname,
                           help=f"{help_text} (default: {default!r})")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model (default: a character LSTM on Python's documentation text)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a language model or forecaster with truncated BPTT, or a classifier / "
                                   "tagger on a file of examples (--data.task classify|tag). Without options: a "
                                   "2-layer character LSTM on the Python documentation text shipped with Python.")
    p.add_argument("--config", help="TOML file with [model], [data] and [train] tables")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar")
    p.add_argument("--run-dir", help="where to write the run (default: runs/<task>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint "
                   "(train.* options may be changed, e.g. --train.steps to train longer)")
    _add_config_options(p)
    p.set_defaults(run=run_train)

    e = sub.add_parser("evaluate", help="evaluate a trained run on its validation split (or other data)")
    e.add_argument("run_dir", metavar="RUN")
    e.add_argument("--data.path", dest="data.path", default=None,
                   help="evaluate on this file instead, every target exactly once (language models: the whole "
                   "text; classify / tag / image-classify: every example, confusion matrix PNG in RUN; "
                   "tree-classify: root and all-nodes accuracy; forecast runs: its validation part)")
    e.add_argument("--data.column", dest="data.column", default=None, help="CSV column (forecast runs)")
    for key, what in (("min_length", "shortest sequence (recall: fewest items)"), ("max_length", "longest sequence "
                      "(recall: most items)"), ("min_repeats", "fewest repeats"), ("max_repeats", "most repeats"),
                      ("num_examples", "how many sequences")):
        e.add_argument(f"--data.{key}", dest=f"data.{key}", default=None,
                       help=f"ntm-* runs: evaluate on generated sequences with this {what} (e.g. longer than trained)")
    e.add_argument("--data.split", dest="data.split", default=None,
                   help="music runs with --data.path: the part of the file to score (test, valid or train; default "
                   "test)")
    e.add_argument("--train.eval_samples", dest="train.eval_samples", default=None,
                   help="music runs of the deep Markov model: also the importance-sampled NLL with this many "
                   "samples")
    e.add_argument("--train.device", dest="train.device", default=None, help="auto, cpu or cuda")
    e.add_argument("--train.precision", dest="train.precision", default=None,
                   help="fp32, bf16, fp16 or auto (any run evaluates in any precision: its weights are fp32)")
    e.set_defaults(run=run_evaluate)

    p = sub.add_parser("predict", help="predict every example of a file with a trained classify / tag / seq2seq / "
                       "caption / tree-classify / image-classify run (JSONL)")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("file", metavar="FILE", help="examples in the run's format (labels, if present, are echoed)")
    p.add_argument("--out", help="write the JSONL here (atomically) instead of standard output")
    p.add_argument("--train.device", dest="train.device", default=None, help="auto, cpu or cuda")
    p.set_defaults(run=run_predict)

    g = sub.add_parser("generate", help="sample text from a trained language model",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g.add_argument("run_dir", metavar="RUN")
    g.add_argument("--prompt", default="\n", help="text to start from (its state is carried, not re-read)")
    g.add_argument("--length", type=int, default=500, help="tokens (characters or words) to generate")
    g.add_argument("--temperature", type=float, default=0.8, help="softmax temperature (lower: safer)")
    g.add_argument("--top-k", type=int, default=0, help="sample among the k most likely characters (0: all)")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling: the smallest set with this mass")
    g.add_argument("--greedy", action="store_true", help="always take the most likely character")
    g.add_argument("--beam", type=int, default=0, help="beam search with this width instead of sampling")
    g.add_argument("--num-samples", type=int, default=1, help="independent samples (one batch)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16", "auto"],
                   help="autocast for the model's steps (the state is carried in fp32, sampling reads fp32 logits); "
                        "auto: bf16 where it pays (on a CPU with fewer than 8 samples a step, only where the model "
                        "steps through rnnkit's native step kernel and a probe of it shows a speed-up)")
    g.add_argument("--train.device", dest="train.device", default=None, help="auto, cpu or cuda")
    g.set_defaults(run=run_generate)


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    return {k: v for k, v in vars(args).items() if "." in k and v is not None}


def _read_run_config(run_dir: Path) -> dict:
    try:
        saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise ValueError(f"{run_dir}: not a run directory (no config.json)") from None
    except ValueError as e:
        raise ValueError(f"{run_dir}/config.json is not valid JSON ({e})") from None
    if not isinstance(saved, dict):
        raise ValueError(f"{run_dir}/config.json: expected a JSON object with model, data and train tables; got "
                         f"a {type(saved).__name__}")
    return saved


def run_train(args: argparse.Namespace) -> int:
    from ..tasks import TASKS, task_from_run
    from ..training import Trainer

    overrides = _overrides(args)
    if args.resume:
        run_dir = Path(args.resume)
        if args.run_dir and Path(args.run_dir).resolve() != run_dir.resolve():
            raise ValueError(f"--resume continues the run in its own directory {run_dir}; drop --run-dir "
                             f"{args.run_dir} (or copy the run there and resume that)")
        changed = sorted(k for k in overrides if not k.startswith("train."))
        if changed or args.config:
            raise ValueError(f"--resume continues a run as configured; only train.* options may change (got "
                             f"{changed or ['--config']})")
        config = build_config(_read_run_config(run_dir), overrides)
        task = task_from_run(config, run_dir)  # the run's vocabulary, labels, scaler
    else:
        config = build_config(load_toml(args.config) if args.config else None, overrides)
        run_dir = Path(args.run_dir or f"runs/{config.data.task}-{time.strftime('%Y%m%d-%H%M%S')}")
        task = TASKS[config.data.task](config)
    print(f"{config.data.task}: {task.description}; run directory {run_dir}")
    from tqdm.contrib.logging import logging_redirect_tqdm

    trainer = Trainer(config, task, run_dir, resume=bool(args.resume), progress=not args.quiet)
    with logging_redirect_tqdm():  # log lines above the progress bar, not through it
        summary = trainer.fit()
    shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())
    print(f"done: {shown}")
    written = "model.safetensors (best validation weights), config.json, metrics.jsonl, curves.png"
    if hasattr(task.collector(), "confusion"):  # the best weights on the validation split, drawn
        _, model = _load_run(run_dir, {"train.device": config.train.device}, with_data=False)
        _evaluate_and_draw(task, model, task.val, run_dir / "confusion-val.png")
        written += ", confusion-val.png"
    print(f"wrote {run_dir}/{written}")
    return 0


def _evaluate_and_draw(task, model, batches, png: Path) -> dict:
    """The task's metrics on ``batches``; the confusion matrix as a PNG when the task keeps one (and it is small
    enough to read)."""
    from ..plots import plot_confusion
    from ..precision import resolve as resolve_precision
    from ..training.trainer import evaluate

    collector = task.collector()
    ran, why = resolve_precision(task.config.train.precision, next(model.parameters()).device)
    if ran != "fp32" or task.config.train.precision != "fp32":
        print(f"precision {ran} ({why})")
    metrics = evaluate(model, task, batches=batches, collector=collector, precision=ran)
    if hasattr(collector, "confusion") and len(task.labels) <= 30:
        plot_confusion(collector.confusion, [str(label) for label in task.labels], png,
                       title=f"{png.stem}: accuracy {metrics['accuracy']:.4f}")
    return metrics


GENERATED_KEYS = ("min_length", "max_length", "min_repeats", "max_repeats", "num_examples")


def run_evaluate(args: argparse.Namespace) -> int:
    overrides = _overrides(args)
    run_dir = Path(args.run_dir)
    path = overrides.pop("data.path", None)
    generated = sorted(k for k in overrides if k.split(".")[1] in GENERATED_KEYS)
    if generated:
        saved = _read_run_config(run_dir).get("data", {}).get("task", "")
        if not str(saved).startswith("ntm-"):
            raise ValueError(f"--{generated[0]} applies to runs of generated memory tasks (ntm-*); {run_dir} is a "
                             f"{saved} run")
    task, model = _load_run(run_dir, overrides, with_data=path is None)
    batches = task.val if path is None else task.file_batches(path)
    png = run_dir / f"confusion-{'val' if path is None else Path(path).stem}.png"
    metrics = _evaluate_and_draw(task, model, batches, png)
    print(" ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if hasattr(task.collector(), "confusion") and png.exists():
        print(f"wrote {png}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from ..io import write_bytes_atomic

    task, model = _load_run(Path(args.run_dir), _overrides(args), with_data=False)
    if not hasattr(task, "predict"):
        raise ValueError(f"{args.run_dir} is a {task.name} run; predict works on classify, tag, seq2seq, caption, "
                         "tree-classify and image-classify runs (language models: rnnkit generate / evaluate)")
    from ..data.batches import OnDevice

    device = next(model.parameters()).device  # where _load_run put the model (train.device)
    rows = task.predict(model.eval(), OnDevice(task.file_batches(args.file), device))
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if args.out:
        write_bytes_atomic(args.out, text.encode())
        print(f"wrote {len(rows)} predictions to {args.out}")
    else:
        print(text, end="")
    return 0


def _load_run(run_dir: Path, overrides: dict[str, str], with_data: bool = True):
    """The run's task (its artifacts from ``run_dir``; data read only when ``with_data``) and its best weights."""
    from ..tasks import task_from_run
    from ..training.checkpoint import load_weights
    from ..training.trainer import resolve_device

    config = build_config(_read_run_config(run_dir), overrides)
    task = task_from_run(config, run_dir, with_data=with_data)
    model = task.build_model()
    load_weights(model, run_dir / "model.safetensors")
    return task, model.to(resolve_device(config.train.device))


def run_generate(args: argparse.Namespace) -> int:
    import math

    import torch

    from ..generation import beam_search, generate
    from ..precision import autocast
    from ..precision import resolve as resolve_precision

    if args.length < 1 or args.num_samples < 1 or args.beam < 0 or args.top_k < 0:
        raise ValueError("--length and --num-samples must be >= 1, --beam and --top-k >= 0")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise ValueError(f"--temperature must be a finite number > 0; got {args.temperature}")
    if not 0 < args.top_p <= 1:
        raise ValueError(f"--top-p must be in (0, 1]; got {args.top_p}")
    task, model = _load_run(Path(args.run_dir), _overrides(args), with_data=False)
    if not hasattr(task, "sample") or task.name not in ("char-lm", "word-lm"):
        raise ValueError(f"{args.run_dir} is a {task.name} run; generate samples from language-model runs")
    prompt = task.encode(args.prompt)
    if len(prompt) == 0:
        prompt = torch.tensor([task.vocab.index[task.start_token()]])
    sep = " " if task.name == "word-lm" and args.prompt.strip() else ""
    device = next(model.parameters()).device
    rnn = getattr(model, "rnn", None)
    ran, why = resolve_precision(args.precision, device, step_batch=args.beam or args.num_samples,
                                 step_kernel=rnn is not None and rnn.native_stack_steps())
    if ran != "fp32" or args.precision != "fp32":
        print(f"precision {ran} ({why})", file=sys.stderr)
    with autocast(ran, device):
        if args.beam:
            for tokens, score in beam_search(model, prompt, args.length, args.beam, banned=task.banned_ids()):
                print(f"[log p = {score:.2f}] {args.prompt}{sep}{task.decode(tokens)}")
            return 0
        samples = generate(model, prompt, args.length, num_samples=args.num_samples, temperature=args.temperature,
                           top_k=args.top_k, top_p=args.top_p, greedy=args.greedy, banned=task.banned_ids(),
                           generator=torch.Generator().manual_seed(args.seed))
    for i, tokens in enumerate(samples):
        if args.num_samples > 1:
            print(f"---- sample {i + 1} ----")
        print(args.prompt + sep + task.decode(tokens))
    return 0
