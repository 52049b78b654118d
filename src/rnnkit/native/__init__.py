"""rnnkit's native sequence kernels: the whole time loop of a cell family, forward and backward, in C++.

The cells that torch ships no kernel for (peephole LSTM, Cho's GRU, MUT1-3, leaky units, delay paths, Jordan) run
their loop here instead of rnnkit's Python loop, with the same results (tests/layers/test_native.py: float64 to
1e-10). A cell opts in by declaring ``kernel_family`` and ``kernel_arguments()`` (cells/base.py); the one dispatch
point is
:func:`run_sequence`, called from the sequence loop (layers/recurrent.py) and refusing (returning None) whenever
the kernel does not apply, so the Python loop runs instead.

What a kernel does per family (kernels.cpp): the recurrent products through ATen's GEMMs, the gate math fused into
one pass per step (vectorised, split over the threads), and in the backward pass only dh_{t-1} = dA_t W inside the
loop; every weight gradient is one product over all steps after it (dW = Σ_t dA_tᵀ h_{t-1}, as haste and cuDNN).

Built on first use with ``torch.utils.cpp_extension`` (a C++ compiler and ninja; cached per torch version and CPU
under ``TORCH_EXTENSIONS_DIR``, about 25 s the first time). ``RNNKIT_NATIVE=0`` turns it off; without a compiler
everything runs on the Python loop. Either way one log line (logger ``rnnkit.native``) says which path runs, and
:func:`status` returns it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import platform
from pathlib import Path

import torch
from torch import Tensor

from ..cells.base import Cell, State, map_state, state_from_tensors, state_tensors

log = logging.getLogger("rnnkit.native")

SOURCE = Path(__file__).with_name("kernels.cpp")
_FLAGS = ["-O3", "-fopenmp", "-ffast-math"]  # fast-math: glibc's vector exp in the gate loops (libmvec)
_extension = None
_status: str | None = None
_python_loop_forced = 0  # > 0 inside python_loop()


def _cpu_flags() -> list[str]:
    """-march=native where it is safe to cache: the build directory is keyed by this CPU's model and flags."""
    return ["-march=native"] if platform.machine() in ("x86_64", "AMD64") else []


def _cpu_key() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = [platform.processor()]
    return "\n".join(lines)


@functools.lru_cache(maxsize=1)
def _build_name() -> str:
    """One build directory per torch version, CPU, flags and kernel source: two installs or checkouts of different
    rnnkit versions each keep their own build instead of rebuilding in turn."""
    source = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    key = "\n".join([torch.__version__, _cpu_key(), " ".join(_FLAGS + _cpu_flags()), source])
    return "rnnkit_native_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _built() -> bool:
    """Whether this build's library is already on disk (then loading takes a moment; otherwise it compiles)."""
    try:
        from torch.utils.cpp_extension import _get_build_directory

        name = _build_name()
        return (Path(_get_build_directory(name, verbose=False)) / f"{name}.so").exists()
    except Exception:  # a private helper of torch's: if it moves, only the progress line is lost
        return True


