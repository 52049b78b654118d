"""Checkpoints that survive a crash, and that never unpickle anything.

A checkpoint is a directory ``checkpoints/step-00000200/`` holding ``model.safetensors``, ``extra.safetensors``
(the carried recurrent state and every process's CPU and CUDA random-number states), ``average.safetensors`` (the
averaged weights, when ``train.ema`` is on), ``optimizer.pt``
(optimizer and schedule state, read with ``torch.load(weights_only=True)``) and ``trainer.json``. It is written
as ``step-....partial`` and renamed into place in one step, so a process killed at any instant leaves either the
previous checkpoint or the new one, complete. The newest ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from ..io import write_json_atomic


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated or corrupted."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """``model``'s parameters and buffers as safetensors, atomically (temp file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    save_model(model, str(tmp))
    os.replace(tmp, path)


def load_weights(model: torch.nn.Module, path: Path) -> None:
    try:
        missing, unexpected = load_model(model, str(path), strict=False, device="cpu")
    except (SafetensorError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{path}: cannot read the weights ({e}); the file is missing, truncated or "
                              "corrupted") from None
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit this model (missing {sorted(missing)[:5]}, "
                              f"unexpected {sorted(unexpected)[:5]})")


def save_checkpoint(run_dir: Path, step: int, model, optimizer, scheduler, carried: list[torch.Tensor] | None,
                    trainer_state: dict, rng: dict[str, torch.Tensor] | None = None, keep: int = 2,
                    average: torch.optim.swa_utils.AveragedModel | None = None) -> Path:
    """Write checkpoint ``step`` atomically; ``rng``: named random-number states (default: this process's CPU
    generator as ``rng.cpu.0``); ``average``: the averaged weights (``train.ema``) with their update count."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    partial = root / f"step-{step:08d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    save_model(model, str(partial / "model.safetensors"))
    extra = dict(rng or {"rng.cpu.0": torch.get_rng_state()})
    for i, t in enumerate(carried or []):
        extra[f"state.{i}"] = t.detach().cpu().contiguous()
    if average is not None:
        extra["average.n_averaged"] = average.n_averaged.detach().cpu()
        save_model(average.module, str(partial / "average.safetensors"))
    save_file(extra, str(partial / "extra.safetensors"))
    schedule = None if scheduler is None else scheduler.state_dict()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": schedule}, partial / "optimizer.pt")
    write_json_atomic(partial / "trainer.json", {**trainer_state, "step": step,
                                                  "carried_tensors": len(carried or [])})
    for f in partial.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(partial)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)  # the commit point
    _fsync_dir(root)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")
                  and not p.name.endswith(".partial"))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint (``.partial`` directories are ignored), or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


# trainer.json: what a resume reads, with its type
TRAINER_KEYS = {"step": int, "best": (int, float), "best_metrics": dict, "bad_evals": int, "elapsed": (int, float),
                "carried_tensors": int}


def load_checkpoint(path: Path, model, optimizer, scheduler, average: torch.optim.swa_utils.AveragedModel | None = None
                    ) -> tuple[dict, list[torch.Tensor], dict]:
    """Restore model, optimizer, schedule and (when given) the averaged weights in place; return (trainer state,
    carried tensors, RNG states by name). Every file is checked before anything is restored, and a damaged one is
    named."""
    load_weights(model, path / "model.safetensors")
    if average is not None:
        if not (path / "average.safetensors").exists():
            raise CheckpointError(f"{path} holds no averaged weights (average.safetensors): the run was saved "
                                  "without train.ema; resume it with train.ema = 0, or start a new run")
        load_weights(average.module, path / "average.safetensors")

    def damaged(name: str, why: str) -> CheckpointError:
        return CheckpointError(f"{path / name}: {why}; the checkpoint is truncated or corrupted. Delete "
                               f"{path} to resume from the one before it")

    try:
        extra = load_file(str(path / "extra.safetensors"))
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise damaged("extra.safetensors", f"cannot be read ({e})") from None
    try:
        opt = torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu")
    except Exception:  # an UnpicklingError (a pickle, random bytes) or a truncated archive: never unpickled
        raise damaged("optimizer.pt", "not a plain tensor file (rnnkit reads it with weights_only=True and never "
                      "unpickles objects)") from None
    try:
        state = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise damaged("trainer.json", f"cannot be read ({e})") from None
    if not isinstance(state, dict):
        raise damaged("trainer.json", "not a JSON object")
    state.setdefault("elapsed", 0.0)
    for key, typ in TRAINER_KEYS.items():
        if key not in state or isinstance(state[key], bool) or not isinstance(state[key], typ):
            raise damaged("trainer.json", f"{key!r} is missing or not {getattr(typ, '__name__', 'a number')}")
    missing = [f"state.{i}" for i in range(state["carried_tensors"]) if f"state.{i}" not in extra]
    if missing or not isinstance(opt, dict) or "optimizer" not in opt:
        raise damaged("extra.safetensors" if missing else "optimizer.pt", f"lacks {missing or ['optimizer']}")
    try:
        optimizer.load_state_dict(opt["optimizer"])
        if scheduler is not None and opt.get("scheduler") is not None:
            scheduler.load_state_dict(opt["scheduler"])
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise damaged("optimizer.pt", f"does not fit this run's optimizer ({e})") from None
    if average is not None:
        if "average.n_averaged" not in extra:
            raise damaged("extra.safetensors", "lacks average.n_averaged")
        average.n_averaged.copy_(extra["average.n_averaged"])
    carried = [extra[f"state.{i}"] for i in range(state["carried_tensors"])]
    rng = {k: v for k, v in extra.items() if k.startswith("rng")}
    if "rng" in rng:  # written before per-device states were kept
        rng["rng.cpu.0"] = rng.pop("rng")
    return state, carried, rng
