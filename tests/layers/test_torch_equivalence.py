"""rnnkit's LSTM / torch-form GRU / Elman RNN equal torch.nn.LSTM / GRU / RNN with copied weights:
outputs, final states and gradients, stacked, bidirectional and with variable lengths, on both the
fused-kernel path and rnnkit's own loop."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.cells.base import state_tensors
from rnnkit.layers import from_torch

B, T, D, H = 4, 7, 5, 6
LENGTHS = [7, 5, 2, 1]

TORCH_MODULES = {
    "lstm": lambda **kw: nn.LSTM(D, H, **kw),
    "lstm-proj": lambda **kw: nn.LSTM(D, H, proj_size=3, **kw),
    "gru": lambda **kw: nn.GRU(D, H, **kw),
    "rnn-tanh": lambda **kw: nn.RNN(D, H, **kw),
    "rnn-relu": lambda **kw: nn.RNN(D, H, nonlinearity="relu", **kw),
}


def _run_torch(module, x, lengths):
    if lengths is None:
        return module(x)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out, state = module(packed)
    return pad_packed_sequence(out, batch_first=True, total_length=T)[0], state


def _tensors(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("kind", sorted(TORCH_MODULES))
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "padded"])
@pytest.mark.parametrize("use_native", [True, False], ids=["native", "loop"])
def test_matches_torch(kind, layers, bidirectional, lengths, use_native):
    ref = TORCH_MODULES[kind](num_layers=layers, bidirectional=bidirectional, batch_first=True).double()
    ours = from_torch(ref)
    ours.use_native = use_native
    x = torch.randn(B, T, D, dtype=torch.float64)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()

    out_ref, state_ref = _run_torch(ref, x_ref, lengths)
    out, state = ours(x_ours, lengths=lengths)
    torch.testing.assert_close(out, out_ref)
    for a, b in zip(_tensors(state), _tensors(state_ref), strict=True):
        torch.testing.assert_close(a, b)

    # gradients of a loss touching outputs and every final state
    weights = torch.randn_like(out)
    loss_ref = (out_ref * weights).sum() + sum(s.sum() for s in _tensors(state_ref))
    loss = (out * weights).sum() + sum(s.sum() for s in _tensors(state))
    loss_ref.backward()
    loss.backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad)
    for k, cell in enumerate(ours.cells):
        layer, direction = divmod(k, ours.num_directions)
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        torch.testing.assert_close(cell.weight_hh.grad, getattr(ref, "weight_hh" + sfx).grad)
        torch.testing.assert_close(cell.weight_ih.grad, getattr(ref, "weight_ih" + sfx).grad)
        torch.testing.assert_close(cell.bias_ih.grad, getattr(ref, "bias_ih" + sfx).grad)


def test_time_major_and_initial_state():
    ref = nn.LSTM(D, H, num_layers=2).double()  # torch's default: time-major
    ours = from_torch(ref)
    assert not ours.batch_first
    x = torch.randn(T, B, D, dtype=torch.float64)
    h0, c0 = torch.randn(2, B, H).double(), torch.randn(2, B, H).double()
    out_ref, (h_ref, c_ref) = ref(x, (h0, c0))
    for native in (True, False):
        ours.use_native = native
        out, (h, c) = ours(x, (h0, c0))
        torch.testing.assert_close(out, out_ref)
        torch.testing.assert_close(h, h_ref)
        torch.testing.assert_close(c, c_ref)


def test_packed_sequence_input():
    ref = nn.GRU(D, H, batch_first=True, bidirectional=True).double()
    ours = from_torch(ref)
    x = torch.randn(B, T, D, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False)
    out_ref, h_ref = ref(packed)
    out, h = ours(packed)
    torch.testing.assert_close(pad_packed_sequence(out, batch_first=True)[0],
                               pad_packed_sequence(out_ref, batch_first=True)[0])
    torch.testing.assert_close(h, h_ref)


@pytest.mark.parametrize("kind", sorted(TORCH_MODULES))
@pytest.mark.parametrize("layers,bidirectional", [(2, False), (2, True)])
def test_single_step_path_matches_torch(kind, layers, bidirectional):
    """T = 1 at small batch runs torch's one-step kernels layer by layer (generation); same outputs, states and
    gradients as torch.nn's sequence module stepped with a given state."""
    ref = TORCH_MODULES[kind](num_layers=layers, bidirectional=bidirectional, batch_first=True).double()
    ours = from_torch(ref)
    x = torch.randn(B, 1, D, dtype=torch.float64)
    state = tuple(torch.randn_like(s) for s in _tensors(ours.initial_state(B, dtype=torch.float64)))
    state_ref = state if len(state) > 1 else state[0]
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, final_ref = ref(x_ref, state_ref)
    out, final = ours(x_ours, type(ours.initial_state(1))(*state) if len(state) > 1 else state[0])
    torch.testing.assert_close(out, out_ref)
    for a, b in zip(_tensors(final), _tensors(final_ref), strict=True):
        torch.testing.assert_close(a, b)
    (out.sum() + sum(s.sum() for s in _tensors(final))).backward()
    (out_ref.sum() + sum(s.sum() for s in _tensors(final_ref))).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad)
    torch.testing.assert_close(ours.cells[0].weight_hh.grad, ref.weight_hh_l0.grad)


