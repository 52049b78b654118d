"""The training engine: truncated BPTT with the state carried across chunks, clipping, schedules, NaN
guards, evaluation, early stopping, checkpoints and resumption, optionally data-parallel (DDP).

Seeds 000, 001, 003 and 004 on training recurrent nets: back-propagation through time over the unrolled
graph; truncated BPTT with the state carried and detached between chunks (k1 steps per update, gradients
through at most k2 = ``train.bptt`` steps); gradient clipping by value or by norm (seed 003: "clip
gradient norm before param update → stay in original gradient direction"); teacher forcing vs feeding
the model's own outputs.

The trainer sees a model only through ``forward(inputs, targets, state, **batch.model_inputs()) ->
Output(prediction, loss, state)`` and ``initial_state(batch)``, and a task only through its batches (streams
cut into chunks, or datasets of independent examples: both yield ``rnnkit.data.batches.Batch``), metrics
and artifacts (``rnnkit.tasks``). A batch's ``lengths`` and side inputs reach the model as keyword arguments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path

import torch
from torch import nn

from .. import precision
from ..cells.base import map_state, state_from_tensors, state_tensors
from ..config import RunConfig, build_config
from ..io import write_bytes_atomic, write_json_atomic
from ..layers.recurrent import StepRecorder
from ..precision import autocast as precision_autocast
from ..tasks.base import write_artifacts
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, save_weights
from .regularizers import gradient_norm_regularizer

log = logging.getLogger("rnnkit.train")


class TrainingStopped(RuntimeError):
    """Training stopped on purpose (non-finite values); the last good checkpoint is intact."""


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but CUDA is not available here; use auto or cpu")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def detach(state):
    """Cut the graph at a chunk boundary (truncated BPTT): values carry on, gradients stop."""
    return None if state is None else map_state(lambda s: s.detach(), state)


HIGHER_IS_BETTER = ("accuracy", "f1", "bleu", "exact")


def monitored_score(metrics: dict, name: str) -> float:
    """The value of ``train.monitor`` as a score where lower is better (negated for accuracy-like metrics, as
    Keras' ``ModelCheckpoint(mode="auto")`` decides)."""
    if name not in metrics:
        raise ValueError(f"train.monitor={name!r} is not a metric of this task; it reports {sorted(metrics)}")
    value = float(metrics[name])
    return -value if any(word in name for word in HIGHER_IS_BETTER) else value


def build_optimizer(params, cfg) -> torch.optim.Optimizer:
    """The optimizer ``cfg.optimizer`` names over ``params``. Adam, AdamW, SGD and Adagrad take torch's fused
    implementation (one kernel over all parameters) where every parameter is a floating tensor on the CPU or a CUDA
    GPU: the same update, faster than the per-parameter loop torch runs on a CPU by default (on the PTB recipe's
    model Adam 2.5 ms a step against 9.9; ``python benchmarks/bench_precision.py --mode optimizer``)."""
    params = list(params)
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    makers = {
        "adam": lambda: torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused),
        "adamw": lambda: torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused),
        "sgd": lambda: torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                       fused=fused),
        "rmsprop": lambda: torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum,
                                               weight_decay=cfg.weight_decay),
        "asgd": lambda: torch.optim.ASGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
        "adagrad": lambda: torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused),
    }
    return makers[cfg.optimizer]()


def weight_average(module: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of ``module``'s parameters, w̄ ← d·w̄ + (1 − d)·w (Polyak and Juditsky 1992's
    averaging, weighted toward recent updates as in Keras' ``use_ema``), or None when ``decay`` is 0. torch's
    ``AveragedModel`` holds the copy and updates it with one fused lerp over all parameters; buffers are copied
    from the live module, not averaged."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)


def lr_factor(cfg, update: int, budget_used: float = 0.0) -> float:
    """The learning-rate multiplier before update ``update`` (0-based) for the none / step / cosine schedules.

    step: ``decay_factor ** n`` with n the number of ``decay_every`` periods begun since ``decay_start``
    (Zaremba et al. 2014: lr 1, halved every epoch after epoch 4). cosine: ``(1 + cos(pi p)) / 2`` where p is
    the larger of ``update / steps`` and ``budget_used`` (the fraction of ``time_limit`` spent), so a run with
    a wall-clock budget anneals to 0 when the budget ends. ``warmup`` scales the first updates by
    ``(update + 1) / warmup``.
    """
    factor = min(1.0, (update + 1) / cfg.warmup) if cfg.warmup else 1.0
    if cfg.schedule == "step":
        start = cfg.decay_start or cfg.decay_every
        factor *= cfg.decay_factor ** ((update - start) // cfg.decay_every + 1 if update >= start else 0)
    elif cfg.schedule == "cosine":
        progress = min(1.0, max(update / cfg.steps, budget_used))
        factor *= 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def build_scheduler(optimizer, cfg, budget_used=lambda: 0.0):
    """A torch scheduler for ``cfg.schedule``; ``budget_used()`` is the fraction of the time limit spent."""
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.decay_factor, patience=0)
    if cfg.schedule == "none" and not cfg.warmup:
        return None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda update: lr_factor(cfg, update, budget_used()))