def extension():
    """The compiled kernels (built on the first call), or None when off or unavailable (see :func:`status`)."""
    global _extension, _status
    if _status is not None:
        return _extension
    if os.environ.get("RNNKIT_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        _status = "off (RNNKIT_NATIVE=0): custom cells run rnnkit's Python loop"
    else:
        try:
            from torch.utils.cpp_extension import load

            if not _built():
                log.warning("rnnkit native kernels: compiling them for this CPU and torch version (once; about a "
                            "minute)")
            _extension = load(_build_name(), [str(SOURCE)], extra_cflags=_FLAGS + _cpu_flags(),
                              extra_ldflags=["-fopenmp"], verbose=False)
            _status = f"on: custom cells run rnnkit's native sequence kernels ({_build_name()})"
        except Exception as e:  # no compiler, no ninja, a failed build: the Python loop still runs everything
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            _status = f"unavailable ({reason[:200]}): custom cells run rnnkit's Python loop"
    log.info("rnnkit native kernels %s", _status)
    return _extension


def status() -> str:
    """One line: whether the native kernels run, and why not when they do not (builds them if needed)."""
    extension()
    return _status


@contextlib.contextmanager
def python_loop():
    """Inside, every cell runs rnnkit's Python loop and the cross-entropy torch's own (the references the kernels are
    tested against)."""
    global _python_loop_forced
    _python_loop_forced += 1
    try:
        yield
    finally:
        _python_loop_forced -= 1


def python_loop_forced() -> bool:
    """Whether a :func:`python_loop` block is active."""
    return _python_loop_forced > 0


def applies(cell: Cell, px: Tensor) -> bool:
    """Whether ``cell``'s loop over ``px`` can run natively: a family declared, CPU float32/float64 tensors, and the
    kernels built. Under CPU autocast (mixed precision) the kernel carries the state in float32 on the float32 master
    weights (``px`` comes in bf16 and is widened), with bf16 products where :func:`bf16_products` says so: faster than
    the Python loop with bf16 products on the CPUs measured (benchmarks/bench_precision.py, docs/training.md)."""
    family = getattr(cell, "kernel_family", None)
    if family is None or _python_loop_forced or px.device.type != "cpu":
        return False
    if px.dtype not in (torch.float32, torch.float64):
        low = px.dtype in (torch.bfloat16, torch.float16) and torch.is_autocast_enabled("cpu")
        if not (low and all(p.dtype == torch.float32 for p in cell.parameters())):
            return False
    return extension() is not None


def bf16_products() -> bool:
    """Whether the kernels run their matrix products in bfloat16 under bf16 autocast (the state, the gate math and
    every sum stay float32): on CPUs with AMX tiles, where a bf16 product at a step's shape runs on the tiles
    (benchmarks/bench_precision.py: the custom cells and the GRU 1.5-2.1x their float32 training throughput). Without
    AMX the products stay float32: AVX-512 BF16 alone measured slower than float32 at small products (docs/training.md,
    generation on the AMD EPYC)."""
    from ..precision import cpu_bf16_flags

    return torch.get_autocast_dtype("cpu") == torch.bfloat16 and "amx_bf16" in cpu_bf16_flags()


def step_applies(weight: Tensor, autocast_dtype: torch.dtype | None) -> bool:
    """Whether :func:`lstm_step` can step cells with parameters like ``weight``: float32 on the CPU, with the
    weights read in float32 or (under bf16 autocast) bfloat16."""
    if _python_loop_forced or weight.device.type != "cpu" or weight.dtype != torch.float32:
        return False
    if autocast_dtype not in (None, torch.bfloat16):
        return False
    return extension() is not None


def lstm_step(weight: Tensor, inputs: Tensor, base: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM step without autograd (generation): a = base + inputs Wᵀ with rows i, f, g, o of ``weight``
    (4H, K) (float32 or bfloat16), c_t = σ(a_f) c_{t-1} + σ(a_i) tanh(a_g), h_t = σ(a_o) tanh(c_t) (seed 000).
    ``inputs`` (B, K), ``base`` (B, 4H) or (4H,) and ``c_prev`` (B, H) in float32; returns (h_t, c_t)."""
    h, c = extension().lstm_step(weight, inputs.float(), base.float(), c_prev.float())
    return h, c


def gumbel_argmax(logits: Tensor, noise: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  banned: Tensor | None = None) -> Tensor | None:
    """The draw of ``rnnkit.generation.sampling.choose_next`` in one native pass, for float32 (B, V) CPU tensors:
    argmax_v (logits / temperature + noise) per row over the ids that ``top_k`` (0: all) and ``top_p`` (1: all)
    keep and ``banned`` (int64 ids, or None) does not name, a NaN logit read as −inf and +inf as the largest float.
    None where the kernels do not apply (the caller then runs the tensor operations). With top_p < 1 the nucleus is
    torch's except where a running probability sum falls within float rounding of top_p (the native softmax
    rounds differently in the last place) or tied logits straddle its end."""
    if (_python_loop_forced or logits.device.type != "cpu" or logits.dtype != torch.float32 or logits.dim() != 2
            or noise.dtype != torch.float32 or noise.shape != logits.shape or noise.device.type != "cpu"
            or logits.stride(1) != 1 or noise.stride(1) != 1):
        return None
    ext = extension()
    if ext is None:
        return None
    return ext.gumbel_argmax(logits, noise, temperature, top_k, top_p,
                             _empty(logits.device) if banned is None else banned)


#: A product of at most this many rows runs as dot products over the weight's rows (:func:`linear`), as the
#: sequence kernels' recurrent products do at as few rows (kDotRows in kernels.cpp)
DOT_MAX_ROWS = 4


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor | None:
    """``F.linear(x, weight, bias)`` for at most :data:`DOT_MAX_ROWS` rows (x (..., K), the rows its leading
    dimensions hold) in rnnkit's native dot products: float32 on the CPU, outside autocast, with nothing that needs
    a gradient. None where it does not apply (the caller runs F.linear)."""
    if (_python_loop_forced or x.device.type != "cpu" or x.dtype != torch.float32
            or weight.dtype != torch.float32 or weight.dim() != 2 or weight.stride(1) != 1
            or x.dim() < 1 or x.shape[-1] != weight.shape[1] or x.numel() > DOT_MAX_ROWS * max(x.shape[-1], 1)
            or (bias is not None and (bias.dtype != torch.float32 or bias.dim() != 1))
            or torch.is_autocast_enabled("cpu")):
        return None
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                    or (bias is not None and bias.requires_grad)):
        return None
    ext = extension()
    if ext is None:
        return None
    rows = x.reshape(-1, x.shape[-1]).contiguous()
    out = ext.linear_rows(rows, weight, _empty(x.device) if bias is None else bias.contiguous())
    return out.view(*x.shape[:-1], weight.shape[0])


#: The stack step's families whose cells carry c beside h (their state is (h, c); the others' is h)
CELL_STATE_FAMILIES = frozenset({"lstm", "peephole-lstm"})


def stack_step(family: str, weights: list[Tensor], biases: list[Tensor], x: Tensor, h: Tensor, c: Tensor | None,
               projected: bool, head: tuple[Tensor, Tensor | None] | None = None,
               *, max_rows: int, parts: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """One step of a unidirectional stack of one family in one call (generation): ``family`` as the cells declare it
    (``Cell.stack_step_family``: "lstm", "peephole-lstm", "gru", "gru-cho", "mut1", "mut2", "mut3", "rnn-tanh",
    "rnn-relu"). Layer k reads ``weights[k]`` (G·H, K) (its fused [W_ih | W_hh], ``Cell.stack_step_weights``:
    float32, or bfloat16 under bf16 autocast, every sum in float32; with ``projected`` layer 0's W_hh alone, ``x``
    being its input term W_ih x + b_ih) and ``biases[k]`` (the family's vectors: the LSTM's b, the peephole LSTM's
    [b | p_i | p_f | p_o], the GRU's [b_ih | b_hh], ...); then ``head`` = (weight (V, H), bias or None), float32,
    turns the last h into logits. x (B, ·), h (L, B, H), the LSTMs' c (the others' None), biases and head float32
    (the kernel checks). Up to ``max_rows`` rows the weights are read once per row; beyond, each layer's products
    are GEMMs (the float32 LSTMs' in ``parts`` row blocks, one per thread; one block where 4H does not divide;
    bfloat16 weights take the rows rounded to bfloat16 and a bf16 GEMM summing in float32), then the gate math in
    one pass. Returns (the last h or the logits, h_n, c_n or None)."""
    head_w, head_b = head if head is not None else (None, None)
    empty = _empty(x.device)
    out, h_n, c_n = extension().stack_step(family, weights, biases, x, h, empty if c is None else c, projected,
                                           empty if head_w is None else head_w,
                                           empty if head_b is None else head_b, max_rows, parts)
    return out, h_n, (c_n if family in CELL_STATE_FAMILIES else None)


def stack_sample(family: str, weights: list[Tensor], biases: list[Tensor], table: Tensor, projected: bool,
                 h: Tensor, c: Tensor | None, head: tuple[Tensor, Tensor | None], logits: Tensor,
                 noise: Tensor | None, draws: int, temperature: float = 1.0, banned: Tensor | None = None,
                 stop_id: int | None = None, done: Tensor | None = None, step_after_last: bool = True,
                 top_k: int = 0, top_p: float = 1.0,
                 *, max_rows: int, parts: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Generation's token loop, ``draws`` tokens in one native call: draw one token per row from ``logits`` (B, V)
    (``noise[i]`` (B, V) standard Gumbel noise added to logits / temperature over what ``top_k`` and ``top_p`` keep,
    as :func:`gumbel_argmax` and ``rnnkit.generation.sampling.choose_next``, or the argmax with ``noise`` None; never
    an id of ``banned``, int64), look up its row of ``table`` (with ``projected`` the first layer's input term per
    token, (V_in, G·H); else the embedding, (V_in, D)), run one step of the stack (:func:`stack_step`) and ``head``,
    and again; after the last draw the stack steps only with ``step_after_last``. A row that draws ``stop_id`` is
    marked in ``done`` (B,) bool, in place, and the loop ends once all are. ``family``, ``max_rows`` and ``parts`` as
    :func:`stack_step`'s. Returns (ids (m, B) of the m <= draws tokens drawn, the logits after the last step, h_n,
    c_n or None)."""
    empty = _empty(h.device)
    head_w, head_b = head
    ids, logits, h_n, c_n = extension().stack_sample(
        family, weights, biases, table, projected, h, empty if c is None else c, head_w,
        empty if head_b is None else head_b, logits, empty if noise is None else noise, draws, temperature, top_k,
        top_p, empty if banned is None else banned, -1 if stop_id is None else stop_id,
        empty if done is None else done, step_after_last, max_rows, parts)
    return ids, logits, h_n, (c_n if family in CELL_STATE_FAMILIES else None)


def _empty(device) -> Tensor:
    """An empty tensor on ``device`` (cached): "none" for a native call's optional tensor argument."""
    empty = _EMPTY.get(device)
    if empty is None:
        empty = _EMPTY[device] = torch.empty(0, device=device)
    return empty


_EMPTY: dict = {}


def run_sequence(cell: Cell, px: Tensor, state: State, valid: Tensor | None, all_states: bool = True):
    """The loop of ``cell`` over ``px`` (T, B, G), from ``state``, natively; None when it does not apply.

    ``valid`` (T, B) bool marks real steps (None: all). Returns (outputs (B, T, O), final state, carried states): the
    carried states stack every field as (B, T, ...) (a padded step carries the previous one); None without
    ``all_states`` (a family whose kernel does not keep them then builds only the final state)."""
    if not applies(cell, px):
        return None
    run = _FAMILIES[cell.kernel_family]
    mixed = torch.is_autocast_enabled("cpu")
    # step-major and contiguous in one copy; under autocast the state is float32 (see applies), the products' dtype
    # is the kernels' own choice (bf16_products)
    px = (px.to(torch.float32, memory_format=torch.contiguous_format) if mixed else px).contiguous()
    mask = torch.empty(0, dtype=px.dtype) if valid is None else valid.to(px.dtype).contiguous()
    fields = [t.to(px.dtype).contiguous() for t in state_tensors(state)]
    with torch.autocast("cpu", enabled=False) if mixed else contextlib.nullcontext():
        ran = run(px, fields, mask, cell.kernel_arguments(), mixed and bf16_products(), all_states)
    if ran is None:  # the family's kernel declined this input
        return None
    ys, carried = ran
    final = state_from_tensors(state, [c[-1] for c in carried])
    states = state_from_tensors(state, [c.transpose(0, 1) for c in carried]) if all_states else None
    # the kernels write ys batch-major in memory, as the loop's outputs: dropout on them then draws its mask in the
    # same order
    return ys, final, states


def _none(t: Tensor | None, like: Tensor) -> Tensor:
    return torch.empty(0, dtype=like.dtype) if t is None else t


def _grad(g: Tensor | None) -> Tensor:
    """An output's gradient for the kernels: contiguous, or an empty tensor (read as zeros) when autograd passes None
    (the output was not used; the Functions do not have autograd fill zeros)."""
    return _EMPTY_GRAD if g is None else g.contiguous()


_EMPTY_GRAD = torch.empty(0)


class _LSTMSequence(torch.autograd.Function):
    """LSTM family (with or without peepholes): kernels.cpp ``lstm_forward`` / ``lstm_backward``."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, px, w_hh, peep, h0, c0, mask, low):
        ys, hs, cs, c_new, tanh_c, gates = extension().lstm_forward(px, w_hh, peep, h0, c0, mask, low)
        ctx.save_for_backward(w_hh, peep, mask, hs, cs, c_new, tanh_c, gates)
        ctx.set_materialize_grads(False)  # an unused output's gradient comes as None: read as zeros
        ctx.low = low
        return ys, hs[1:], cs[1:]

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, dys, dhs, dcs):
        w_hh, peep, mask, hs, cs, c_new, tanh_c, gates = ctx.saved_tensors
        dpx, dw, dpeep, dh0, dc0 = extension().lstm_backward(
            _grad(dys), _grad(dhs), _grad(dcs), w_hh, peep, mask, hs, cs, c_new, tanh_c, gates,
            ctx.low)
        return dpx, dw, (dpeep if peep.numel() else None), dh0, dc0, None, None


class _GatedSequence(torch.autograd.Function):
    """Gated-update family (Cho's GRU, MUT1-3): kernels.cpp ``gated_forward`` / ``gated_backward``."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, px, w_h, w_t, w_c, h0, mask, spec, low):
        ys, hs, gates, rh, th = extension().gated_forward(px, w_h, w_t, w_c, h0, mask, *spec, low)
        th = _none(th, px)  # an undefined tensor comes back as None
        ctx.save_for_backward(w_h, w_t, w_c, mask, hs, gates, rh, th)
        ctx.set_materialize_grads(False)  # an unused output's gradient comes as None: read as zeros
        ctx.spec, ctx.low = spec, low
        return ys, hs[1:]

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, dys, dhs):
        w_h, w_t, w_c, mask, hs, gates, rh, th = ctx.saved_tensors
        dpx, dw_h, dw_t, dw_c, dh0 = extension().gated_backward(
            _grad(dys), _grad(dhs), w_h, w_t, w_c, mask, hs, gates, rh, th, *ctx.spec, ctx.low)
        return dpx, dw_h, (dw_t if w_t.numel() else None), dw_c, dh0, None, None, None


class _LeakySequence(torch.autograd.Function):
    """Elman family with leak rates (Elman's RNN, leaky units): kernels.cpp ``leaky_forward`` / ``leaky_backward``."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, px, w_hh, rate, h0, mask, kind, low):
        ys, hs, us = extension().leaky_forward(px, w_hh, rate, h0, mask, kind, low)
        ctx.save_for_backward(w_hh, rate, mask, hs, us)
        ctx.set_materialize_grads(False)  # an unused output's gradient comes as None: read as zeros
        ctx.kind, ctx.low = kind, low
        return ys, hs[1:]

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, dys, dhs):
        w_hh, rate, mask, hs, us = ctx.saved_tensors
        dpx, dw, drate, dh0 = extension().leaky_backward(_grad(dys), _grad(dhs), w_hh, rate, mask, hs, us,
                                                         ctx.kind, ctx.low)
        return dpx, dw, (drate if rate.numel() else None), dh0, None, None, None


class _GRUSequence(torch.autograd.Function):
    """GRU in torch's form (reset after the product): kernels.cpp ``gru_forward`` / ``gru_backward``."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, px, w_hh, b_hh, h0, mask, low):
        ys, hs, gates, ghn = extension().gru_forward(px, w_hh, b_hh, h0, mask, low)
        ctx.save_for_backward(w_hh, b_hh, mask, hs, gates, ghn)
        ctx.set_materialize_grads(False)  # an unused output's gradient comes as None: read as zeros
        ctx.low = low
        return ys, hs[1:]

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, dys, dhs):
        w_hh, b_hh, mask, hs, gates, ghn = ctx.saved_tensors
        dpx, dw, db, dh0 = extension().gru_backward(_grad(dys), _grad(dhs), w_hh, b_hh, mask, hs, gates,
                                                    ghn, ctx.low)
        return dpx, dw, (db if b_hh.numel() else None), dh0, None, None