@pytest.mark.parametrize("parts", [1, 2, 4])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fused_lstm_steps_without_autograd_match_torch(parts, bidirectional):
    """Generation's LSTM step (fused [W_ih | W_hh], split into thread slices, gates reordered) equals nn.LSTM,
    and its cached weights follow in-place parameter changes."""
    ref = nn.LSTM(D, H, num_layers=2, bidirectional=bidirectional, batch_first=True).double()
    ours = from_torch(ref)
    ours._fused_steps.parts = parts
    x = torch.randn(2, 1, D, dtype=torch.float64)
    state = tuple(torch.randn(4 if bidirectional else 2, 2, H, dtype=torch.float64) for _ in range(2))
    for _ in range(2):
        with torch.no_grad():
            out, (h, c) = ours(x, type(ours.initial_state(1))(*state))
            out_ref, (h_ref, c_ref) = ref(x, state)
        torch.testing.assert_close(out, out_ref)
        torch.testing.assert_close(h, h_ref)
        torch.testing.assert_close(c, c_ref)
        with torch.no_grad():  # a training update in between: the cache must notice
            cell = ours.cells[0]
            for p_ours, p_ref in [(cell.weight_ih, ref.weight_ih_l0), (cell.weight_hh, ref.weight_hh_l0),
                                  (cell.bias_ih, ref.bias_ih_l0)]:
                p_ours.add_(0.1)
                p_ref.add_(0.1)


@pytest.mark.parametrize("family", ["lstm", "gru", "rnn-tanh", "rnn-relu"])
@pytest.mark.parametrize("parts", [1, 3, 8])
@pytest.mark.parametrize("rows", [3, 9])
@pytest.mark.parametrize("projected", [False, True])
@pytest.mark.parametrize("hidden", [H, 72])
def test_native_stack_step_matches_torch_at_few_and_many_rows(family, parts, rows, projected, hidden):
    """The whole-stack step of generation in float32 (rnnkit.native.stack_step through FusedSteps): the few-row
    kernel (3 rows) and, beyond, the GEMM route (each product split into up to ``parts`` blocks of the weight's rows,
    at least 64 each: at H = 72 the LSTM's 288 rows in 3 or 4 blocks, the GRU's 216 in 3; one block at H = 6), with
    and without the first layer's input term, and the output layer, equal nn.LSTM / nn.GRU / nn.RNN and nn.Linear."""
    from rnnkit import native

    torch.manual_seed(0)
    H = hidden
    if family.startswith("rnn"):
        ref = nn.RNN(D, H, num_layers=2, batch_first=True, nonlinearity=family[4:])
    else:
        ref = (nn.LSTM if family == "lstm" else nn.GRU)(D, H, num_layers=2, batch_first=True)
    head = nn.Linear(H, 7)
    ours = from_torch(ref)
    ours._fused_steps.parts = parts
    x = torch.randn(rows, D)
    state = (torch.randn(2, rows, H), torch.randn(2, rows, H))[: 2 if family == "lstm" else 1]
    with torch.no_grad():
        out_ref, final_ref = ref(x.unsqueeze(1), state if family == "lstm" else state[0])
        logits_ref = head(out_ref[:, 0])
        steps = ours._fused_steps
        assert steps.family == family
        steps.prepare(ours.cells)
        assert steps.native == (native.extension() is not None)
        if family != "lstm" and native.extension() is None:
            return  # only an LSTM stack steps outside the native kernel
        inputs = ours.cells[0].input_projection(x) if projected else x
        logits, finals = steps.step_stack(inputs, state, projected=projected, head=head)
    torch.testing.assert_close(logits, logits_ref, rtol=1e-5, atol=1e-5)
    for ours_t, ref_t in zip(finals, final_ref if family == "lstm" else (final_ref,), strict=True):
        torch.testing.assert_close(ours_t, ref_t, rtol=1e-5, atol=1e-5)


