"""Mixed precision: autocast over a model's forward pass with fp32 master weights, fp32 optimizer state, fp32 losses
and metrics, and fp32 recurrent states between calls (``--train.precision``, :func:`precision_scope`).

* ``fp32``: nothing changes.
* ``bf16``: ``torch.autocast`` with bfloat16 — matrix products (and torch's fused LSTM / GRU / RNN kernels) in
  bf16, accumulation in fp32. On a CPU it needs AMX or AVX-512 BF16 to pay (otherwise bf16 is emulated and
  slower): without either, ``bf16`` falls back to fp32 with one line saying why.
* ``fp16``: autocast with float16 and a gradient scaler (loss scaling against underflow), for CUDA GPUs (refused
  on a CPU, whose kernels have no fp16 path).
* ``auto``: bf16 on a CUDA GPU that supports it; on a CPU, bf16 where the CPU reports AMX or AVX-512 BF16 *and* a
  short probe (a 1024² matrix product, fp32 against bf16) measures a speed-up of at least 1.15x; fp32 otherwise.

What stays fp32 under bf16 / fp16: the parameters (autocast casts a copy per call; checkpoints hold fp32 weights,
so a run resumes or evaluates in any precision), the optimizer state, the losses (torch runs cross-entropy in fp32
under autocast, and the trainer reduces every loss in fp32), the final recurrent state a layer returns (carried
between truncated-BPTT chunks and generation steps: a cell's accumulator such as the LSTM's c would otherwise be
rounded to 8 bits of mantissa at every chunk), and the uRNN's complex recurrence (torch's FFT has no bf16).
"""

from __future__ import annotations

import contextlib
import time
from functools import lru_cache

import torch

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere): benchmarks print it."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


@lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU's bf16 features from /proc/cpuinfo: ``amx_bf16`` and/or ``avx512_bf16`` (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return tuple(name for name in ("amx_bf16", "avx512_bf16") if name in flags)
    except OSError:
        pass
    return ()


