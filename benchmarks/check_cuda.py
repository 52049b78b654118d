"""rnnkit on a CUDA GPU: every cell's CUDA path against the CPU reference, training speed against cuDNN, and
generation speed.

1. Correctness, for every registered cell: a 2-layer bidirectional ``RNN`` on a padded batch (lengths T, T − 3, 1)
   and a 1-layer one on a full batch (where a fused kernel runs), each with an initial state, run on the CPU in
   float64 and on the GPU with the same weights — outputs, final
   states, and the gradients of the input, the initial state and every parameter. Reported: the largest absolute
   difference in float64 (target ≤ 1e-10) and the largest difference relative to the tensor's scale in float32
   (cuDNN may use TF32 for float32 products: both settings are shown).
2. Training speed (forward + backward, float32) of every cell through rnnkit's sequence layer, with the matching
   torch.nn module (cuDNN for LSTM / GRU / tanh RNN) and nn.LSTM in the same run, at (B, T, H) = (32, 100, 256) and
   (64, 64, 512); GFLOP/s counts the matrix products only (as bench_cells.py).
3. Generation (2×512 LSTM, vocabulary 65): chars/s at batch 1 and 64 with :func:`rnnkit.generation.generate`,
   against nn.LSTM stepped one token at a time on the same GPU.

Usage (on a machine with a CUDA GPU): ``python benchmarks/check_cuda.py [--out DIR]``; prints Markdown tables and
writes them to ``DIR/check_cuda.md``. Exit status 1 when a float64 difference exceeds 1e-10.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
from torch import nn

#: constructor arguments the cells need beyond (input, hidden) — small, as the contract tests use
CELL_KWARGS = {"jordan": {"output_size": 5}, "delay": {"delays": (1, 3)}, "leaky": {"tau": (1.0, 8.0)},
               "ntm": {"memory_size": 6, "memory_width": 4}}
FAMILY = {"lstm": "LSTM", "peephole-lstm": "LSTM", "gru": "GRU", "gru-cho": "GRU", "mut1": "GRU", "mut2": "GRU",
          "mut3": "GRU", "rnn": "RNN", "jordan": "RNN", "leaky": "RNN", "delay": "RNN", "unitary": "RNN",
          "clockwork": "RNN", "deep-transition": "RNN"}


def run_and_grad(model, x, lengths, state0):
    """Outputs, final state tensors and gradients (input, initial state, parameters) of one loss."""
    from rnnkit.cells.base import map_state, state_tensors

    x = x.clone().requires_grad_(True)
    s0 = map_state(lambda t: t.clone().requires_grad_(True), state0)
    out, state = model(x, s0, lengths=lengths)
    finals = state_tensors(state)
    loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype, device=out.device)).pow(2).sum() + sum(
        (s * 0.5).sum() for s in finals)
    inputs = [x, *state_tensors(s0), *model.parameters()]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    grads = [torch.zeros_like(i) if g is None else g for i, g in zip(inputs, grads)]
    return [out, *finals, *grads]


def check_cell(name: str, device: torch.device, tf32: bool) -> tuple[float, float, float]:
    """(largest |Δ| in float64, largest |Δ| / scale in float32 with tf32 off, with tf32 on) over two layouts: 2
    bidirectional layers on a padded batch, and one layer on a full batch (the path a fused kernel takes)."""
    worst = [check_layout(name, device, tf32, 2, True), check_layout(name, device, tf32, 1, False)]
    return tuple(max(w[i] for w in worst) for i in range(3))


def check_layout(name: str, device: torch.device, tf32: bool, layers: int, padded: bool) -> list[float]:
    from rnnkit import RNN

    torch.manual_seed(0)
    B, T, D, H = 3, 9, 4, 5
    reference = RNN(D, H, num_layers=layers, cell=name, bidirectional=padded, **CELL_KWARGS.get(name, {})).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    lengths = torch.tensor([T, T - 3, 1]) if padded else None
    with torch.no_grad():
        _, state0 = reference(torch.randn(B, 4, D, dtype=torch.float64))
    expected = run_and_grad(reference, x, lengths, state0)

    from rnnkit.cells.base import map_state

    def on(dtype):
        model = copy.deepcopy(reference).to(device=device, dtype=dtype)
        got = run_and_grad(model, x.to(device, dtype), lengths, map_state(lambda t: t.to(device, dtype), state0))
        return got

    expected = [e.detach() for e in expected]
    d64 = max(float((g.detach().cpu() - e).abs().max()) for g, e in zip(on(torch.float64), expected))
    rel = []
    for allow in (False, tf32):
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow
        rel.append(max(float((g.detach().double().cpu() - e).abs().max() / e.abs().max().clamp_min(1e-12))
                       for g, e in zip(on(torch.float32), expected)))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = True
    return [d64, rel[0], rel[1]]


def cuda_time(fn, iters: int) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def speed_table(cells: list[str], shapes: list[str], device, repeats: int) -> list[str]:
    from rnnkit import RNN

    def step(module, x):
        return lambda: module(x)[0].pow(2).mean().backward()

    def flops(module, B, T):
        return 3 * 2 * B * T * sum(p.numel() for p in module.parameters() if p.dim() == 2)

    lines = []
    for shape in shapes:
        B, T, H = map(int, shape.split("x"))
        x = torch.randn(B, T, H, device=device)
        torch_modules = {k: m(H, H, batch_first=True).to(device) for k, m in
                         (("LSTM", nn.LSTM), ("GRU", nn.GRU), ("RNN", nn.RNN))}
        lines += [f"\n### B={B}, T={T}, D=H={H} (float32, forward + backward)\n",
                  "| cell | ms / step | tokens/s | GFLOP/s | vs torch.nn (same family) | GFLOP/s vs cuDNN LSTM |",
                  "|---|---:|---:|---:|---|---:|"]
        for name in cells:
            kwargs = {"jordan": {"output_size": H}, "delay": {"delays": (1, 2, 4)},
                      "leaky": {"tau": (1.0, 100.0)}}.get(name, {})
            ours = RNN(H, H, cell=name, **kwargs).to(device)
            ref = torch_modules[FAMILY[name]]
            lstm = torch_modules["LSTM"]
            fns = [step(m, x) for m in (ours, ref, lstm)]
            for fn in fns:
                cuda_time(fn, 2)
            iters = max(2, int(0.3 / max(cuda_time(fns[0], 1), 1e-4)))
            times: list[list[float]] = [[], [], []]
            for _ in range(repeats):
                for fn, out in zip(fns, times):
                    out.append(cuda_time(fn, iters))
            t_ours, t_ref, t_lstm = (statistics.median(t) for t in times)
            f_ours, f_lstm = flops(ours, B, T), flops(lstm, B, T)
            lines.append(f"| {name} | {t_ours * 1e3:.2f} | {B * T / t_ours:,.0f} | {f_ours / t_ours / 1e9:,.0f} | "
                         f"{t_ref / t_ours:.2f}x nn.{FAMILY[name]} | {(f_ours / t_ours) / (f_lstm / t_lstm):.2f}x |")
            print(lines[-1], flush=True)
    return lines


@torch.no_grad()
def generation_table(device, tokens: int) -> list[str]:
    from rnnkit.generation import generate
    from rnnkit.models import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(65, 128, 512, 2, cell="lstm").to(device).eval()
    lstm = nn.LSTM(128, 512, num_layers=2, batch_first=True).to(device).eval()
    prompt = torch.tensor([0])
    from rnnkit.layers import sequence

    lines = ["\n### Generation, 2×512 LSTM, vocabulary 65\n",
             "| batch | rnnkit generate (chars/s) | the same, each step through cuDNN's sequence kernel | "
             "nn.LSTM stepped (chars/s) |", "|---:|---:|---:|---:|"]
    for batch in (1, 16, 64, 256):
        def plain():
            x, state = torch.zeros(batch, 1, dtype=torch.long, device=device), None
            for _ in range(tokens):
                h, state = lstm(model.embedding(x), state)
                x = torch.multinomial(model.head(h[:, -1]).softmax(-1), 1)

        def ours(step_kernel: bool, b=batch):
            def run():
                sequence.STEP_KERNEL_ON_CUDA = step_kernel
                generate(model, prompt, tokens, num_samples=b)
            return run

        speeds = []
        for fn in (ours(True), ours(False), plain):
            fn()
            speeds.append(batch * tokens / statistics.median(cuda_time(fn, 1) for _ in range(3)))
        sequence.STEP_KERNEL_ON_CUDA = True
        lines.append(f"| {batch} | " + " | ".join(f"{v:,.0f}" for v in speeds) + " |")
        print(lines[-1], flush=True)
    return lines


def main() -> int:
    from rnnkit import CELLS

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=".")
    p.add_argument("--shapes", nargs="+", default=["32x100x256", "64x64x512"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tokens", type=int, default=300)
    p.add_argument("--sections", default="correctness,speed,generation", help="comma-separated, in this order")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("check_cuda.py needs a CUDA GPU; torch.cuda.is_available() is False here")
    device = torch.device("cuda")
    sections = args.sections.split(",")
    lines = [f"# rnnkit on {torch.cuda.get_device_name(device)} (torch {torch.__version__}, "
             f"cuDNN {torch.backends.cudnn.version()})\n"]
    worst = 0.0
    if "correctness" in sections:
        table, worst = correctness_table(device)
        lines += table
    if "speed" in sections:
        lines += speed_table(sorted(c for c in CELLS if c != "ntm"), args.shapes, device, args.repeats)
    if "generation" in sections:
        lines += generation_table(device, args.tokens)
    text = "\n".join(lines) + "\n"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "check_cuda.md").write_text(text)
    print(text)
    print(f"largest float64 difference: {worst:.1e} ({'ok' if worst <= 1e-10 else 'ABOVE 1e-10'})")
    return 0 if worst <= 1e-10 else 1


def correctness_table(device) -> tuple[list[str], float]:
    """The table of section 1 and the largest float64 difference in it."""
    from rnnkit import CELLS

    lines = ["### Correctness: CUDA vs the CPU reference (2 bidirectional layers on a padded batch and 1 layer on a "
             "full one, initial state, gradients of input, state and weights)\n",
             "| cell | max abs Δ, float64 | max rel Δ, float32 (TF32 off) | max rel Δ, float32 (cuDNN TF32 on) |",
             "|---|---:|---:|---:|"]
    worst = 0.0
    for name in sorted(CELLS):
        d64, r32, r32tf = check_cell(name, device, tf32=True)
        worst = max(worst, d64)
        lines.append(f"| {name} | {d64:.1e} | {r32:.1e} | {r32tf:.1e} |")
        print(lines[-1], flush=True)
    return lines, worst


if __name__ == "__main__":
    raise SystemExit(main())