#: The cells whose stack step has no torch module to compare with, by the name rnnkit.RNN takes
CELLS_WITHOUT_A_TORCH_MODULE = ["peephole-lstm", "gru-cho", "mut1", "mut2", "mut3"]


@pytest.mark.parametrize("cell", CELLS_WITHOUT_A_TORCH_MODULE)
@pytest.mark.parametrize("rows", [3, 9])
@pytest.mark.parametrize("projected", [False, True])
@pytest.mark.parametrize("input_size", [D, H], ids=["D", "H"])
def test_native_stack_step_of_cells_without_a_torch_module(cell, rows, projected, input_size):
    """The peephole LSTM's stack step (i, f read p ⊙ c_{t-1}, o reads p_o ⊙ c_t), the Cho GRU's and MUT1-3's (W_hh
    (r ⊙ h), two rounds of products; MUT1's z reads x alone and its candidate tanh(x); MUT2's r reads x itself; MUT3's
    z reads tanh(h)) at few rows and through the GEMM route equal the cells' ``step``, the notes' equations, run by
    rnnkit's Python loop. MUT1's and MUT2's raw x_t is the input itself where the sizes are equal, P x_t otherwise."""
    from rnnkit import native
    from rnnkit.layers import RNN

    if native.extension() is None:
        pytest.skip("needs rnnkit's native kernels")
    torch.manual_seed(0)
    rnn = RNN(input_size, H, num_layers=2, cell=cell)
    head = nn.Linear(H, 7)
    x = torch.randn(rows, input_size)
    state = (torch.randn(2, rows, H), torch.randn(2, rows, H))[: 2 if cell == "peephole-lstm" else 1]
    with torch.no_grad():
        with native.python_loop():
            initial = type(rnn.initial_state(1))(*state) if len(state) == 2 else state[0]
            out_ref, final_ref = rnn(x.unsqueeze(1), initial)
        steps = rnn._fused_steps
        assert steps.family == cell
        steps.prepare(rnn.cells)
        inputs = rnn.cells[0].input_projection(x) if projected else x
        logits, finals = steps.step_stack(inputs, state, projected=projected, head=head)
    torch.testing.assert_close(logits, head(out_ref[:, 0]), rtol=1e-5, atol=1e-5)
    for ours_t, ref_t in zip(finals, final_ref if len(state) == 2 else (final_ref,), strict=True):
        torch.testing.assert_close(ours_t, ref_t, rtol=1e-5, atol=1e-5)


def test_native_stack_step_names_what_is_wrong():
    """Bad arguments to the native stack step come back as errors that name the problem and the expected form."""
    from rnnkit import native

    if native.extension() is None:
        pytest.skip("needs rnnkit's native kernels")
    w, h = torch.randn(3 * H, D + H), torch.zeros(1, 2, H)
    bias, x = torch.zeros(6 * H), torch.randn(2, D)
    with pytest.raises(RuntimeError, match='the family must be "lstm", "peephole-lstm", "gru"'):
        native.stack_step("lru", [w], [bias], x, h, None, False, max_rows=8, parts=1)
    with pytest.raises(RuntimeError, match=f"layer 0's bias must have {6 * H} entries"):
        native.stack_step("gru", [w], [bias[: 3 * H]], x, h, None, False, max_rows=8, parts=1)
    with pytest.raises(RuntimeError, match="a GRU or Elman stack carries h alone"):
        native.stack_step("gru", [w], [bias], x, h, torch.zeros(1, 2, H), False, max_rows=8, parts=1)
    with pytest.raises(RuntimeError, match=r"a GRU layer's weight must be \(3H, K\)"):
        native.stack_step("gru", [w[:, 1:]], [bias], x, h, None, False, max_rows=8, parts=1)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "rnn-relu", *CELLS_WITHOUT_A_TORCH_MODULE])