class _DelaySequence(torch.autograd.Function):
    """Elman steps with several delay paths: kernels.cpp ``delay_forward`` / ``delay_backward``. Returns the outputs
    and every h of the history (the initial M, then one per step)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, px, w_hh, h_init, mask, delays, kind, low):
        ys, hs, us = extension().delay_forward(px, w_hh, delays, h_init, mask, kind, low)
        ctx.save_for_backward(w_hh, mask, hs, us)
        ctx.set_materialize_grads(False)  # an unused output's gradient comes as None: read as zeros
        ctx.delays, ctx.kind, ctx.low = delays, kind, low
        return ys, hs

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, dys, dhs):
        w_hh, mask, hs, us = ctx.saved_tensors
        dpx, dw, dh_init = extension().delay_backward(_grad(dys), _grad(dhs), w_hh, ctx.delays, mask, hs,
                                                      us, ctx.kind, ctx.low)
        return dpx, dw, dh_init, None, None, None, None


class _JordanSequence(torch.autograd.Function):
    """Jordan network: kernels.cpp ``jordan_forward`` / ``jordan_backward``."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, px, w_hh, w_hy, b_hy, y0, mask, kinds, low):
        ys, carried, hs, zs = extension().jordan_forward(px, w_hh, w_hy, b_hy, y0, mask, *kinds, low)
        ctx.save_for_backward(w_hh, w_hy, b_hy, mask, carried, hs, zs)
        ctx.set_materialize_grads(False)  # an unused output's gradient comes as None: read as zeros
        ctx.kinds, ctx.low = kinds, low
        return ys, carried[1:]

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, dys, dcs):
        w_hh, w_hy, b_hy, mask, carried, hs, zs = ctx.saved_tensors
        dpx, dw_hh, dw_hy, db, dy0 = extension().jordan_backward(_grad(dys), _grad(dcs), w_hh, w_hy, b_hy,
                                                                 mask, carried, hs, zs, *ctx.kinds, ctx.low)
        return dpx, dw_hh, dw_hy, (db if b_hy.numel() else None), dy0, None, None, None


