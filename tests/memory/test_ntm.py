"""NTMCell: one step composes the addressing stages in the documented order, the state works with everything the
sequence layer offers (padding, carried state, stacking), gradients are exact, bad settings are refused."""

import pytest
import torch
from torch.nn import functional as F

from rnnkit import RNN
from rnnkit.cells.base import state_tensors
from rnnkit.layers import Recurrent
from rnnkit.memory import NTMCell, NTMState, address, read, write
from rnnkit.memory.ntm import CONSTANT_MEMORY

D, H, N, M = 3, 6, 8, 4


def _cell(**kw):
    return NTMCell(D, H, memory_size=N, memory_width=M, **kw).double()


@pytest.mark.parametrize("heads", [(1, 1), (2, 2), (1, 0)])
def test_one_step_is_the_papers_step(heads):
    R, W = heads
    cell = _cell(read_heads=R, write_heads=W, shift_range=1)
    B, K = 2, R + W
    x = torch.randn(B, D, dtype=torch.float64)
    state = cell.initial_state(B, dtype=torch.float64)
    state = NTMState(state.controller, torch.randn(B, N, M, dtype=torch.float64), *state[2:])
    y, new = cell(x, state)

    # written out: controller on [x; r_{t-1}], head parameters, addressing on M_{t-1}, read M_{t-1}, then write
    c = cell.controller
    gates = F.linear(torch.cat([x, state.reads.reshape(B, R * M)], -1), c.weight_ih, c.bias_ih)
    h, _ = c.step(gates, state.controller)
    p = cell.head_params(h).clamp(-20, 20)
    k, beta, g, s, gamma, e, a = p.split([K * M, K, K, 3 * K, K, W * M, W * M], -1)
    w = address(state.memory, state.weights, torch.tanh(k).view(B, K, M), F.softplus(beta), torch.sigmoid(g),
                torch.softmax(s.view(B, K, 3), -1), 1 + F.softplus(gamma))
    r = read(state.memory, w[:, :R])
    memory = state.memory if W == 0 else write(state.memory, w[:, R:], torch.sigmoid(e).view(B, W, M),
                                               torch.tanh(a).view(B, W, M))
    torch.testing.assert_close(y, torch.cat([h, r.reshape(B, R * M)], -1))
    torch.testing.assert_close(new.memory, memory)
    torch.testing.assert_close(new.weights, w)
    torch.testing.assert_close(new.weights.sum(-1), torch.ones(B, K, dtype=torch.float64))
    assert y.shape == (B, cell.output_size) == (B, H + R * M)


def test_start_state_follows_collier_and_beel():
    cell = _cell(read_heads=2, write_heads=1)
    s = cell.initial_state(3, dtype=torch.float64)
    torch.testing.assert_close(s.memory, torch.full((3, N, M), CONSTANT_MEMORY, dtype=torch.float64), rtol=1e-6, atol=0)
    assert (s.weights[..., 0] == 1).all() and (s.weights.sum(-1) == 1).all()  # every head on location 0
    learned = _cell(read_heads=2, initial_weights="learned").initial_state(3, dtype=torch.float64)
    torch.testing.assert_close(learned.weights.sum(-1), torch.ones(3, 3, dtype=torch.float64))
    assert not torch.allclose(learned.weights[0, 0], learned.weights[0, 1])  # learned starts drawn at random
    assert (s.reads.abs() < 1).all() and s.reads.shape == (3, 2, M)
    assert "initial_memory" not in dict(cell.named_parameters())
    learned = _cell(memory_init="learned")
    assert "initial_memory" in dict(learned.named_parameters())
    random = _cell(memory_init="random")
    assert random.initial_memory.std() > 0.1 and "initial_memory" not in dict(random.named_parameters())


@pytest.mark.parametrize("controller", ["lstm", "gru", "feedforward"])
def test_gradcheck_through_steps_of_the_whole_cell(controller):
    cell = NTMCell(2, 3, memory_size=5, memory_width=3, read_heads=2, write_heads=2, controller=controller).double()
    layer = Recurrent(cell)
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)

    def f(x, *params):
        out, state = torch.func.functional_call(layer, dict(zip(names, params)), (x,), {"lengths": [4, 3]})
        return out, *state_tensors(state)

    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    assert torch.autograd.gradcheck(f, (x, *params))


