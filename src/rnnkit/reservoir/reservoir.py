"""Reservoirs: fixed random recurrent networks whose states are the features of a trained linear readout.

Seed 003, "Echo state networks, a.k.a. reservoir computing: set the weights so that the recurrent units do a good
job of capturing the history of past inputs ... and learn only the output weights"; the spectral radius of the
recurrent matrix (of the Jacobians) governs the dynamics. The units are the notes' leaky units (seed 003, "Leaky
units & timescale hierarchy") with leak a = 1/τ:

    x_t = (1 - a) ⊙ x_{t-1} + a ⊙ f(W_in u_t + W x_{t-1} + b)

the update of ReservoirPy's ``Reservoir`` (lr = a), whose matrix construction is followed: W has N(0, 1) entries
kept with probability ``connectivity`` and is scaled to the requested spectral radius exactly; W_in has ±1 entries
(times ``input_scaling``) kept with probability ``input_connectivity``; b ~ U(-1, 1) · ``bias_scaling``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..cells.base import activation as activation_fn


def spectral_radius_of(matrix: np.ndarray) -> float:
    """max |λ| of a square matrix: ARPACK's largest-magnitude eigenvalue for large ones (what ReservoirPy uses),
    all eigenvalues for small ones."""
    if matrix.shape[0] <= 200:
        return float(np.abs(np.linalg.eigvals(matrix)).max())
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import eigs

    value = eigs(csr_matrix(matrix), k=1, which="LM", tol=1e-12, return_eigenvectors=False,
                 v0=np.ones(matrix.shape[0]))
    return float(np.abs(value).max())


def recurrent_matrix(units: int, spectral_radius: float, connectivity: float, rng: np.random.Generator) -> np.ndarray:
    """W (N, N): N(0, 1) entries kept with probability ``connectivity``, scaled to ``spectral_radius`` exactly."""
    if not (math.isfinite(spectral_radius) and spectral_radius > 0):
        raise ValueError(f"spectral_radius must be a finite number > 0; got {spectral_radius}")
    if not 0 < connectivity <= 1:
        raise ValueError(f"connectivity must be in (0, 1]; got {connectivity}")
    W = rng.standard_normal((units, units)) * (rng.random((units, units)) < connectivity)
    radius = spectral_radius_of(W)
    if radius == 0:
        raise ValueError(f"the random {units}x{units} matrix at connectivity {connectivity} is nilpotent "
                         "(spectral radius 0); raise connectivity or units")
    return W * (spectral_radius / radius)


def input_matrix(units: int, inputs: int, scaling, connectivity: float, rng: np.random.Generator) -> np.ndarray:
    """W_in (N, D): ±1 entries kept with probability ``connectivity`` (at least one per input), times
    ``scaling`` (one number, or one per input)."""
    if not 0 < connectivity <= 1:
        raise ValueError(f"input_connectivity must be in (0, 1]; got {connectivity}")
    mask = rng.random((units, inputs)) < connectivity
    mask[rng.integers(units, size=inputs), np.arange(inputs)] = True  # every input reaches some unit
    signs = rng.choice([-1.0, 1.0], size=(units, inputs))
    return signs * mask * np.broadcast_to(np.asarray(scaling, float), (inputs,))


def leak_vector(leak, units: int) -> np.ndarray:
    """Leak rates a = 1/τ in (0, 1]: one number, a (min, max) range spread geometrically over the units (several
    timescales at once), or one per unit."""
    if isinstance(leak, tuple) and len(leak) == 2:
        lo, hi = map(float, leak)
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"a leak range must satisfy 0 < min <= max <= 1; got {leak}")
        return np.geomspace(lo, hi, units)
    values = np.broadcast_to(np.asarray(leak, float), (units,)).copy() if np.ndim(leak) == 0 else np.asarray(
        leak, float)
    if values.shape != (units,) or not (np.isfinite(values).all() and (values > 0).all() and (values <= 1).all()):
        raise ValueError(f"leak must be in (0, 1]: a number, a (min, max) range or {units} values; got {leak!r}")
    return values


class Reservoir(nn.Module):
    """A leaky echo-state reservoir of ``units`` over ``input_size`` inputs (weights fixed: buffers, no gradients).

    ``forward(u (B, T, D), state (B, N) | None) -> (states (B, T, N), final (B, N))``: many sequences as one
    batch, in the reservoir's dtype (float64 by default, as ReservoirPy; float32 halves the time). The weights
    are ``weight_hh`` = W, ``weight_ih`` = W_in, ``bias`` = b and ``leak`` = a (per unit); build them from the
    hyperparameters, or pass ``weights={"W": ..., "W_in": ..., "bias": ...}`` to use given ones (ReservoirPy's,
    say).
    """

    def __init__(self, input_size: int, units: int = 500, spectral_radius: float = 0.9, leak=1.0,
                 input_scaling=1.0, connectivity: float = 0.1, input_connectivity: float = 0.1,
                 bias_scaling: float = 0.0, activation: str = "tanh", seed: int = 0, dtype=torch.float64,
                 weights: dict | None = None):
        super().__init__()
        if units < 1 or input_size < 1:
            raise ValueError(f"units and input_size must be >= 1; got {units}, {input_size}")
        self.input_size, self.units, self.output_size = input_size, units, units
        self.hyper = dict(input_size=input_size, units=units, spectral_radius=spectral_radius,
                          leak=list(leak) if isinstance(leak, (tuple, list, np.ndarray)) else leak,
                          input_scaling=input_scaling, connectivity=connectivity,
                          input_connectivity=input_connectivity, bias_scaling=bias_scaling, activation=activation,
                          seed=seed)
        self.activation_name = activation
        self._f = activation_fn(activation)
        if weights is None:
            rng = np.random.default_rng(seed)
            W = recurrent_matrix(units, spectral_radius, connectivity, rng)
            W_in = input_matrix(units, input_size, input_scaling, input_connectivity, rng)
            b = rng.uniform(-1, 1, units) * bias_scaling
        else:
            W, W_in, b = (np.asarray(weights[k], float) for k in ("W", "W_in", "bias"))
            if W.shape != (units, units) or W_in.shape != (units, input_size) or b.shape != (units,):
                raise ValueError(f"weights must be W ({units}, {units}), W_in ({units}, {input_size}) and bias "
                                 f"({units},); got {W.shape}, {W_in.shape}, {b.shape}")
        for name, value in (("weight_hh", W), ("weight_ih", W_in), ("bias", b), ("leak", leak_vector(leak, units))):
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(value), dtype=dtype))

    @property
    def dtype(self) -> torch.dtype:
        return self.weight_hh.dtype

    def _act(self, src: Tensor, dst: Tensor) -> Tensor:
        """dst = f(src), in place where torch has an out= form."""
        if self.activation_name == "tanh":
            return torch.tanh(src, out=dst)
        return dst.copy_(self._f(src))

    def _loop(self, drive: Tensor, x: Tensor, states: Tensor, W: Tensor | None) -> None:
        """states[t] = (1 - a) x_{t-1} + a f(drive[t] + W x_{t-1}): a product, f and the leak a step."""
        B = x.shape[0]
        uniform = bool((self.leak == self.leak[0]).all())
        leak = float(self.leak[0]) if uniform else self.leak
        whole = uniform and leak == 1.0
        pre = torch.empty(B, self.units, dtype=self.dtype, device=drive.device)
        for t in range(len(drive)):
            if W is None:
                torch.addmm(drive[t], x, self.weight_hh.t(), out=pre)
            elif B == 1:  # W x as a sparse product: at 10% connectivity a tenth of the memory traffic
                pre = torch.mv(W, x[0]).add_(drive[t, 0]).unsqueeze(0)
            else:
                pre = torch.mm(W, x.t()).t().add_(drive[t])
            if whole:  # the plain (non-leaky) update
                self._act(pre, states[t])
            else:
                torch.lerp(x, self._act(pre, pre), leak, out=states[t])
            x = states[t]

    def _sparse_hh(self) -> Tensor | None:
        """W in CSR form when it is large and sparse enough for that to be faster (measured on 2 EPYC cores: a
        10%-dense 500 x 500 float64 product takes 14-20 us sparse, 28 us dense; 2000 x 2000: 130 us against 1.5 ms);
        cached until the weights change."""
        if self.units < 300 or self.weight_hh.device.type != "cpu":
            return None
        key = (self.weight_hh.data_ptr(), self.weight_hh._version, self.weight_hh.dtype)
        if getattr(self, "_csr_key", None) != key:
            density = float((self.weight_hh != 0).float().mean())
            with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
                warnings.simplefilter("ignore", UserWarning)
                self._csr = self.weight_hh.to_sparse_csr() if density <= 0.25 else None
            self._csr_key = key
        return self._csr

    def initial_state(self, batch_size: int) -> Tensor:
        return torch.zeros(batch_size, self.units, dtype=self.dtype, device=self.weight_hh.device)

    @torch.inference_mode()
    def forward(self, u: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        u = check_inputs(u, self.input_size, self.dtype, "Reservoir")
        B, T, _ = u.shape
        x = self.initial_state(B) if state is None else state.to(self.dtype)
        if x.shape != (B, self.units):
            raise ValueError(f"Reservoir expected a state ({B}, {self.units}); got {tuple(x.shape)}")
        # W_in u_t + b for every step in one product, laid out (T, B, N) so each step reads a contiguous block
        drive = torch.addmm(self.bias, u.transpose(0, 1).reshape(T * B, -1), self.weight_ih.t()).view(T, B, -1)
        states = torch.empty_like(drive)
        W = self._sparse_hh()
        with _threads(1 if W is not None and self.units < 1000 else None):
            self._loop(drive, x, states, W)
        x = states[-1]
        return states.transpose(0, 1), x.clone()


@contextlib.contextmanager
def _threads(count: int | None):
    """torch's intra-op threads set to ``count`` for a block (None: unchanged). A sparse product of a few hundred
    rows is faster on one thread than split over two (13.6 against 24.6 us at 500 units, measured)."""
    if count is None or count == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_inputs(u, input_size: int, dtype: torch.dtype, owner: str) -> Tensor:
    """(B, T, D) from (T, D) / (B, T, D) arrays or tensors, in ``dtype``, every value finite."""
    u = torch.as_tensor(u)
    if u.dim() == 2:
        u = u.unsqueeze(0)
    if u.dim() != 3 or u.shape[-1] != input_size or u.shape[1] == 0:
        raise ValueError(f"{owner} expected inputs (time, {input_size}) or (batch, time, {input_size}); got shape "
                         f"{tuple(u.shape)}")
    if not u.is_floating_point():
        raise ValueError(f"{owner} expected real-valued inputs; got dtype {u.dtype}")
    if not torch.isfinite(u).all():
        raise ValueError(f"{owner}: the inputs hold NaN or inf; fill or drop them first")
    return u.to(dtype)


class DeepReservoir(nn.Module):
    """Stacked reservoirs (Gallicchio et al. 2017): layer l reads layer l-1's states; the features are every layer's
    states side by side, (B, T, Σ N_l)."""

    def __init__(self, layers: Sequence[Reservoir]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        for below, above in zip(self.layers, self.layers[1:]):
            if above.input_size != below.units:
                raise ValueError(f"a stacked reservoir reads the {below.units} states below it; got input_size "
                                 f"{above.input_size}")
        self.input_size = self.layers[0].input_size
        self.output_size = sum(layer.units for layer in self.layers)
        self.hyper = {"layers": [layer.hyper for layer in self.layers]}

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].dtype

    def forward(self, u: Tensor, state: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        outputs, finals, x = [], [], u
        for i, layer in enumerate(self.layers):
            x, final = layer(x, None if state is None else state[i])
            outputs.append(x)
            finals.append(final)
        return torch.cat(outputs, -1), finals


class CellReservoir(nn.Module):
    """Any rnnkit cell, frozen, as a reservoir: its outputs over time are the features (``cell.output_size``)."""

    def __init__(self, cell):
        super().__init__()
        from ..layers.recurrent import Recurrent

        self.cell = cell.requires_grad_(False)
        self.recurrent = Recurrent(cell)
        self.input_size, self.output_size = cell.input_size, cell.output_size
        self.hyper = {"cell": type(cell).__name__}

    @property
    def dtype(self) -> torch.dtype:
        return next(self.cell.parameters()).dtype

    @torch.inference_mode()
    def forward(self, u: Tensor, state=None):
        u = check_inputs(u, self.input_size, self.dtype, f"CellReservoir({type(self.cell).__name__})")
        return self.recurrent(u, state)