ACTIVATIONS = {"tanh": 0, "relu": 1, "sigmoid": 2, "identity": 3}


def _run_lstm(px: Tensor, state: list[Tensor], mask: Tensor, args: dict, low: bool, all_states: bool):
    peep = _none(args.get("peepholes"), px)
    ys, hs, cs = _LSTMSequence.apply(px, args["weight_hh"], peep, state[0], state[1], mask, low)
    return ys, [hs, cs]


def _run_gated(px: Tensor, state: list[Tensor], mask: Tensor, args: dict, low: bool, all_states: bool):
    spec = (args["z_block"], args["h_col"], args["z_keeps"])
    ys, hs = _GatedSequence.apply(px, args["weight_h"], _none(args.get("weight_t"), px), args["weight_c"],
                                  state[0], mask, spec, low)
    return ys, [hs]


def _run_leaky(px: Tensor, state: list[Tensor], mask: Tensor, args: dict, low: bool, all_states: bool):
    rate = _none(args.get("rate"), px)
    kind = ACTIVATIONS[args["activation"]]
    ys, hs = _LeakySequence.apply(px, args["weight_hh"], rate, state[0], mask, kind, low)
    return ys, [hs]


def _run_gru(px: Tensor, state: list[Tensor], mask: Tensor, args: dict, low: bool, all_states: bool):
    ys, hs = _GRUSequence.apply(px, args["weight_hh"], _none(args.get("bias_hh"), px), state[0], mask, low)
    return ys, [hs]