@pytest.mark.parametrize("rows", [3, 9])
@pytest.mark.parametrize("hidden", [H, 72])
def test_native_stack_step_reads_bf16_weights(cell, rows, hidden):
    """Under bf16 autocast the stack step of every family reads its fused weights as bfloat16 (sums, state and gate
    math in float32): at few rows (the weights read as they are) it equals the cells' float32 steps with every weight
    matrix rounded to bfloat16, to float32 rounding; beyond (a bf16 GEMM, whose left operand, the input and the
    state, is rounded to bfloat16 too; in blocks of the weight's rows at H = 72) to bf16 rounding, while the float32
    step of the unrounded weights differs."""
    from rnnkit import native
    from rnnkit.layers import RNN
    from rnnkit.precision import autocast

    if native.extension() is None:
        pytest.skip("needs rnnkit's native kernels")
    torch.manual_seed(0)
    options = {"nonlinearity": "relu"} if cell == "rnn-relu" else {}
    rnn = RNN(D, hidden, num_layers=2, cell="rnn" if cell == "rnn-relu" else cell, **options)
    rnn._fused_steps.parts = 3  # at H = 72, products of 3H and 4H rows in 3 blocks
    x = torch.randn(rows, D)
    state = tuple(torch.randn(2, rows, hidden) for _ in range(len(_tensors(rnn.initial_state(1)))))
    initial = type(rnn.initial_state(1))(*state) if len(state) == 2 else state[0]
    with torch.no_grad():
        with native.python_loop():
            exact, _ = rnn(x.unsqueeze(1), initial)
            for p in rnn.parameters():
                if p.dim() == 2:
                    p.copy_(p.to(torch.bfloat16).float())
            out_ref, _ = rnn(x.unsqueeze(1), initial)
        with autocast("bf16", "cpu"):
            steps = rnn._fused_steps
            steps.prepare(rnn.cells)
            assert steps._stack[False][0][0].dtype == torch.bfloat16 and steps.native
            out, _ = steps.step_stack(x, state)
    tolerance = 1e-5 if rows <= 8 else 2e-2
    torch.testing.assert_close(out, out_ref[:, 0], rtol=tolerance, atol=tolerance)
    assert not torch.allclose(out, exact[:, 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "mut1"])
@pytest.mark.parametrize("batch", [2, 9], ids=["small-batch", "large-batch"])
@pytest.mark.parametrize("grad", [True, False], ids=["autograd", "no-grad"])
def test_step_equals_forward_on_one_step(cell, batch, grad):
    """``RNN.step(x (B, D), state)`` is ``forward`` on a length-1 sequence, whatever path it takes (one-step
    kernels, fused LSTM weights, the sequence kernel at larger batch, rnnkit's loop for other cells)."""
    from rnnkit.layers import RNN

    torch.manual_seed(0)
    rnn = RNN(D, H, num_layers=2, cell=cell, bidirectional=True).double()
    x = torch.randn(batch, D, dtype=torch.float64)
    _, state = rnn(torch.randn(batch, 3, D, dtype=torch.float64))
    with torch.set_grad_enabled(grad):
        out, final = rnn.step(x, state)
        out_ref, final_ref = rnn(x.unsqueeze(1), state)
    torch.testing.assert_close(out, out_ref[:, 0])
    for a, b in zip(_tensors(final), _tensors(final_ref), strict=True):
        torch.testing.assert_close(a, b)
    assert out.requires_grad == grad


def test_step_rejects_bad_input_by_name():
    from rnnkit.layers import RNN

    rnn = RNN(D, H, num_layers=2)
    with pytest.raises(ValueError, match=r"RNN.step expected x \(batch, 5\); got \(3, 1, 5\)"):
        rnn.step(torch.randn(3, 1, D))
    with pytest.raises(ValueError, match="initial state"):
        rnn.step(torch.randn(3, D), rnn.initial_state(2))


