"""rnnkit's native sequence kernels (rnnkit.native) against rnnkit's Python loop, which runs each cell's ``step``
(itself tested against the notes' equations in tests/cells): outputs, final states, every state (return_states) and
every gradient, with padded batches, reversal, stacked bidirectional layers and initial states; gradcheck through
the kernels; and the switches that choose the path."""

import pytest
import torch

from rnnkit import RNN, Recurrent, build_cell, native
from rnnkit.cells.base import map_state, state_tensors
from rnnkit.registry import CELLS

from ..conftest import cell_kwargs

NATIVE_CELLS = sorted(n for n in CELLS if build_cell(n, 4, 4, **cell_kwargs(n)).kernel_family is not None)

needs_kernels = pytest.mark.skipif(native.extension() is None, reason=f"native kernels {native.status()}")


def test_families_declared():
    """The cells torch has no kernel for declare a family; every declared family exists."""
    expected = {"peephole-lstm", "gru-cho", "mut1", "mut2", "mut3", "lstm", "rnn", "leaky", "gru", "delay", "jordan"}
    assert expected <= set(NATIVE_CELLS)
    for name in NATIVE_CELLS:
        assert build_cell(name, 4, 4, **cell_kwargs(name)).kernel_family in native.FAMILIES
    assert build_cell("lstm", 4, 6, proj_size=3).kernel_family is None  # no projection in the kernel


def _run_both(rnn, x, state, lengths, return_states=True):
    """Outputs, final state, all states (with ``return_states``) and all gradients, natively and on the Python
    loop."""
    def run():
        if return_states:
            out, final, states = rnn(x, state, lengths=lengths, return_states=True)
        else:
            (out, final), states = rnn(x, state, lengths=lengths), ()
        weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
        loss = (out * weights).sum() + sum((t ** 2).sum() for t in state_tensors(final))
        loss = loss + sum((0.7 * t).sum() for t in state_tensors(states))
        inputs = [x, *state_tensors(state), *rnn.parameters()]
        return [out, *state_tensors(final), *state_tensors(states), *torch.autograd.grad(loss, inputs)]

    fast = run()
    with native.python_loop():
        reference = run()
    return fast, reference