def test_a_padded_batch_equals_each_sequence_alone():
    rnn = RNN(D, H, num_layers=1, cell="ntm", memory_size=N, memory_width=M, read_heads=2, write_heads=2).double()
    lengths = [7, 3, 1, 5]
    x = torch.randn(4, 7, D, dtype=torch.float64)
    out, final = rnn(x, lengths=lengths)
    for b, n in enumerate(lengths):
        alone, fin = rnn(x[b:b + 1, :n])
        torch.testing.assert_close(out[b:b + 1, :n], alone)
        assert (out[b, n:] == 0).all()
        for field, one in zip(state_tensors(final), state_tensors(fin), strict=True):
            torch.testing.assert_close(field[:, b:b + 1], one)


def test_a_carried_state_continues_the_sequence():
    rnn = RNN(D, H, num_layers=2, cell="ntm", memory_size=N, memory_width=M).double()
    x = torch.randn(2, 10, D, dtype=torch.float64)
    whole, final = rnn(x)
    first, mid = rnn(x[:, :4])
    second, end = rnn(x[:, 4:], mid)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    for a, b in zip(state_tensors(end), state_tensors(final), strict=True):
        torch.testing.assert_close(a, b)
    assert final.memory.shape == (2, 2, N, M)  # (layers, B, N, M)


def test_return_states_gives_the_memory_and_weightings_of_every_step():
    rnn = RNN(D, H, num_layers=1, cell="ntm", memory_size=N, memory_width=M).double()
    out, final, states = rnn(torch.randn(2, 5, D, dtype=torch.float64), return_states=True)
    assert states.memory.shape == (2, 5, N, M) and states.weights.shape == (2, 5, 2, N)
    torch.testing.assert_close(states.memory[:, -1], final.memory[0])


@pytest.mark.parametrize("kwargs, match", [
    ({"memory_size": 0}, "memory_size must be an integer >= 1"),
    ({"memory_width": 0}, "memory_width must be an integer >= 1"),
    ({"read_heads": 0}, "read_heads must be an integer >= 1"),
    ({"memory_size": 4, "shift_range": 2}, "need 2·shift_range \\+ 1 <= memory_size"),
    ({"memory_init": "zeros"}, "memory_init must be one of"),
    ({"initial_weights": "uniform"}, "initial_weights must be one of"),
    ({"clip": -1.0}, "clip must be a finite number >= 0"),
    ({"controller": "transformer"}, "unknown cell 'transformer'"),
])
def test_bad_settings_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NTMCell(D, H, **kwargs)


def test_a_language_model_trains_on_an_ntm_with_truncated_bptt(tmp_path):
    """The NTM's nested state through the trainer's stream path: carried across chunks, detached (train.bptt),
    checkpointed and restored."""
    from rnnkit.cli.main import main

    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. " * 200)
    args = ["-q", "train", "--data.path", str(text), "--model.cell", "ntm", "--model.hidden_size", "16",
            "--model.num_layers", "1", "--model.embedding_size", "8", "--model.cell_options",
            "memory_size = 8, memory_width = 4", "--data.seq_length", "20", "--train.bptt", "10",
            "--data.batch_size", "4", "--train.eval_every", "4", "--train.checkpoint_every", "4"]
    assert main([*args, "--run-dir", str(tmp_path / "run"), "--train.steps", "4"]) == 0
    assert main(["-q", "train", "--resume", str(tmp_path / "run"), "--train.steps", "8"]) == 0
    from safetensors.torch import load_file

    extra = load_file(str(tmp_path / "run" / "checkpoints" / "step-00000008" / "extra.safetensors"))
    carried = [t for name, t in extra.items() if name.startswith("state.")]
    assert any(t.shape[-2:] == (8, 4) for t in carried)  # the memory travels with the stream