def _resolve_epochs(cfg, batches_per_epoch: int):
    """``train.epochs`` and ``eval_every = 0`` in updates, from the number of batches an epoch."""
    steps = cfg.epochs * batches_per_epoch if cfg.epochs else cfg.steps
    return dataclasses.replace(cfg, steps=steps, eval_every=cfg.eval_every or batches_per_epoch)


class _Distributed:
    """Process-group membership when launched by torchrun (WORLD_SIZE > 1)."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return t.item() / self.world

    def any(self, flag: bool) -> bool:
        """True on every process when it is True on one (so all stop together)."""
        if self.world == 1:
            return flag
        t = torch.tensor([float(flag)])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


class Trainer:
    """Train ``task``'s model as ``config`` says, writing everything into ``run_dir``.

    ``resume=True`` continues from the newest complete checkpoint in ``run_dir`` and reaches the same weights
    as an uninterrupted run with the same config (data order, dropout and carried state are restored).
    """

    def __init__(self, config: RunConfig, task, run_dir: str | Path, resume: bool = False, progress: bool = True):
        self.config, self.task, self.cfg = config, task, _resolve_epochs(config.train, task.train.chunks_per_epoch)
        self.run_dir = Path(run_dir)
        self.device = resolve_device(self.cfg.device)
        self.precision, why = precision.resolve(self.cfg.precision, self.device)
        self.precision_note = {"asked": self.cfg.precision, "ran": self.precision, "why": why}
        self.scaler = precision.grad_scaler(self.precision, self.device)
        self.dist = _Distributed(self.device)
        self.progress = progress and self.dist.main
        B = config.data.batch_size
        if B % self.dist.world:
            raise ValueError(f"data.batch_size={B} must be divisible by the number of processes ({self.dist.world})")
        share = B // self.dist.world
        self.rows = slice(self.dist.rank * share, (self.dist.rank + 1) * share)

        torch.manual_seed(self.cfg.seed)  # initialisation
        self.module = task.build_model().to(self.device)
        self.model = self.module
        if self.dist.world > 1:
            self.model = nn.parallel.DistributedDataParallel(self.module)
        self.optimizer = build_optimizer(self.module.parameters(), self.cfg)
        self.average = weight_average(self.module, self.cfg.ema)
        self.elapsed = 0.0  # training seconds so far, over resumptions (the time budget's clock)
        self.scheduler = build_scheduler(self.optimizer, self.cfg, self._budget_used)
        self.step, self.best, self.bad_evals, self.skips = 0, math.inf, 0, 0
        self.best_metrics: dict = {"loss": math.inf}
        self.state = None
        self.history: list[dict] = []
        # dropout and sampling decisions from here on: a stream of their own for every process (rank 0's is the
        # single-process one), so the rows of different processes never share a dropout mask
        torch.manual_seed(self.cfg.seed + 1 + 100_003 * self.dist.rank)

        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dist.barrier()
        if resume and latest_checkpoint(self.run_dir) is not None:
            self._resume()
        else:
            if resume:  # killed before its first checkpoint: nothing to lose, so start it again in place
                log.warning("%s has no complete checkpoint yet (the run stopped before update %d); starting it "
                            "again from update 0 with its configuration", self.run_dir, self.cfg.checkpoint_every)
            elif (self.run_dir / "config.json").exists():
                raise ValueError(f"{self.run_dir} already holds a run; use --resume {self.run_dir} to continue it "
                                 "(or to start it again when it has no checkpoint yet) or choose another --run-dir")
            if self.dist.main:
                write_json_atomic(self.run_dir / "config.json", config.to_dict())
                write_artifacts(task, self.run_dir)
                write_bytes_atomic(self.run_dir / "metrics.jsonl", b"")
        if self.dist.main:  # which precision runs and why (the config holds what was asked, e.g. auto)
            write_json_atomic(self.run_dir / "precision.json", self.precision_note)
            if self.precision != "fp32" or self.cfg.precision != "fp32":
                log.info("precision %s (asked %s): %s", self.precision, self.cfg.precision, why)
        self.writer = self._tensorboard()

    # ---- public --------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Run until ``train.steps`` updates, ``train.time_limit``, early stopping or a stop on non-finite values."""
        from tqdm import tqdm

        cfg = self.cfg
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.progress, unit="step", dynamic_ncols=True)
        tokens, window_start, stop_reason = 0, time.perf_counter(), "finished"
        started, elapsed_before = time.perf_counter(), self.elapsed
        try:
            while self.step < cfg.steps:
                batch = self.task.train.chunk(self.step, self.rows)
                if batch.starts_epoch:
                    self.state = None
                loss, grad_norm = self._update(batch)
                self.step += 1
                tokens += batch.num_steps * self.dist.world
                if cfg.time_limit > 0:  # one clock for all processes, so they stop and anneal together
                    self.elapsed = elapsed_before + self.dist.mean(time.perf_counter() - started)
                out_of_time = cfg.time_limit > 0 and self.elapsed >= 60 * cfg.time_limit
                last = self.step == cfg.steps or out_of_time
                if self.step % cfg.log_every == 0 or last:
                    elapsed = time.perf_counter() - window_start
                    record = {"step": self.step, "split": "train", "loss": self.dist.mean(loss),
                              "grad_norm": grad_norm, "lr": self.optimizer.param_groups[0]["lr"],
                              "tokens_per_s": tokens / max(elapsed, 1e-9)}
                    self._log(record)
                    bar.set_postfix(loss=f"{record['loss']:.4f}", tok_s=f"{record['tokens_per_s']:,.0f}")
                    tokens, window_start = 0, time.perf_counter()
                bar.update(1)
                if self.step % cfg.eval_every == 0 or last:
                    if self._evaluate_and_track():
                        stop_reason = f"early stopping: no improvement in {cfg.patience} evaluations"
                        self._checkpoint()
                        break
                if self.step % cfg.checkpoint_every == 0 or last:
                    self._checkpoint()
                if out_of_time:
                    stop_reason = f"time limit of {cfg.time_limit:g} minutes reached"
                    break
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        self._plot()
        if not math.isfinite(self.best):
            raise TrainingStopped(f"no evaluation in {self.step} updates gave a finite validation loss, so no "
                                  "model.safetensors was written; lower train.lr or set train.clip_norm and train "
                                  "again")
        summary = {"steps": self.step, "stopped": stop_reason,
                   **{f"best_val_{k}": v for k, v in self.best_metrics.items()}}
        log.info("%s after %d updates; best validation %s %.4f", stop_reason, self.step, cfg.monitor,
                 self.best_metrics.get(cfg.monitor, self.best))
        return summary

    @property
    def evaluated_module(self) -> nn.Module:
        """The weights that are evaluated, kept as the best and sampled from: the average under ``train.ema``."""
        return self.module if self.average is None else self.average.module

    def evaluate(self, model: nn.Module | None = None) -> dict:
        """Mean loss over the validation batches (a stream's state carried chunk to chunk), as the task's metrics."""
        model = model or self.evaluated_module
        return evaluate(model, self.task, self.cfg.eval_batches, self.device, precision=self.precision)

    def _budget_used(self) -> float:
        return self.elapsed / (60 * self.cfg.time_limit) if self.cfg.time_limit > 0 else 0.0

    # ---- one update ----------------------------------------------------------------------------
    def _update(self, batch) -> tuple[float, float]:
        cfg = self.cfg
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        batch = batch.to(self.device)
        inputs, targets = batch.inputs, batch.targets
        k = inputs.shape[1]
        k2 = min(cfg.bptt or k, k)
        if k2 < k and (targets.dim() < 2 or targets.shape[1] != k or batch.model_inputs()):
            raise ValueError("train.bptt < the sequence length truncates inside a batch, which needs a target per "
                             "step of an unpadded stream; this task has one target per example or padded examples: "
                             "set train.bptt to 0")
        segments = [slice(s, s + k2) for s in range(0, k, k2)]
        extra = {**batch.model_inputs(), **self.task.forward_kwargs(self.step / max(cfg.steps - 1, 1), self.step)}
        total = 0.0
        for j, seg in enumerate(segments):
            last = j == len(segments) - 1
            sync = contextlib.nullcontext() if last or self.dist.world == 1 else self.model.no_sync()
            x, y = (inputs, targets) if len(segments) == 1 else (inputs[:, seg], targets[:, seg])
            with sync:
                recorder = StepRecorder() if cfg.gradient_regularizer > 0 else contextlib.nullcontext()
                with recorder, precision.autocast(self.precision, self.device):
                    out = self.model(x, y, self.state, **extra)
                weight = x.shape[1] / k
                objective = out.loss.float()  # losses are reduced in fp32 whatever the forward ran in
                if cfg.gradient_regularizer > 0:  # Pascanu et al. 2013: Ω on the steps this chunk ran
                    objective = objective + cfg.gradient_regularizer * gradient_norm_regularizer(out.loss,
                                                                                                 recorder.steps)
                self.scaler.scale(objective * weight).backward()
            total += out.loss.item() * weight
            self.state = detach(out.state)  # truncated BPTT: the state carries on, its graph does not
        params = [p for p in self.module.parameters() if p.grad is not None]
        self.scaler.unscale_(self.optimizer)  # fp16: the true gradients, before clipping (a no-op otherwise)
        if cfg.clip_value > 0:
            torch.nn.utils.clip_grad_value_(params, cfg.clip_value)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm if cfg.clip_norm > 0 else math.inf))
        if self.scaler.is_enabled() and math.isfinite(total) and not math.isfinite(grad_norm):
            self.scaler.step(self.optimizer)  # fp16 overflow: the scaler skips this update and lowers its scale
            self.scaler.update()
            return total, grad_norm
        if not (math.isfinite(total) and math.isfinite(grad_norm)):
            return self._skip(total, grad_norm), grad_norm
        self.skips = 0
        self.scaler.step(self.optimizer)  # the gradients are finite here, so the update is taken
        self.scaler.update()
        if self.average is not None:
            self.average.update_parameters(self.module)
        if self.scheduler is not None and cfg.schedule != "plateau":
            self.scheduler.step()
        return total, grad_norm

    def _skip(self, loss: float, grad_norm: float) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        self.state = None  # a state computed from non-finite values would poison the next chunk
        self.skips += 1
        what = f"non-finite {'loss' if not math.isfinite(loss) else 'gradient'} at update {self.step + 1}"
        if self.cfg.nonfinite == "stop" or self.skips >= self.cfg.max_skips:
            last = latest_checkpoint(self.run_dir)
            raise TrainingStopped(f"{what} ({self.skips} in a row); stopped. The last good checkpoint is "
                                  f"{last or 'none (no checkpoint was written yet)'}; lower train.lr or set "
                                  "train.clip_norm, then resume (--resume RUN --train.lr ...)")
        log.warning("%s: update skipped (%d in a row)", what, self.skips)
        if self.scheduler is not None and self.cfg.schedule != "plateau":
            self.scheduler.step()  # the schedule is a function of the update count, which a skip advances too
        return loss

    # ---- evaluation, logging, checkpoints ------------------------------------------------------
    def _evaluate_and_track(self) -> bool:
        """Evaluate, keep the best weights, log; returns True when early stopping says stop. The evaluation and
        its sample draw from a fork of the random-number streams, so training continues on the same stream
        whether or when it evaluates (a run stopped and resumed equals one run)."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            return self._evaluate_and_track_forked()

    def _evaluate_and_track_forked(self) -> bool:
        metrics = self.evaluate()
        self._log({"step": self.step, "split": "val", **metrics})
        score = monitored_score(metrics, self.cfg.monitor)
        improved = score < self.best
        if improved:
            self.best, self.bad_evals, self.best_metrics = score, 0, metrics
            if self.dist.main:
                save_weights(self.evaluated_module, self.run_dir / "model.safetensors")
        else:
            self.bad_evals += 1
        if self.scheduler is not None and self.cfg.schedule == "plateau":
            self.scheduler.step(score)
        if self.dist.main:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            log.info("update %d: validation %s%s", self.step, shown, " (best)" if improved else "")
            sample = self.task.sample(self.evaluated_module, seed=self.step)
            if sample:
                log.info("sample at update %d:\n%s", self.step, sample)
            self._plot()
        return self.cfg.patience > 0 and self.bad_evals >= self.cfg.patience

    def _log(self, record: dict) -> None:
        self.history.append(record)
        if not self.dist.main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k, v in record.items():
                if k not in ("step", "split") and isinstance(v, (int, float)):
                    self.writer.add_scalar(f"{record['split']}/{k}", v, record["step"])

    def _checkpoint(self) -> None:
        """A checkpoint of the current state, unless the last update was skipped: a stretch of non-finite updates
        never rotates the healthy checkpoints out (the skip counter is all the same in every process)."""
        if self.skips:
            log.warning("update %d: no checkpoint while updates are being skipped (%d in a row)", self.step,
                        self.skips)
            return
        carried = None if self.state is None else [self._gather_rows(t) for t in state_tensors(self.state)]
        rng = self._rng_states()
        if self.dist.main:
            save_checkpoint(self.run_dir, self.step, self.module, self.optimizer, self.scheduler, carried,
                            {"best": self.best, "best_metrics": self.best_metrics, "bad_evals": self.bad_evals,
                             "elapsed": self.elapsed,
                             **({"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {})}, rng,
                            average=self.average)
        self.dist.barrier()

    def _rng_states(self) -> dict[str, torch.Tensor]:
        """Every process's random-number state (CPU, and its CUDA device's), ``rng.<device>.<rank>``, so that a run
        resumes with the same dropout masks on every device."""
        mine = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            mine["cuda"] = torch.cuda.get_rng_state(self.device)
        states = {}
        for name, t in mine.items():
            parts = [t]
            if self.dist.world > 1:  # the collective runs on the backend's device (nccl: cuda)
                local = t.to(self.device)
                parts = [torch.empty_like(local) for _ in range(self.dist.world)]
                torch.distributed.all_gather(parts, local)
            states.update({f"rng.{name}.{rank}": p.cpu() for rank, p in enumerate(parts)})
        return states

    def _gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """A state tensor (L·D, B/world, ...) from every process, as the full batch (L·D, B, ...)."""
        if self.dist.world == 1:
            return t
        parts = [torch.empty_like(t) for _ in range(self.dist.world)]
        torch.distributed.all_gather(parts, t.contiguous())
        return torch.cat(parts, 1)

    def _resume(self) -> None:
        path = latest_checkpoint(self.run_dir)
        state, carried, rng = load_checkpoint(path, self.module, self.optimizer, self.scheduler, self.average)
        self.step, self.best, self.best_metrics = state["step"], state["best"], state["best_metrics"]
        self.bad_evals, self.elapsed = state["bad_evals"], state["elapsed"]
        if self.scaler.is_enabled() and "scaler" in state:  # fp16's loss scale, where it was
            self.scaler.load_state_dict(state["scaler"])
        if carried:  # saved for the whole batch; this process takes its rows
            template = self.module.initial_state(self.rows.stop - self.rows.start)
            self.state = state_from_tensors(template, [c[:, self.rows].to(self.device) for c in carried])
        self._apply_changed_options()
        r = self.dist.rank  # the random-number states last: anything above may draw (building a cell does)
        torch.set_rng_state(rng.get(f"rng.cpu.{r}", rng.get("rng.cpu.0")))
        if self.device.type == "cuda" and f"rng.cuda.{r}" in rng:
            torch.cuda.set_rng_state(rng[f"rng.cuda.{r}"], self.device)
        if self.dist.main:  # forget metrics logged after the checkpoint: they are about to be redone
            self.history = [rec for rec in read_metrics(self.run_dir / "metrics.jsonl") if rec["step"] <= self.step]
            write_bytes_atomic(self.run_dir / "metrics.jsonl",
                               "".join(json.dumps(rec) + "\n" for rec in self.history).encode())
        log.info("resumed %s at update %d", self.run_dir, self.step)

    def _apply_changed_options(self) -> None:
        """train.* options changed at resume take effect, and are recorded: config.json holds the run's current
        configuration, config-history.jsonl each change with the update it applies from. The optimizer's own
        hyperparameters are restored with its state, so lr / weight_decay / momentum are set on it here; options
        that would need another optimizer or schedule state are refused by name."""
        saved = dataclasses.asdict(build_config(json.loads((self.run_dir / "config.json").read_text())).train)
        now = dataclasses.asdict(self.config.train)
        changed = {k: [saved[k], v] for k, v in now.items() if saved[k] != v}
        fixed = sorted(set(changed) & {"optimizer", "schedule", "warmup", "ema"})
        if fixed:
            raise ValueError(f"--resume cannot change train.{fixed[0]} (the optimizer, schedule and weight-average "
                             "states were saved for the old one); start a new run, e.g. initialised from this run's "
                             "model.safetensors")
        if not changed:
            return
        for group in self.optimizer.param_groups:
            for key in ("lr", "weight_decay", "momentum"):
                if key in changed and key in group:
                    group[key] = now[key]
        if "lr" in changed and self.scheduler is not None:
            if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
                self.scheduler.base_lrs = [now["lr"]] * len(self.optimizer.param_groups)
                factor = lr_factor(self.cfg, self.scheduler.last_epoch, self._budget_used())
                for group in self.optimizer.param_groups:
                    group["lr"] = now["lr"] * factor
                    group["initial_lr"] = now["lr"]
        if self.dist.main:
            write_json_atomic(self.run_dir / "config.json", self.config.to_dict())
            with open(self.run_dir / "config-history.jsonl", "a") as f:
                f.write(json.dumps({"step": self.step, "changed": {f"train.{k}": v for k, v in changed.items()}})
                        + "\n")
        log.info("resumed with changed options: %s", ", ".join(f"train.{k} {a!r} -> {b!r}"
                                                               for k, (a, b) in changed.items()))

    def _tensorboard(self):
        if not (self.cfg.tensorboard and self.dist.main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning("train.tensorboard is set but the tensorboard package is not installed; "
                        "pip install tensorboard (metrics.jsonl has the same numbers)")
            return None
        return SummaryWriter(str(self.run_dir / "tensorboard"))

    def _plot(self) -> None:
        if self.dist.main and self.history:
            from ..plots import plot_training_curves

            plot_training_curves(self.history, self.run_dir / "curves.png")


def read_metrics(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl``; a torn last line (what a kill mid-write leaves) is dropped, a damaged
    line before it is an error naming the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot be read ({e}); expected JSON lines") from None
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("not a record with an integer step")
        except ValueError as e:
            if n == len(lines):
                log.warning("%s: dropped a torn last line (%d characters)", path, len(line))
                break
            raise ValueError(f"{path}, line {n}: not a metrics record ({e}); expected one JSON object a "
                             "line") from None
        records.append(record)
    return records


@torch.no_grad()
def evaluate(model: nn.Module, task, max_chunks: int = 0, device=None, batches=None, collector=None,
             precision: str = "fp32") -> dict:
    """The task's metrics of ``model`` on ``batches`` (default: the task's validation batches), a stream's state
    carried across chunks. Every counted target weighs the same; a task whose metrics need more than per-batch
    sums (a confusion matrix, span F1, decoded outputs) gets the batches' predictions and the model through its
    ``collector`` (pass one to read it afterwards). ``precision``: a resolved one (:mod:`rnnkit.precision`); the
    loss and the predictions the metrics read are fp32 whatever the forward ran in."""
    device = device or next(model.parameters()).device
    batches = task.val if batches is None else batches
    was_training = model.training
    model.eval()
    state, total, count, sums = None, 0.0, 0, {}
    collector = collector if collector is not None else getattr(task, "collector", lambda: None)()
    for batch in batches.sequential(max_chunks):
        if batch.starts_epoch:
            state = None
        batch = batch.to(device)
        with precision_autocast(precision, device):
            out = model(batch.inputs, batch.targets, state, **batch.model_inputs())
        n = batch.num_targets  # weight by the targets that count (padding is not)
        if n == 0:
            continue
        total += out.loss.float().item() * n
        count += n
        prediction = out.prediction
        if isinstance(prediction, torch.Tensor) and prediction.dtype in (torch.bfloat16, torch.float16):
            prediction = prediction.float()
        for name, value in task.batch_terms(prediction, batch.targets).items():
            sums[name] = sums.get(name, 0.0) + value
        if collector is not None:
            collector.add(prediction, batch, model)
        state = out.state
    model.train(was_training)
    if count == 0:
        raise ValueError("the evaluation data has no targets to score")
    means = {name: value / count for name, value in sums.items()}
    if collector is not None:
        means.update(collector.metrics())
    return task.metrics(total / count, means)
