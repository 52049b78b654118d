"""Echo state networks: a reservoir and a ridge readout, for forecasting (one step, or free-running with the
output fed back as the next input) and for classifying whole sequences; saved as safetensors + JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .readout import RidgeReadout
from .reservoir import Reservoir, check_inputs


def _as_batches(sequences, batch_size: int = 64):
    """A (B, T, D) tensor, one (T, D) sequence, or a list of sequences (any lengths) → lists of (T, D) tensors."""
    if isinstance(sequences, (list, tuple)):
        items = [torch.as_tensor(s) for s in sequences]
    else:
        t = torch.as_tensor(sequences)
        items = [t.unsqueeze(-1)] if t.dim() == 1 else [t] if t.dim() == 2 else list(t)
    items = [x.unsqueeze(-1) if x.dim() == 1 else x for x in items]
    return [items[i:i + batch_size] for i in range(0, len(items), batch_size)]


class ESN(nn.Module):
    """y_t = W_out [x_t; u_t] + b over reservoir states x_t (and, with ``include_input``, the input u_t).

    ``fit(inputs, targets, washout, ridge)`` runs the reservoir over every sequence, drops each sequence's first
    ``washout`` states (the transient from the zero state) and solves the ridge readout from accumulated sums;
    ``ridge="gcv"`` picks λ by generalised cross-validation. ``state`` is then the reservoir state after the last
    training sequence: pass it to ``predict`` / ``generate`` to continue a series where training ended.
    ``predict`` maps inputs to outputs (teacher-forced: the true inputs); ``generate`` warms the reservoir up on
    true inputs and then runs closed-loop, each output the next input.
    """

    def __init__(self, reservoir: nn.Module, outputs: int, include_input: bool = False):
        super().__init__()
        self.reservoir, self.outputs, self.include_input = reservoir, outputs, include_input
        features = reservoir.output_size + (reservoir.input_size if include_input else 0)
        self.register_buffer("weight", torch.zeros(outputs, features, dtype=torch.float64))
        self.register_buffer("bias", torch.zeros(outputs, dtype=torch.float64))
        self.ridge: float | None = None
        self.state = None

    def features(self, u: Tensor, state=None) -> tuple[Tensor, object]:
        states, final = self.reservoir(u, state)
        if self.include_input:
            states = torch.cat([states, check_inputs(u, self.reservoir.input_size, states.dtype, "ESN")], -1)
        return states, final

    def fit(self, inputs, targets, washout: int = 100, ridge: float | str = 1e-6) -> ESN:
        """Fit the readout; ``inputs`` and ``targets``: (T, D) / (B, T, D) arrays or lists of sequences."""
        readout = RidgeReadout()
        for xs, ys in zip(_as_batches(inputs), _as_batches(targets)):
            for x, y in zip(xs, ys):
                if washout >= len(x):
                    raise ValueError(f"washout={washout} leaves nothing of a sequence of {len(x)} steps; use a "
                                     "smaller washout or longer sequences")
                if len(y) != len(x):
                    raise ValueError(f"inputs and targets must have the same number of steps; got {len(x)} and "
                                     f"{len(y)}")
            for x, y in zip(xs, ys):  # sequences of one batch may differ in length: run them one by one
                feats, self.state = self.features(x)
                readout.add(feats[0, washout:], y[washout:])
        readout.solve(ridge)
        self.weight.copy_(readout.weight)
        self.bias.copy_(readout.bias)
        self.ridge, self.gcv = readout.ridge, readout.gcv
        return self

    def readout(self, features: Tensor) -> Tensor:
        return features @ self.weight.to(features.dtype).t() + self.bias.to(features.dtype)

    def predict(self, inputs, state=None) -> tuple[Tensor, object]:
        """Outputs (B, T, O) for inputs (B, T, D) (or (T, D)), and the final reservoir state."""
        feats, final = self.features(inputs, state)
        return self.readout(feats), final

    @torch.inference_mode()
    def generate(self, warmup, steps: int, state=None) -> Tensor:
        """``steps`` outputs after ``warmup`` (T0, D): the reservoir reads the true warm-up values (teacher
        forcing; from ``state``, or the zero state), then each output is fed back as the next input. Needs
        outputs == inputs."""
        if self.outputs != self.reservoir.input_size:
            raise ValueError(f"closed-loop generation feeds each output back as the next input: it needs as many "
                             f"outputs as inputs; got {self.outputs} and {self.reservoir.input_size}")
        out, state = self.predict(warmup, state)
        y = out[:, -1:]
        generated = [y]
        for _ in range(steps - 1):
            out, state = self.predict(y, state)
            y = out
            generated.append(y)
        return torch.cat(generated, 1)

    # ---- files ---------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """``esn.safetensors`` (reservoir and readout weights) and ``esn.json`` (hyperparameters), atomically."""
        from safetensors.torch import save_model

        from ..io import write_json_atomic

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / ".esn.safetensors.tmp"
        save_model(self, str(tmp))
        tmp.replace(directory / "esn.safetensors")
        write_json_atomic(directory / "esn.json", {"reservoir": self.reservoir.hyper, "outputs": self.outputs,
                                                   "include_input": self.include_input, "ridge": self.ridge,
                                                   "dtype": str(self.reservoir.dtype).removeprefix("torch.")})

    @classmethod
    def load(cls, directory: str | Path) -> ESN:
        from ..training.checkpoint import load_weights

        directory = Path(directory)
        try:
            spec = json.loads((directory / "esn.json").read_text(encoding="utf-8"))
            hyper = spec["reservoir"]
            dtype = getattr(torch, spec.get("dtype", "float64"))
            units, inputs = int(hyper["units"]), int(hyper["input_size"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{directory}: no readable esn.json ({type(e).__name__}: {e}); expected the output "
                             "of ESN.save") from None
        placeholder = {"W": np.zeros((units, units)), "W_in": np.zeros((units, inputs)), "bias": np.zeros(units)}
        reservoir = Reservoir(inputs, units, activation=hyper.get("activation", "tanh"), dtype=dtype,
                              weights=placeholder)
        reservoir.hyper = hyper
        esn = cls(reservoir, int(spec["outputs"]), bool(spec["include_input"]))
        load_weights(esn, directory / "esn.safetensors")  # the weights and per-unit leaks themselves
        esn.ridge = spec.get("ridge")
        return esn


def nrmse(actual, predicted) -> float:
    """Root-mean-square error over the standard deviation of ``actual`` (the reservoir-computing convention)."""
    a, p = np.asarray(actual, float), np.asarray(predicted, float)
    return float(np.sqrt(np.mean((a - p) ** 2)) / np.std(a))


class ESNClassifier(nn.Module):
    """A label per sequence from reservoir states pooled over the sequence (``"last"`` state or ``"mean"`` over
    its steps; ``"both"`` side by side) → a ridge classifier on one-hot targets (argmax)."""

    def __init__(self, reservoir: nn.Module, num_classes: int, pooling: str = "mean"):
        super().__init__()
        if pooling not in ("last", "mean", "both"):
            raise ValueError(f"pooling must be 'last', 'mean' or 'both'; got {pooling!r}")
        self.reservoir, self.num_classes, self.pooling = reservoir, num_classes, pooling
        features = reservoir.output_size * (2 if pooling == "both" else 1)
        self.register_buffer("weight", torch.zeros(num_classes, features, dtype=torch.float64))
        self.register_buffer("bias", torch.zeros(num_classes, dtype=torch.float64))

    def pooled(self, sequences) -> Tensor:
        """(N, F) pooled states, one row per sequence (each run from the zero state)."""
        rows = []
        for batch in _as_batches(sequences):  # padded at the end: a row's states up to its length are its own
            lengths = torch.tensor([len(x) for x in batch])
            states, _ = self.reservoir(torch.nn.utils.rnn.pad_sequence(batch, batch_first=True))
            real = (torch.arange(states.shape[1]) < lengths[:, None]).unsqueeze(-1)
            last = states[torch.arange(len(batch)), lengths - 1]
            mean = (states * real).sum(1) / lengths[:, None]
            rows.append({"last": last, "mean": mean, "both": torch.cat([last, mean], -1)}[self.pooling])
        return torch.cat(rows)

    def fit(self, sequences, labels, ridge: float | str = 1e-6) -> ESNClassifier:
        labels = torch.as_tensor(labels)
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"labels must be class ids in [0, {self.num_classes}); got {labels.min()}..{labels.max()}")
        readout = RidgeReadout()
        readout.add(self.pooled(sequences), torch.nn.functional.one_hot(labels, self.num_classes))
        readout.solve(ridge)
        self.weight.copy_(readout.weight)
        self.bias.copy_(readout.bias)
        self.ridge = readout.ridge
        return self

    def predict(self, sequences) -> Tensor:
        scores = self.pooled(sequences)
        return (scores @ self.weight.to(scores.dtype).t() + self.bias.to(scores.dtype)).argmax(-1)