def _run_delay(px: Tensor, state: list[Tensor], mask: Tensor, args: dict, low: bool, all_states: bool):
    """State (h_{t-1} (B, H), past (B, M-1, H) = h_{t-2} ... h_{t-M}). The kernel keeps the whole history; each
    row's states are read up to its last real step (padding is at the end of a row, as rnnkit's lengths make it)."""
    h, past = state
    T, B = px.shape[:2]
    M = past.shape[1] + 1
    steps = torch.arange(T, device=px.device)
    if mask.numel():
        ends = mask.sum(0).long()  # real steps per row
        if not torch.equal(mask.bool(), steps[:, None] < ends):
            return None  # a gap inside a row: the loop's rule (the state waits) is not a shifted history
    else:
        ends = torch.full((B,), T, device=px.device)
    h_init = torch.cat([past.flip(1).transpose(0, 1), h[None]]).contiguous()  # (M, B, H): h_{-M+1} ... h_0
    ys, hs = _DelaySequence.apply(px, args["weight_hh"], h_init, mask, list(args["delays"]),
                                  ACTIVATIONS[args["activation"]], low)
    # h_t's entry, held after a row ends: (T, B) for every step's state, else (1, B) for the final one only (every
    # step's history is M - 1 gathers of the whole output, and their gradients)
    position = M - 1 + torch.minimum(steps[:, None] + 1, ends[None])
    if not all_states:
        position = position[-1:]
    rows = torch.arange(B, device=px.device)[None]
    carried_h = hs[position, rows]
    carried_past = torch.stack([hs[position - j, rows] for j in range(1, M)], 2) if M > 1 else \
        past.new_zeros(len(position), B, 0, past.shape[-1])
    return ys, [carried_h, carried_past]


