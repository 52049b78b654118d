"""Two versions of rnnkit's native kernels side by side in one process: src/rnnkit/native/kernels.cpp at a git
revision (A) against the working tree's (B), each built under its own name with the package's flags, their calls
alternated round by round so that both see the same machine (a shared VM's speed drifts by tens of percent between
runs, which hides a 10-20% change when two runs are compared).

Cases (generation's step kernels, 2x512 LSTM at one row, the tinyshakespeare model's shapes):

* ``lstm_step K=512 / K=1024``: one layer's step, W (2048 x K) in float32 and bfloat16;
* ``stack + head``: the native stack step (``stack_step``) for both layers and the 65-way output layer (a
  generated token's step);
* ``stack <family> B rows <dtype>``: with ``--stack-families``, a 2x512 stack step of that family (layer 0 fed its
  input term) at each of ``--stack-rows`` rows, float32 and bfloat16 weights, the weights split into one block per
  thread beyond a few rows;
* ``train <cell> BxTxH``: with ``--cells``, a forward + backward through the cell's sequence kernel.

Usage: ``python benchmarks/ab_kernels.py [--rev HEAD] [--rounds 7] [--cells gru jordan] [--stack-families gru mut1
--stack-rows 16 64]`` (the first build of a version takes about a minute)
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "src/rnnkit/native/kernels.cpp"


def build(source: bytes, build_root: Path):
    """The extension built from ``source`` under a name derived from it (cached in build_root)."""
    from torch.utils.cpp_extension import load

    from rnnkit.native import _FLAGS, _cpu_flags

    digest = hashlib.sha1(source + " ".join(_FLAGS + _cpu_flags()).encode()).hexdigest()[:12]
    directory = build_root / f"ab_{digest}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kernels.cpp").write_bytes(source)
    return load(f"ab_{digest}", [str(directory / "kernels.cpp")], extra_cflags=_FLAGS + _cpu_flags(),
                build_directory=str(directory), verbose=False)


def per_call_us(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def step_cases() -> dict:
    """name -> (function of an extension, calls per round)"""
    torch.manual_seed(0)
    cases = {}
    for K in (512, 1024):
        for dtype in (torch.float32, torch.bfloat16):
            w, x, base, c = torch.randn(2048, K).to(dtype), torch.randn(1, K), torch.randn(2048), torch.zeros(1, 512)
            cases[f"lstm_step K={K} {str(dtype)[6:]}"] = (
                lambda ext, w=w, x=x, base=base, c=c: ext.lstm_step(w, x, base, c), 200)
    for dtype in (torch.float32, torch.bfloat16):
        ws = [torch.randn(2048, 512).to(dtype), torch.randn(2048, 1024).to(dtype)]
        bs, x, h = [torch.randn(2048), torch.randn(2048)], torch.randn(1, 2048), torch.zeros(2, 1, 512)
        head_w, head_b = torch.randn(65, 512), torch.randn(65)
        cases[f"stack + head {str(dtype)[6:]}"] = (
            lambda ext, ws=ws, bs=bs, x=x, h=h, hw=head_w, hb=head_b:
                stack_step(ext, ws, bs, x, h, h, True, hw, hb), 200)
    return cases


_STACK_STEP_EXTRA: dict = {}  # extension -> the arguments its stack step takes after the first eight


def stack_step(ext, *args):
    """The LSTM stack step on ``args`` at a few rows, whichever signature the build has: ``stack_step("lstm", ...,
    max_rows, parts)`` in later builds, ``lstm_stack_step`` before (with max_rows and parts, or without them at
    first). Tried once per build: a failed call formats every tensor argument into its error message, which costs
    milliseconds."""
    if hasattr(ext, "stack_step"):
        return ext.stack_step("lstm", *args, 8, 1)
    if ext not in _STACK_STEP_EXTRA:
        try:
            ext.lstm_stack_step(*args, 8, 1)
            _STACK_STEP_EXTRA[ext] = (8, 1)
        except TypeError:
            _STACK_STEP_EXTRA[ext] = ()
    return ext.lstm_stack_step(*args, *_STACK_STEP_EXTRA[ext])


#: Per family of the native stack step: (gate blocks G of the fused weight, entries of its bias row per unit)
STACK_SHAPES = {"lstm": (4, 4), "peephole-lstm": (4, 7), "gru": (3, 6), "gru-cho": (3, 3), "mut1": (3, 3),
                "mut2": (3, 3), "mut3": (3, 3), "rnn-tanh": (1, 1), "rnn-relu": (1, 1)}


def stack_cases(families: list[str], rows: list[int], H: int = 512) -> dict:
    """A two-layer stack step of each family at each row count (``stack_step(family, ...)``; layer 0 reads its
    input term), in float32 and with bfloat16 weights."""
    torch.manual_seed(0)
    cases = {}
    for family in families:
        G, entries = STACK_SHAPES[family]
        for B in rows:
            for dtype in (torch.float32, torch.bfloat16):
                ws = [(torch.randn(G * H, H) * 0.05).to(dtype), (torch.randn(G * H, 2 * H) * 0.05).to(dtype)]
                bs = [torch.randn(entries * H) * 0.1 for _ in range(2)]
                x, h = torch.randn(B, G * H), torch.zeros(2, B, H)
                c = torch.zeros(2, B, H) if G == 4 else torch.empty(0)
                cases[f"stack {family} {B} rows {str(dtype)[6:]}"] = (
                    lambda ext, ws=ws, bs=bs, x=x, h=h, c=c, family=family:
                        ext.stack_step(family, ws, bs, x, h, c, True, torch.empty(0), torch.empty(0), 8,
                                       torch.get_num_threads()), 50 if B > 8 else 200)
    return cases


def training_cases(cells: list[str], shape: str) -> dict:
    """A forward + backward of each cell's native sequence kernel, through rnnkit.native with its extension
    swapped for the version under test."""
    from rnnkit import RNN, native

    B, T, H = map(int, shape.split("x"))
    extra = {"jordan": {"output_size": H}, "delay": {"delays": (1, 2, 4)}, "leaky": {"tau": (1.0, 100.0)}}
    x = torch.randn(B, T, H)
    cases = {}
    for name in cells:
        layer = RNN(H, H, cell=name, **extra.get(name, {}))

        def train(ext, layer=layer):
            saved, native._extension = native._extension, ext
            try:
                layer(x)[0].pow(2).mean().backward()
            finally:
                native._extension = saved
        cases[f"train {name} {shape}"] = (train, 3)
    return cases


def main() -> None:
    from rnnkit.precision import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", default="HEAD", help="git revision of version A")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cells", nargs="*", default=[], help="also time these cells' training kernels")
    parser.add_argument("--shape", default="32x100x256", help="BxTxH of the training cases")
    parser.add_argument("--stack-families", nargs="*", default=[], choices=sorted(STACK_SHAPES),
                        help="also time the stack step of these families (builds with stack_step(family, ...))")
    parser.add_argument("--stack-rows", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--no-lstm-steps", action="store_true", help="skip the LSTM's step cases")
    parser.add_argument("--build-root", default=str(Path.home() / ".cache" / "rnnkit-ab"))
    args = parser.parse_args()

    try:
        old = subprocess.run(["git", "show", f"{args.rev}:{SOURCE}"], cwd=ROOT, check=True, capture_output=True).stdout
    except subprocess.CalledProcessError as e:
        sys.exit(f"cannot read {SOURCE} at {args.rev!r}: {e.stderr.decode().strip()}")
    new = (ROOT / SOURCE).read_bytes()
    root = Path(args.build_root)
    print(f"building A ({args.rev}) and B (working tree); a first build takes about a minute each", flush=True)
    versions = [build(old, root), build(new, root)]
    print(f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; A = {SOURCE} at "
          f"{args.rev}, B = the working tree's; median of {args.rounds} alternated rounds\n")
    print("| case | A (µs) | B (µs) | A / B |\n|---|---:|---:|---:|")
    with torch.no_grad():
        cases = {} if args.no_lstm_steps else step_cases()
        cases.update(stack_cases(args.stack_families, args.stack_rows))
    cases.update(training_cases(args.cells, args.shape))
    for name, (fn, calls) in cases.items():
        grad = name.startswith("train ")
        with torch.set_grad_enabled(grad):
            for ext in versions:
                fn(ext)  # warm-up
            times = [[], []]
            for _ in range(args.rounds):
                for i, ext in enumerate(versions):
                    times[i].append(per_call_us(lambda: fn(ext), calls))
        a, b = statistics.median(times[0]), statistics.median(times[1])
        print(f"| {name} | {a:,.0f} | {b:,.0f} | {a / b:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
