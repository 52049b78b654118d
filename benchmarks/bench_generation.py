"""Generation speed of a character language model (embedding 128 → LSTM 2x512 → 65-way output, the
tinyshakespeare model) with :func:`rnnkit.generation.generate`: characters per second at batch 1 and batch 64,
and the time per token around step 10 and around step 10,000 (flat: the state is carried, the prefix is never
re-read). References, same process, same weights: ``nn.LSTM`` called one token at a time (the loop a plain
PyTorch script writes) and two ``nn.LSTMCell`` stepped by hand (the faster cell-style script).

Usage: ``python benchmarks/bench_generation.py``
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import torch
from bench_cells import _maybe_reexec, timed
from torch import nn


def plain_generate(emb, lstm, head, first: torch.Tensor, n: int) -> None:
    """The usual script: nn.LSTM stepped one token at a time, multinomial sampling."""
    x, state = first.view(-1, 1), None
    for _ in range(n):
        h, state = lstm(emb(x), state)
        x = torch.multinomial(head(h[:, -1]).softmax(-1), 1)


def cell_generate(emb, cells, head, first: torch.Tensor, n: int) -> None:
    """The cell-style script: one nn.LSTMCell per layer, stepped by hand."""
    x, states = first, [None] * len(cells)
    for _ in range(n):
        h = emb(x)
        for i, cell in enumerate(cells):
            states[i] = cell(h, states[i])
            h = states[i][0]
        x = torch.multinomial(head(h).softmax(-1), 1)[:, 0]


def step_routes(model, repeats: int) -> None:
    """One step of the stack and its output layer at B rows, three ways, alternately: rnnkit's native few-row kernel
    (the weights read once per row), the native GEMM route (each layer's product in row blocks, one per thread, then
    the gate math in one pass) and the same blocked products through torch with torch's gate math (the route before
    the native one). Where the first two cross sets ``rnnkit.native.steps.NATIVE_STEP_MAX_ROWS``."""
    from unittest import mock

    from rnnkit.native import steps as native_steps

    fused = model.rnn._fused_steps
    fused.prepare(model.rnn.cells)
    table, head = model.input_table(), model.head
    routes = {"few-row kernel": lambda: mock.patch.object(native_steps, "NATIVE_STEP_MAX_ROWS", 1 << 30),
              "GEMM in row blocks, native gate math": lambda: mock.patch.object(native_steps, "NATIVE_STEP_MAX_ROWS",
                                                                                 0),
              "the same products through torch, torch's gate math": lambda: torch_route()}

    @contextlib.contextmanager
    def torch_route():
        with mock.patch.object(native_steps.FusedSteps, "native", property(lambda self: False)), \
                mock.patch.object(native_steps, "NATIVE_STEP_MAX_ROWS", 0):
            yield
    print("\n| rows | " + " | ".join(f"{name} (µs per step)" for name in routes) + " |")
    print("|---:|" + "---:|" * len(routes))
    for rows in (1, 2, 4, 8, 12, 16, 24, 32, 64):
        x = table[torch.zeros(rows, dtype=torch.long)]
        h, c = torch.zeros(2, rows, 512), torch.zeros(2, rows, 512)
        times = {name: [] for name in routes}
        for _ in range(repeats):
            for name, route in routes.items():
                with route():
                    times[name].append(timed(lambda: [fused.step_stack(x, (h, c), projected=True, head=head)
                                                      for _ in range(20)], 1) / 20)
        print(f"| {rows} | " + " | ".join(f"{statistics.median(t) * 1e6:,.0f}" for t in times.values()) + " |",
              flush=True)


def cell_table(cells: list[str], tokens: int, repeats: int, compare_steps: bool = False, batch: int = 1,
               precisions: tuple[str, ...] = ("fp32",)) -> None:
    """generate at ``batch`` rows from a 2x512 language model of each cell (vocabulary 65, embedding 128), one run of
    each in turn per round and, in each, under each of ``precisions``' autocast (bf16: as asked, whatever the CPU
    reports): chars/s (all rows), median over the rounds. With ``compare_steps``, the cells of families that run
    rnnkit's kernels in training instead of torch's (native.FASTER_THAN_TORCH) also with their single steps forced
    into rnnkit's kernel and into torch's one-step kernels (native.STEPS_FASTER_THAN_TORCH), and the cells of a
    native stack step also without it (their route before it: layer by layer, a Python call per token; the LSTM's
    torch operations)."""
    from unittest import mock

    from rnnkit import native
    from rnnkit.generation import generate
    from rnnkit.models import LanguageModel
    from rnnkit.native.steps import FusedSteps
    from rnnkit.precision import autocast, cpu_bf16_flags, cpu_model

    print(f"{cpu_model()}; bf16 features: {', '.join(cpu_bf16_flags()) or 'none'}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; native kernels {native.status()}\n")
    models = {}
    for cell in cells:
        torch.manual_seed(0)
        models[cell] = LanguageModel(65, 128, 512, 2, cell=cell).eval()
    prompt = torch.tensor([0])
    no_stack = "without the native stack step"
    routes = {"as dispatched": None}
    if compare_steps:
        routes.update({"steps in rnnkit's kernel": native.FASTER_THAN_TORCH,
                       "steps in torch's one-step kernels": frozenset(), no_stack: no_stack})

    def route_scope(route, families):
        if families is None:
            return contextlib.nullcontext()
        if families == no_stack:  # the GRU before its stack step (layer by layer); the LSTM's torch operations
            scope = contextlib.ExitStack()
            scope.enter_context(mock.patch.object(FusedSteps, "native", property(lambda self: False)))
            scope.enter_context(mock.patch.object(FusedSteps, "covers",
                                                  lambda self, cells, cuda: self.family == "lstm"))
            return scope
        return mock.patch.object(native, "STEPS_FASTER_THAN_TORCH", families)

    def applies(model, families) -> bool:
        if families == no_stack:
            return model.rnn._fused_steps_apply
        return families is None or model.rnn.cells[0].kernel_family in native.FASTER_THAN_TORCH

    columns = [(route, precision) for route in routes for precision in precisions]
    times = {(cell, column): [] for cell in cells for column in columns}
    for _ in range(repeats):
        for cell, model in models.items():
            for route, precision in columns:
                if not applies(model, routes[route]):
                    continue
                with route_scope(route, routes[route]), autocast(precision, "cpu"):
                    times[cell, (route, precision)].append(
                        timed(lambda m=model: generate(m, prompt, tokens, num_samples=batch), 1))
    print(f"| cell (2x512, batch {batch}) | "
          + " | ".join(f"generate, {route}, {precision} (chars/s)" for route, precision in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for cell in cells:
        cols = [times[cell, column] for column in columns]
        print(f"| {cell} | " + " | ".join(f"{batch * tokens / statistics.median(ts):,.0f}" if ts else ""
                                           for ts in cols) + " |")


@torch.no_grad()
def main() -> None:
    from rnnkit.generation import generate
    from rnnkit.models import LanguageModel

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=500, help="characters per timed run (per row)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    p.add_argument("--long", type=int, default=10_000, help="step at which the late window is timed")
    p.add_argument("--no-malloc-tuning", action="store_true")
    p.add_argument("--cells", nargs="*", default=None,
                   help="only time generate at batch 1 (or at each of --batches, when given) for language models of "
                        "these cells (e.g. lstm gru gru-cho mut1 peephole-lstm rnn), in turn, and stop")
    p.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32"],
                   help="with --cells: generate under each of these autocasts in turn (bf16 as asked, whatever the "
                        "CPU reports)")
    p.add_argument("--compare-steps", action="store_true",
                   help="with --cells: also time the cells that torch has kernels for (GRU, Elman) with their single "
                        "steps in rnnkit's kernel and in torch's one-step kernels")
    args = p.parse_args()
    if args.cells:
        for batch in args.batches if "--batches" in sys.argv else [1]:
            cell_table(args.cells, args.tokens, args.repeats, args.compare_steps, batch, tuple(args.precisions))
        return

    torch.manual_seed(0)
    V = 65
    model = LanguageModel(V, 128, 512, 2, cell="lstm").eval()
    lstm = nn.LSTM(128, 512, num_layers=2, batch_first=True).eval()
    for (_, dst), src in zip(lstm.named_parameters(), [w for c in model.rnn.cells for w in c.native_weights()]):
        dst.copy_(src)
    cells = [nn.LSTMCell(128 if i == 0 else 512, 512).eval() for i in range(2)]
    for cell, ours_cell in zip(cells, model.rnn.cells):
        for dst, src in zip(cell.parameters(), ours_cell.native_weights()):
            dst.copy_(src)
    prompt = torch.tensor([0])

    from rnnkit import native
    from rnnkit.precision import cpu_model

    print(f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; native kernels "
          f"{native.status()}\n")
    from rnnkit.layers import sequence

    def stepped_by_torch_kernel(batch):  # beyond 4 rows, each step through torch's sequence kernel (the old route)
        limit, sequence.FUSED_STEP_MAX_BATCH = sequence.FUSED_STEP_MAX_BATCH, 4
        try:
            generate(model, prompt, args.tokens, num_samples=batch)
        finally:
            sequence.FUSED_STEP_MAX_BATCH = limit

    print("| batch | rnnkit generate (chars/s) | the same, steps of > 4 rows through torch's sequence kernel | "
          "nn.LSTM stepped (chars/s) | nn.LSTMCell stepped (chars/s) |")
    print("|---:|---:|---:|---:|---:|")
    for batch in args.batches:
        first = torch.zeros(batch, dtype=torch.long)
        speeds = []
        for fn in (lambda b=batch: generate(model, prompt, args.tokens, num_samples=b),
                   lambda b=batch: stepped_by_torch_kernel(b),
                   lambda: plain_generate(model.embedding, lstm, model.head, first, args.tokens),
                   lambda: cell_generate(model.embedding, cells, model.head, first, args.tokens)):
            speeds.append(batch * args.tokens / timed(fn, args.repeats))
        print(f"| {batch} | " + " | ".join(f"{v:,.0f}" for v in speeds) + " |", flush=True)

    if native.extension() is not None:
        step_routes(model, args.repeats)

    # where the batch-1 speed comes from: the same generate() with parts of the fast path switched off
    from rnnkit.models import language_model

    class ForwardOnly(nn.Module):  # a model without .step: generate() feeds (B, 1) ids through forward
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *a, **k):
            return self.inner(*a, **k)

        def select_state(self, state, index):
            return self.inner.select_state(state, index)

    from rnnkit.precision import autocast

    def loop_steps():  # the same generate() with rnnkit's native step kernel off (torch's batched products)
        with native.python_loop():
            generate(model, prompt, args.tokens)

    def bf16_steps():
        with autocast("bf16", "cpu"):
            generate(model, prompt, args.tokens)

    from rnnkit.precision import precision_scope, resolve

    auto = resolve("auto", torch.device("cpu"), step_batch=1, step_kernel=model.rnn.native_stack_steps())
    print(f"precision auto at batch 1 on this machine: {auto[0]} ({auto[1]})\n")

    def auto_steps():  # what `rnnkit generate --precision auto` runs for one sample
        with precision_scope("auto", "cpu", step_batch=1, step_kernel=model.rnn.native_stack_steps()):
            generate(model, prompt, args.tokens)

    from unittest import mock

    from rnnkit.generation import sampling

    def per_token():  # the same generate() without the native token loop: a Python call per token
        with mock.patch.object(sampling, "_token_loop", lambda *a: None):
            generate(model, prompt, args.tokens)

    def torch_draw():  # per token, drawing each token with torch's operations instead of the native pass
        with mock.patch.object(sampling, "_token_loop", lambda *a: None), \
                mock.patch.object(native, "gumbel_argmax", lambda *a: None):
            generate(model, prompt, args.tokens)

    def nucleus_per_token():  # top-k and top-p as before the native pass kept them: torch's operations per token
        with mock.patch.object(sampling, "_token_loop", lambda *a: None), \
                mock.patch.object(native, "gumbel_argmax", lambda *a: None):
            generate(model, prompt, args.tokens, top_k=10, top_p=0.9)

    table = language_model.INPUT_TABLE_MAX_ENTRIES
    variants = {
        "generate (LanguageModel.sampler: draw, input-table row, stack and head, up to 64 tokens per native call)":
            lambda: generate(model, prompt, args.tokens),
        "one token per call (LanguageModel.stepper: input table, stack and head in one native call; choose_next)":
            per_token,
        "the same drawing with torch's nan_to_num, + noise, argmax (no native draw)": torch_draw,
        "the same with the native step kernel off (fused weights, torch's batched products)": loop_steps,
        "the same in bf16 (weights read as bfloat16, native step kernel)": bf16_steps,
        f"the same under precision auto ({auto[0]} here)": auto_steps,
        "without the input table (embedding, then [x, h] @ [W_ih | W_hh]^T)": lambda: generate(model, prompt,
                                                                                             args.tokens),
        "through forward on (1, 1) ids (a model without .step)": lambda: generate(ForwardOnly(model), prompt,
                                                                                   args.tokens),
        "generate with top_k=10, top_p=0.9 (the token loop keeps what they keep, natively)":
            lambda: generate(model, prompt, args.tokens, top_k=10, top_p=0.9),
        "the same top-k / top-p through torch's topk, sort, softmax, cumsum, one token per call": nucleus_per_token,
    }
    print("\n| batch 1, same process, alternately | chars/s |\n|---|---:|")
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            language_model.INPUT_TABLE_MAX_ENTRIES = 0 if name.startswith("without") else table
            times[name].append(timed(fn, 1))
    language_model.INPUT_TABLE_MAX_ENTRIES = table
    for name, ts in times.items():
        print(f"| {name} | {args.tokens / statistics.median(ts):,.0f} |")

    # the floor set by reading the weights: the two layers' native steps alone, nothing else per token
    if native.extension() is not None:
        steps = model.rnn._fused_steps
        for dtype in (None, torch.bfloat16):
            with autocast("bf16" if dtype else "fp32", "cpu"):
                steps.prepare(model.rnn.cells)
                rows = model.input_table()[torch.zeros(1, dtype=torch.long)]
                state = torch.zeros(2, 1, 512)
                seconds = timed(lambda: [steps.step_stack(rows, (state, state), projected=True) for _ in range(100)],
                                args.repeats) / 100
            weights = sum(w.numel() * w.element_size() for w, *_ in steps._layers[1:]) + \
                steps._recurrent.numel() * steps._recurrent.element_size()
            print(f"\nthe two LSTM layers' steps alone ({'bf16' if dtype else 'fp32'} weights, "
                  f"{weights / 2**20:.0f} MiB read per token): {seconds * 1e6:.0f} µs per token, "
                  f"a ceiling of {1 / seconds:,.0f} chars/s")
        # the output layer at one row: inside the step kernel (its dot products) against a torch.addmm call
        steps.prepare(model.rnn.cells)
        rows, state = model.input_table()[torch.zeros(1, dtype=torch.long)], torch.zeros(2, 1, 512)
        w, b = model.head.weight, model.head.bias
        pairs = [(timed(lambda: [steps.step_stack(rows, (state, state), projected=True, head=model.head)
                                 for _ in range(100)], 1),
                  timed(lambda: [steps.step_stack(rows, (state, state), projected=True) for _ in range(100)], 1),
                  timed(lambda: [torch.addmm(b, state[1], w.t()) for _ in range(100)], 1))
                 for _ in range(args.repeats)]
        inside = statistics.median(a - n for a, n, _ in pairs) / 100
        addmm = statistics.median(t for _, _, t in pairs) / 100
        print(f"\nthe output layer (65 x 512) at one row: {inside * 1e6:.1f} µs inside the step kernel (the step "
              f"with it minus without, alternately), {addmm * 1e6:.1f} µs as a torch.addmm call")
        # one token's draw from 65 logits: choose_next through the native pass against torch's three operations
        from rnnkit.generation.sampling import GumbelNoise, choose_next

        logits = torch.randn(1, V)
        noise = GumbelNoise(logits.shape, 10**6)
        draw = [lambda: [choose_next(logits, noise=noise.next()) for _ in range(1000)]]
        pairs = []
        for _ in range(args.repeats):
            native_draw = timed(draw[0], 1)
            with mock.patch.object(native, "gumbel_argmax", lambda *a: None):
                pairs.append((native_draw, timed(draw[0], 1)))
        print(f"\none token's draw from {V} logits (choose_next): "
              f"{statistics.median(a for a, _ in pairs) * 1e3:.1f} µs through the native pass, "
              f"{statistics.median(b for _, b in pairs) * 1e3:.1f} µs through torch's nan_to_num, + noise, argmax")

    # time per token early and late in one long sample, through a wrapper that stamps each call: per token (step)
    # and per call of the native token loop (sampler, up to 64 tokens)
    stamps: list[tuple[float, int]] = []

    class Stamped(nn.Module):
        def __init__(self, inner, loop: bool):
            super().__init__()
            self.inner, self.loop = inner, loop

        def forward(self, *a, **k):  # reads the prompt
            return self.inner(*a, **k)

        def step(self, ids, state):  # every new token
            stamps.append((time.perf_counter(), 1))
            return self.inner.step(ids, state)

        def sampler(self, rows):
            run = self.inner.sampler(rows) if self.loop else None
            if run is None:
                return None

            def stamped(logits, state, draws, *a, **k):
                stamps.append((time.perf_counter(), draws))
                return run(logits, state, draws, *a, **k)
            return stamped

        def select_state(self, state, index):
            return self.inner.select_state(state, index)

    early_window, late_window = (10, 138), (args.long - 64, args.long + 64)  # the calls that start in them
    print(f"\n| batch 1, 2x512 LSTM, median ms per token | tokens {early_window[0]}-{early_window[1]} | tokens "
          f"{late_window[0]:,}-{late_window[1]:,} | late / early |\n|---|---:|---:|---:|")
    for loop, name in ((True, "native token loop"), (False, "one token per call")):
        stamps.clear()
        generate(Stamped(model, loop), prompt, args.long + 101)
        per_token, position = [], 0  # (position of a call's first token, its time per token)
        for (t0, n), (t1, _) in zip(stamps, stamps[1:]):
            per_token.append((position, (t1 - t0) / n))
            position += n
        early = statistics.median(t for p, t in per_token if early_window[0] <= p < early_window[1])
        late = statistics.median(t for p, t in per_token if late_window[0] <= p < late_window[1])
        print(f"| {name} | {early * 1e3:.3f} | {late * 1e3:.3f} | {late / early:.2f} |")


if __name__ == "__main__":
    _maybe_reexec(sys.argv)
    main()