def _run_jordan(px: Tensor, state: list[Tensor], mask: Tensor, args: dict, low: bool, all_states: bool):
    kinds = (ACTIVATIONS[args["hidden_activation"]], ACTIVATIONS[args["output_activation"]])
    ys, carried = _JordanSequence.apply(px, args["weight_hh"], args["weight_hy"], _none(args.get("bias_hy"), px),
                                        state[0], mask, kinds, low)
    return ys, [carried]


#: families whose kernel here trains faster than torch's own fused kernel for the same cell on the CPU, so the
#: sequence layer runs them instead (benchmarks/bench_cells.py, docs/benchmarks.md); torch's LSTM (oneDNN) stays
FASTER_THAN_TORCH = frozenset({"gru", "leaky"})
#: of those, the families whose single steps of a few rows (generation) run faster here than in torch's one-step
#: kernels: the GRU (its cell makes two products per layer at one row, in ATen's slow matrix-vector route); not the
#: Elman cell, whose smaller step torch runs faster than rnnkit's loop gets there (``python
#: benchmarks/bench_generation.py --cells gru rnn --compare-steps``)
STEPS_FASTER_THAN_TORCH = frozenset({"gru"})

# family -> runner(px (T, B, G), state fields, mask, kernel arguments, bf16 products, all_states) -> (ys, carried),
# carried: each state field at every step (T, B, ...) (kernels that keep them anyway), or with all_states False at
# least the last one; None where the kernel declines the input
_FAMILIES = {"lstm": _run_lstm, "gated": _run_gated, "leaky": _run_leaky, "gru": _run_gru, "delay": _run_delay,
             "jordan": _run_jordan}
FAMILIES = tuple(_FAMILIES)


def masked_states(states: State, valid: Tensor | None) -> State:
    """Carried states → the states ``return_states`` reports: zero at padded steps (valid (T, B) → (B, T))."""
    if valid is None:
        return states
    keep = valid.t()
    return map_state(lambda s: s.masked_fill(~keep.view(*keep.shape, *([1] * (s.dim() - 2))), 0.0), states)