@lru_cache(maxsize=4)
def probe_speedup(device_type: str = "cpu", size: int = 1024, repeats: int = 5) -> float:
    """fp32 time / bf16-autocast time of a ``size``² matrix product on this device (median of ``repeats``)."""
    device = torch.device(device_type)
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)

    def timed(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    def bf16():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return a @ b

    return timed(lambda: a @ b) / timed(bf16)


#: Generation stepping fewer rows than this at a time runs in fp32 under ``auto`` on a CPU, unless the model steps
#: through rnnkit's native step kernel (an LSTM stack) and a probe of that kernel shows a speed-up: a step is a chain
#: of matrix-vector products bound by reading the weights, where bf16 through torch's products is slower than fp32
#: (batch 1 on an Intel Xeon with AMX: 0.42x; 0.27x on an AMD EPYC), while the native kernel reads bf16 weights
#: directly (half the bytes; ``benchmarks/bench_generation.py``, docs/training.md); at batch 64 bf16 is 1.3-1.4x
#: faster.
CPU_BF16_MIN_STEP_BATCH = 8


def step_linear(linear: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``linear(x)`` for a generation step's output layer: under CPU autocast, a step of fewer than
    :data:`CPU_BF16_MIN_STEP_BATCH` rows in float32 on the float32 weights (a bf16 product of one row converts the
    weight at every call and is slower than the fp32 one; float32 logits are also the more exact)."""
    if x.device.type == "cpu" and x.shape[0] < CPU_BF16_MIN_STEP_BATCH and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return torch.nn.functional.linear(x.float(), linear.weight.float(),
                                              None if linear.bias is None else linear.bias.float())
    return linear(x)


@lru_cache(maxsize=1)
def probe_step_speedup(hidden: int = 512, repeats: int = 5) -> float | None:
    """fp32 time / bf16 time of one row through rnnkit's native LSTM step kernel on a layer's fused weight
    (4·hidden, 2·hidden), the generation step's matrix-vector product: there bf16 halves the bytes read per token (the
    sums stay float32). None without the kernel."""
    from . import native

    if native.extension() is None:
        return None
    weight = torch.randn(4 * hidden, 2 * hidden) * 0.05
    v, base, c = torch.randn(1, 2 * hidden), torch.zeros(4 * hidden), torch.zeros(1, hidden)

    def seconds(w: torch.Tensor) -> float:
        native.lstm_step(w, v, base, c)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(20):
                native.lstm_step(w, v, base, c)
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    return seconds(weight) / seconds(weight.bfloat16())


def resolve(precision: str, device: torch.device, step_batch: int | None = None,
            step_kernel: bool = False) -> tuple[str, str]:
    """(the precision that will run, why) for ``precision`` on ``device``. ``step_batch``: the rows a generation
    step carries (``auto`` on a CPU keeps fp32 below :data:`CPU_BF16_MIN_STEP_BATCH`, unless ``step_kernel``: the
    model steps through rnnkit's native step kernel, which reads bf16 weights directly, and a probe of it shows a
    speed-up)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    device = torch.device(device)
    if precision == "fp32":
        return "fp32", "as asked"
    if device.type == "cuda":
        if precision == "fp16":
            return "fp16", "as asked (with a gradient scaler)"
        if torch.cuda.is_bf16_supported():
            return "bf16", "as asked" if precision == "bf16" else "auto: the GPU supports bf16"
        return "fp32", "this GPU does not support bf16"
    if precision == "fp16":
        raise ValueError("precision fp16 is for CUDA GPUs (torch's CPU kernels, oneDNN's LSTM among them, have no "
                         "fp16 path); on a CPU use bf16, or auto")
    flags = cpu_bf16_flags()
    if not flags:
        return "fp32", ("this CPU reports neither AMX nor AVX-512 BF16, where bf16 would be emulated and slower "
                        "than fp32")
    if precision == "bf16":
        return "bf16", f"as asked ({', '.join(flags)})"
    if step_batch is not None and step_batch < CPU_BF16_MIN_STEP_BATCH:
        step_speedup = probe_step_speedup() if step_kernel else None
        if step_speedup is not None and step_speedup >= 1.15:
            return "bf16", (f"auto: stepping {step_batch} row(s) at a time through rnnkit's native step kernel, which "
                            f"reads bf16 weights: a step probe ran {step_speedup:.2f}x faster in bf16")
        if step_speedup is not None:
            return "fp32", (f"auto: stepping {step_batch} row(s) at a time; rnnkit's native step kernel ran only "
                            f"{step_speedup:.2f}x faster in bf16 in a probe")
        return "fp32", (f"auto: stepping {step_batch} row(s) at a time, where bf16 matrix-vector products gain "
                        f"little or nothing over fp32 on a CPU")
    speedup = probe_speedup("cpu")
    if speedup >= 1.15:
        return "bf16", f"auto: {', '.join(flags)}, a matrix-product probe ran {speedup:.2f}x faster in bf16"
    return "fp32", f"auto: {', '.join(flags)}, but a matrix-product probe ran only {speedup:.2f}x faster in bf16"


def autocast(precision: str, device) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved ``precision`` (``fp32``: none)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[precision])


def precision_scope(precision: str, device="cpu", step_batch: int | None = None,
                    step_kernel: bool = False) -> contextlib.AbstractContextManager:
    """``with precision_scope("bf16"):`` around any rnnkit call (generation, forecasting, evaluation) runs it in
    that precision (resolved as :func:`resolve` says; ``auto`` included, ``step_batch`` and ``step_kernel`` for
    generation, e.g. ``step_kernel=model.rnn.native_stack_steps()``)."""
    return autocast(resolve(precision, torch.device(device), step_batch, step_kernel)[0], device)


def grad_scaler(precision: str, device) -> torch.amp.GradScaler:
    """Loss scaling for fp16 (disabled, a no-op, otherwise)."""
    return torch.amp.GradScaler(torch.device(device).type, enabled=precision == "fp16")


def active_dtype(device_type: str) -> torch.dtype | None:
    """The dtype of the autocast region active here for ``device_type`` (None outside one)."""
    try:
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
        return None
    except TypeError:  # torch < 2.4: per-device functions
        if device_type == "cpu":
            return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
        return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None