@needs_kernels
@pytest.mark.parametrize("name", NATIVE_CELLS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
@pytest.mark.parametrize("return_states", [True, False])
def test_native_equals_python_loop(name, dtype, tol, return_states):
    """float32: the products sum in another order; a Jordan net's output passes two products a step, 1e-4. Without
    return_states a kernel may build only the final state (the delay family does)."""
    if dtype == torch.float32 and name == "jordan":
        tol = 1e-4
    rnn = RNN(6, 5, num_layers=2, cell=name, bidirectional=True, use_native=False, **cell_kwargs(name)).to(dtype)
    with torch.no_grad():
        for p in rnn.parameters():
            p.normal_(0, 0.5)
    x = torch.randn(4, 7, 6, dtype=dtype, requires_grad=True)
    state = map_state(lambda t: torch.randn_like(t).requires_grad_(), rnn.initial_state(4, dtype=dtype))
    for lengths in (None, torch.tensor([7, 3, 1, 5])):
        fast, reference = _run_both(rnn, x, state, lengths, return_states)
        assert len(fast) == len(reference)
        for a, b in zip(fast, reference):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@needs_kernels
@pytest.mark.parametrize("name", NATIVE_CELLS)
@pytest.mark.parametrize("rows", [1, 3, 6])
def test_float32_products_at_few_and_many_rows(name, rows):
    """In float32 a kernel's per-step products take dot products over the weight's rows up to
    native.DOT_MAX_ROWS rows (the forward passes: generation steps), MKL's packed GEMM beyond: both give the
    Python loop's outputs, states and gradients, for one step and for seven."""
    rnn = RNN(6, 5, num_layers=2, cell=name, use_native=False, **cell_kwargs(name))
    with torch.no_grad():
        for p in rnn.parameters():
            p.normal_(0, 0.5)
    tol = 1e-4  # float32 sums in another order, through two layers
    for steps in (1, 7):
        x = torch.randn(rows, steps, 6, requires_grad=True)
        state = map_state(lambda t: torch.randn_like(t).requires_grad_(), rnn.initial_state(rows))
        fast, reference = _run_both(rnn, x, state, None, False)
        for a, b in zip(fast, reference, strict=True):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@needs_kernels
@pytest.mark.parametrize("rows", [(1,), (3,), (2, 2), (1, 1, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_native_linear_equals_f_linear_at_few_rows(rows, bias):
    """rnnkit.native.linear (a generation step's input projections) is F.linear for at most DOT_MAX_ROWS rows in
    float32 without autograd, on a weight that is a row slice of a wider one too; it declines (None) otherwise."""
    torch.manual_seed(0)
    wide = torch.randn(37, 20)
    weight, b = wide[:, 3:16], torch.randn(37) if bias else None  # rows of stride 20
    x = torch.randn(*rows, 13)
    with torch.no_grad():
        torch.testing.assert_close(native.linear(x, weight, b), torch.nn.functional.linear(x, weight, b),
                                   rtol=1e-6, atol=1e-5)
        assert native.linear(torch.randn(native.DOT_MAX_ROWS + 1, 13), weight, b) is None  # a GEMM's work
        assert native.linear(x.double(), weight.double()) is None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert native.linear(x, weight, b) is None
    assert native.linear(x.requires_grad_(), weight, b) is None  # autograd: torch's product and its backward


@needs_kernels
@pytest.mark.parametrize("name", NATIVE_CELLS)
def test_saturated_gates_stay_finite(name):
    """Pre-activations far past where exp overflows (|a| ~ 1e3): every gate saturates as torch's tanh and sigmoid
    do, no NaN (the kernels' exponentials are clamped below overflow), in the sequence kernels and the generation
    step."""
    torch.manual_seed(0)
    rnn = RNN(4, 6, cell=name, **cell_kwargs(name))
    with torch.no_grad():
        for p in rnn.parameters():
            p.normal_(0, 300.0)
    x = torch.randn(3, 9, 4) * 10
    out, final = rnn(x)
    with native.python_loop():
        ref, ref_final = rnn(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    for a, b in zip(state_tensors(final), state_tensors(ref_final)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    if name == "lstm":
        H, K = 20, 7
        weight, inputs = torch.randn(4 * H, K) * 300, torch.randn(2, K)
        base, c_prev = torch.randn(4 * H) * 300, torch.randn(2, H) * 100
        h, c = native.lstm_step(weight, inputs, base, c_prev)
        h_ref, c_ref = _lstm_step_by_hand(weight, inputs, base, c_prev)
        torch.testing.assert_close(h.double(), h_ref, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(c.double(), c_ref, rtol=1e-4, atol=1e-3)


@needs_kernels
@pytest.mark.parametrize("options", [{"learn_tau": True, "tau": (1.0, 6.0)}, {"nonlinearity": "sigmoid", "tau": 3.0},
                                     {"nonlinearity": "relu", "tau": 2.0}])
def test_leaky_options_native_equals_python_loop(options):
    """Learned time constants (∂L/∂τ through the rate), and each activation of the leaky family."""
    rnn = RNN(3, 6, cell="leaky", bidirectional=True, **options).double()
    x = torch.randn(3, 5, 3, dtype=torch.float64, requires_grad=True)
    state = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    fast, reference = _run_both(rnn, x, state, torch.tensor([5, 2, 4]))
    for a, b in zip(fast, reference):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@needs_kernels
@pytest.mark.parametrize("name", NATIVE_CELLS)
def test_gradcheck_through_kernel(name):
    cell = build_cell(name, 3, 4, **cell_kwargs(name)).double()
    layer = Recurrent(cell, reverse=True)
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    h0 = map_state(lambda t: (0.5 * torch.randn_like(t)).requires_grad_(), cell.initial_state(2, dtype=torch.float64))
    params = list(cell.parameters())

    def f(x, *rest):
        state = type(h0)(*rest[:len(state_tensors(h0))]) if isinstance(h0, tuple) else rest[0]
        out, final = layer(x, state, lengths=[5, 2])
        return out, *state_tensors(final)

    assert native.applies(cell, torch.empty(1, 1, 1, dtype=torch.float64))
    assert torch.autograd.gradcheck(f, (x, *state_tensors(h0)), eps=1e-6, atol=1e-7)
    # the weights' gradients: one product over all steps after the loop
    out, _ = layer(x, h0)
    grads = torch.autograd.grad(out.pow(2).sum(), params)
    with native.python_loop():
        out_ref, _ = layer(x, h0)
        grads_ref = torch.autograd.grad(out_ref.pow(2).sum(), params)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@needs_kernels
@pytest.mark.parametrize("name", NATIVE_CELLS)
@pytest.mark.parametrize("used", ["outputs", "final state"])
def test_gradients_when_only_some_outputs_are_used(name, used):
    """An encoder uses only its final state, a tagger only its outputs: the kernels then get no gradient (None) for
    the rest and read it as zeros (no zero tensors are filled); the gradients equal the Python loop's."""
    rnn = RNN(3, 4, cell=name, **cell_kwargs(name)).double()
    x = torch.randn(3, 6, 3, dtype=torch.float64, requires_grad=True)

    def grads():
        out, final = rnn(x, lengths=torch.tensor([6, 2, 4]))
        loss = out.pow(2).sum() if used == "outputs" else sum(t.pow(2).sum() for t in state_tensors(final))
        return torch.autograd.grad(loss, [x, *rnn.parameters()])

    fast = grads()
    with native.python_loop():
        reference = grads()
    for a, b in zip(fast, reference):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@needs_kernels
def test_kernel_runs_without_autograd_and_under_autocast():
    rnn = RNN(4, 8, cell="mut2")
    x = torch.randn(3, 5, 4)
    with torch.no_grad():
        out, _ = rnn(x)
        with native.python_loop():
            ref, _ = rnn(x)
    torch.testing.assert_close(out, ref)
    cell = rnn.cells[0]
    assert native.applies(cell, torch.empty(1, 1, 1))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision: the kernel's state in float32
        assert native.applies(cell, torch.empty(1, 1, 1, dtype=torch.bfloat16))
        x_grad = x.clone().requires_grad_()
        out, _ = rnn(x_grad)
    assert out.dtype == torch.float32
    out.sum().backward()  # outside autocast, as training does
    grads = [x_grad.grad, *(p.grad for p in rnn.parameters())]
    rnn.zero_grad()
    with native.python_loop():
        x_ref = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ref, _ = rnn(x_ref)
        ref.float().sum().backward()
    torch.testing.assert_close(out, ref.float(), rtol=0.05, atol=0.02)  # the loop's products in bf16
    for a, b in zip(grads, [x_ref.grad, *(p.grad for p in rnn.parameters())]):
        torch.testing.assert_close(a, b, rtol=0.1, atol=0.05)


@needs_kernels
@pytest.mark.parametrize("name", NATIVE_CELLS)
def test_bf16_products_under_autocast(name, monkeypatch):
    """Under bf16 autocast on a CPU with AMX the kernels run their products in bf16 (the state and gate math in fp32):
    outputs and gradients of padded bidirectional stacks stay within bf16 rounding of the float32 kernel, and differ
    from the same run with float32 products (the bf16 path ran). Forced on here, so that a CPU without AMX tests it."""
    torch.manual_seed(0)
    rnn = RNN(6, 16, num_layers=2, cell=name, bidirectional=True, use_native=False, **cell_kwargs(name))
    x = torch.randn(4, 9, 6)
    lengths = torch.tensor([9, 3, 1, 6])

    def run(mixed, bf16_products=True):
        monkeypatch.setattr(native, "bf16_products", lambda: bf16_products)
        xg = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            out, final = rnn(xg, lengths=lengths)
        assert all(t.dtype == torch.float32 for t in state_tensors(final))
        out = out.float()
        weights = torch.linspace(-1, 1, out.numel()).view_as(out)
        grads = torch.autograd.grad((out * weights).sum(), [xg, *rnn.parameters()])
        return [out, *state_tensors(final), *grads]

    exact, low = run(False), run(True)
    assert not torch.equal(low[0], run(True, bf16_products=False)[0])
    for a, b in zip(low, exact):
        scale = b.abs().max().item()
        torch.testing.assert_close(a, b, rtol=0, atol=0.03 * scale + 1e-3)


@needs_kernels
def test_switched_off_by_environment(monkeypatch):
    """RNNKIT_NATIVE=0: no build, one status line that says so, and the same results on the Python loop."""
    monkeypatch.setattr(native, "_status", None)
    monkeypatch.setattr(native, "_extension", None)
    monkeypatch.setenv("RNNKIT_NATIVE", "0")
    assert native.extension() is None
    assert "RNNKIT_NATIVE=0" in native.status()
    cell = build_cell("peephole-lstm", 3, 4)
    assert not native.applies(cell, torch.empty(1, 1, 1))
    out, _ = Recurrent(cell)(torch.randn(2, 3, 3))
    assert out.shape == (2, 3, 4)


def test_failed_build_falls_back(monkeypatch):
    """Without a compiler the build raises: the status names the reason and the Python loop runs."""
    import torch.utils.cpp_extension as cpp

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(native, "_status", None)
    monkeypatch.setattr(native, "_extension", None)
    monkeypatch.delenv("RNNKIT_NATIVE", raising=False)
    monkeypatch.setattr(cpp, "load", no_compiler)
    assert native.extension() is None
    assert native.status().startswith("unavailable (Ninja is required")
    out, _ = RNN(3, 4, cell="gru-cho")(torch.randn(2, 3, 3))
    assert out.shape == (2, 3, 4)


def _lstm_step_by_hand(weight, inputs, base, c_prev):
    """Seed 000's LSTM step in float64: a = base + W v, gates i, f, g, o."""
    a = (base.double() + inputs.double() @ weight.double().t()).chunk(4, 1)
    i, f, g, o = a[0].sigmoid(), a[1].sigmoid(), a[2].tanh(), a[3].sigmoid()
    c = f * c_prev.double() + i * g
    return o * c.tanh(), c


@needs_kernels
@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("weight_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("H", [9, 37])
def test_lstm_step_equals_the_equations(rows, weight_dtype, H):
    """The generation step kernel: float32 weights, and bfloat16 ones (read exactly, summed in float32); a weight
    that is a column slice of a wider matrix (the first layer's W_hh next to W_ih); K not a multiple of 16; H not a
    multiple of the 16 units whose gate math runs together (nor of the threads' shares)."""
    K = 21
    wide = torch.randn(4 * H, K + 5).to(weight_dtype)
    weight = wide[:, 5:]
    inputs, c_prev = torch.randn(rows, K), torch.randn(rows, H)
    for base in (torch.randn(4 * H), torch.randn(rows, 4 * H)):
        h, c = native.lstm_step(weight, inputs, base, c_prev)
        h_ref, c_ref = _lstm_step_by_hand(weight, inputs, base, c_prev)
        assert h.dtype == c.dtype == torch.float32
        torch.testing.assert_close(h.double(), h_ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(c.double(), c_ref, rtol=1e-5, atol=1e-6)


@needs_kernels
def test_generation_steps_native_equal_python_loop():
    """A language model stepped with the native step kernel gives the loop's logits and states, in float32 and
    (to bf16 rounding) under bf16 autocast; switching paths rebuilds the cached weights."""
    from rnnkit.models import LanguageModel
    from rnnkit.precision import autocast

    torch.manual_seed(0)
    model = LanguageModel(11, 6, 20, 2, cell="lstm").eval()
    ids = torch.tensor([3, 0, 7])
    with torch.no_grad():
        fast, state = model.step(ids, None)
        fast, state = model.step(ids, state)
        assert model.rnn._fused_steps._native
        with native.python_loop():
            slow, slow_state = model.step(ids, None)
            slow, slow_state = model.step(ids, slow_state)
            assert not model.rnn._fused_steps._native
        torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
        for a, b in zip(state_tensors(state), state_tensors(slow_state)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        with autocast("bf16", "cpu"):
            low, _ = model.step(ids, None)
        assert model.rnn._fused_steps._native
        with torch.no_grad():
            exact, _ = model.step(ids, None)
        torch.testing.assert_close(low.float(), exact, rtol=0, atol=0.05)


@needs_kernels
@pytest.mark.parametrize("options", [{"delays": (1, 2, 4)}, {"delays": (2, 3), "nonlinearity": "relu"},
                                     {"delays": (1,)}])
def test_delay_paths_native_equals_python_loop(options):
    """The delay family keeps the whole history in the kernel and reads each row's states up to its last real step:
    outputs, final and carried states (h and the past delays) and every gradient equal the loop's."""
    rnn = RNN(3, 5, num_layers=2, cell="delay", bidirectional=True, **options).double()
    x = torch.randn(3, 7, 3, dtype=torch.float64, requires_grad=True)
    state = map_state(lambda t: torch.randn_like(t).requires_grad_(), rnn.initial_state(3, dtype=torch.float64))
    for lengths in (None, torch.tensor([7, 2, 5])):
        fast, reference = _run_both(rnn, x, state, lengths)
        for a, b in zip(fast, reference):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    cell = rnn.cells[0]
    px = cell.input_projection(x).transpose(0, 1)
    valid = torch.arange(7)[:, None] < torch.tensor([7, 2, 5])
    assert native.run_sequence(cell, px, cell.initial_state(3, dtype=torch.float64), valid) is not None
    gap = valid.clone()
    gap[1, 0] = False  # a step missing inside a row: the kernel declines, the loop runs
    assert native.run_sequence(cell, px, cell.initial_state(3, dtype=torch.float64), gap) is None


@needs_kernels
@pytest.mark.parametrize("options", [{"hidden_activation": "relu", "output_activation": "sigmoid"},
                                     {"hidden_activation": "sigmoid", "output_activation": "tanh", "bias": False}])
def test_jordan_options_native_equals_python_loop(options):
    """The Jordan family (the state is the previous output): each activation pair, without biases, an output size
    other than the hidden size; teacher forcing still runs the loop (the fed-back targets replace the state)."""
    rnn = RNN(3, 6, num_layers=2, cell="jordan", bidirectional=True, output_size=4, **options).double()
    x = torch.randn(3, 5, 3, dtype=torch.float64, requires_grad=True)
    state = torch.randn(4, 3, 4, dtype=torch.float64, requires_grad=True)
    fast, reference = _run_both(rnn, x, state, torch.tensor([5, 2, 4]))
    for a, b in zip(fast, reference):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    layer = Recurrent(rnn.cells[0])
    targets = torch.randn(3, 5, 4, dtype=torch.float64)
    forced, _ = layer(x, feedback=targets)
    with native.python_loop():
        forced_ref, _ = layer(x, feedback=targets)
    torch.testing.assert_close(forced, forced_ref, rtol=0, atol=0)


@needs_kernels
@pytest.mark.parametrize("name", ["mut1", "delay", "jordan"])
def test_backward_inside_autocast_runs_the_kernels_in_float32(name):
    """A backward pass started inside the autocast region gives the same gradients as one started outside: the
    kernels' backward runs with the forward's (disabled) autocast state."""
    rnn = RNN(4, 6, num_layers=2, cell=name, bidirectional=True, **cell_kwargs(name))
    x = torch.randn(3, 5, 4)
    grads = []
    for inside in (True, False):
        rnn.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = rnn(x, lengths=torch.tensor([5, 2, 4]))
            if inside:
                out.float().pow(2).sum().backward()
        if not inside:
            out.float().pow(2).sum().backward()
        grads.append([p.grad.clone() for p in rnn.parameters()])
    for a, b in zip(*grads):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@needs_kernels
@pytest.mark.parametrize("bf16_products", [True, False])
def test_gru_layer_picks_the_faster_kernel(bf16_products, monkeypatch):
    """A GRU stack runs rnnkit's kernel where it measured faster than torch's (float32; bf16 autocast with bf16
    products), torch's fused kernel under autocast otherwise; single steps of a few rows (generation) run rnnkit's
    kernel too, larger single steps torch's."""
    calls = []
    run = native.run_sequence
    monkeypatch.setattr(native, "run_sequence", lambda *a, **k: calls.append(1) or run(*a, **k))
    monkeypatch.setattr(native, "bf16_products", lambda: bf16_products)
    rnn = RNN(5, 8, num_layers=2, cell="gru")
    x = torch.randn(3, 6, 5)
    with torch.no_grad():
        rnn(x)
        assert len(calls) == 2
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rnn(x)
        assert len(calls) == (4 if bf16_products else 2)
        before = len(calls)
        rnn(x[:, :1])
        assert len(calls) == before + 2
        rnn(torch.randn(native.DOT_MAX_ROWS + 1, 1, 5))
        assert len(calls) == before + 2


_ROUTES_SCRIPT = """
import torch
from rnnkit import RNN
torch.manual_seed(0)
x = torch.randn(3, 7, 5)
for cell in ("gru", "mut3", "peephole-lstm", "leaky", "jordan", "delay"):
    kwargs = {"delay": {"delays": (1, 2)}, "jordan": {"output_size": 6}}.get(cell, {})
    layer = RNN(5, 6, num_layers=2, bidirectional=True, cell=cell, **kwargs)
    for precision in ("fp32", "bf16"):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = layer(x, lengths=torch.tensor([7, 4, 2]))[0]
        out.float().pow(2).sum().backward()
        grads = torch.cat([p.grad.flatten() for p in layer.parameters()])
        layer.zero_grad()
        torch.save((out.detach().float(), grads), f"{OUT}/{cell}-{precision}.pt")
"""


@needs_kernels
def test_mkl_and_aten_products_agree(tmp_path):
    """The per-step products through MKL (packed float32, bf16 x bf16 -> float32) and through ATen's GEMM
    (RNNKIT_MKL_STEP=0) give the same outputs and gradients: float32 to 1e-5, bf16 products within bf16 rounding
    (the MKL route adds the product unrounded, ATen's rounds it to bf16 first). bf16 products forced on, as on AMX."""
    import os
    import subprocess
    import sys

    results = {}
    for route in ("1", "0"):
        out = tmp_path / route
        out.mkdir()
        script = "import rnnkit.native as n; n.bf16_products = lambda: True\n" + _ROUTES_SCRIPT.replace(
            "{OUT}", str(out))
        env = {**os.environ, "RNNKIT_MKL_STEP": route, "RNNKIT_NATIVE": "1"}
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=600)
        results[route] = out
    for name in sorted(os.listdir(results["1"])):
        (out_mkl, grad_mkl), (out_aten, grad_aten) = (torch.load(results[r] / name) for r in ("1", "0"))
        tol = dict(rtol=1e-5, atol=1e-5) if "fp32" in name else dict(rtol=0, atol=0.03 * grad_aten.abs().max())
        torch.testing.assert_close(grad_mkl, grad_aten, **tol)
        tol = dict(rtol=1e-5, atol=1e-5) if "fp32" in name else dict(rtol=0, atol=0.03)
        torch.testing.assert_close(out_mkl, out_aten, **tol)


def test_a_build_is_announced_and_kept_per_kernel_source(monkeypatch, tmp_path, caplog):
    """A first use that compiles says so before the wait; the build directory's name changes with the kernels'
    source (two rnnkit versions keep two builds instead of rebuilding in turn)."""
    import logging

    import torch.utils.cpp_extension as cpp

    name = native._build_name()
    other = tmp_path / "kernels.cpp"
    other.write_text(native.SOURCE.read_text() + "\n// another version\n")
    monkeypatch.setattr(native, "SOURCE", other)
    native._build_name.cache_clear()
    try:
        assert native._build_name() != name
    finally:
        native._build_name.cache_clear()
    built = object()
    monkeypatch.delenv("RNNKIT_NATIVE", raising=False)
    monkeypatch.setattr(cpp, "load", lambda *a, **k: built)
    monkeypatch.setattr(native, "_built", lambda: False)
    monkeypatch.setattr(native, "_status", None)
    monkeypatch.setattr(native, "_extension", None)
    with caplog.at_level(logging.INFO, logger="rnnkit.native"):
        assert native.extension() is built
    assert "compiling them for this CPU" in caplog.text and native.status().startswith("on:")
    native._build_name.cache_clear()