@pytest.mark.parametrize("cell", ["lstm", "gru", "mut1", "peephole-lstm"])
def test_step_on_projected_input_equals_step_on_the_input(cell):
    """``RNN.step(cells[0].input_projection(x), state, projected=True)`` is ``RNN.step(x, state)`` on every path
    (the LSTM's fused steps without autograd, rnnkit's loop with it), and bad forms are refused by name."""
    from rnnkit.layers import RNN

    torch.manual_seed(0)
    rnn = RNN(D, H, num_layers=2, cell=cell).double()
    x = torch.randn(3, D, dtype=torch.float64)
    _, state = rnn(torch.randn(3, 2, D, dtype=torch.float64))
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            out, final = rnn.step(rnn.cells[0].input_projection(x), state, projected=True)
            out_ref, final_ref = rnn.step(x, state)
        torch.testing.assert_close(out, out_ref)
        for a, b in zip(state_tensors(final), state_tensors(final_ref)):
            torch.testing.assert_close(a, b)
    G = rnn.cells[0].input_projection(x).shape[1]
    with pytest.raises(ValueError, match=rf"first cell's input term \(batch, {G}\); got \(3, {D}\)"):
        rnn.step(x, state, projected=True)
    with pytest.raises(ValueError, match="unidirectional"):
        RNN(D, H, bidirectional=True).step(torch.randn(1, 4 * H), None, projected=True)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_dropout_between_layers_outside_the_kernel(monkeypatch, cell, bidirectional, padded):
    """On CUDA, training with dropout between layers, every layer runs as its own kernel call with torch's dropout
    between them (cuDNN's dropout state is in no checkpoint). Forced here on the CPU: with the same seed it draws
    the masks of torch's fused kernel (full batches) and of rnnkit's loop (padded ones) — outputs, final states and
    gradients equal."""
    from rnnkit import RNN
    from rnnkit.cells.base import state_tensors

    rnn = RNN(D, H, num_layers=3, cell=cell, dropout=0.4, bidirectional=bidirectional).double().train()
    x = torch.randn(B, T, D, dtype=torch.float64)
    lengths = torch.tensor(LENGTHS) if padded else None

    def run():
        torch.manual_seed(1)
        out, state = rnn(x, lengths=lengths)
        finals = state_tensors(state)
        loss = out.pow(2).sum() + sum(s.sum() for s in finals)
        return [out, *finals, *torch.autograd.grad(loss, list(rnn.parameters()))]

    rnn.use_native = not padded  # the reference: torch's kernel, or rnnkit's loop on padded batches
    expected = run()
    rnn.use_native = True
    monkeypatch.setattr(RNN, "_dropout_outside_kernel", lambda self, x: True)
    for got, want in zip(run(), expected, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("padded", [False, True])
def test_one_layer_kernel_calls_get_no_dropout(monkeypatch, padded):
    """A fused-kernel call over one layer gets dropout 0 (there is no between-layers): with dropout > 0, cuDNN
    would set up its dropout state, drawing a seed on its first call after a reseed — a resumed run then drew other
    random numbers than the uninterrupted one (found on CUDA with benchmarks/check_cuda.py's runs)."""
    from rnnkit import RNN
    from rnnkit.layers import sequence

    seen = []
    real = sequence.TORCH_KERNELS["LSTM"]

    def spy(x, hx, weights, has_biases, layers, dropout, *rest):
        seen.append((layers, dropout))
        return real.sequence(x, hx, weights, has_biases, layers, dropout, *rest)

    monkeypatch.setitem(sequence.TORCH_KERNELS, "LSTM", real._replace(sequence=spy))
    for layers, bidirectional in ((1, False), (1, True), (2, True)):
        rnn = RNN(D, H, num_layers=layers, cell="lstm", dropout=0.3, bidirectional=bidirectional).train()
        rnn(torch.randn(B, T, D), lengths=torch.tensor(LENGTHS) if padded else None)
    assert seen and all(dropout == (0.3 if layers > 1 else 0.0) for layers, dropout in seen)
    assert any(layers == 1 for layers, _ in seen)
