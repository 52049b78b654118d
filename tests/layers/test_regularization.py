"""Variational dropout, DropConnect on the recurrent matrices and embedding dropout (rnnkit.layers.regularization)
against the same computation written out: the dropped matrices drawn from the same seed and put in by hand."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from rnnkit import RNN
from rnnkit.cells import orthogonal_recurrence
from rnnkit.config import build_config, recurrent_kwargs
from rnnkit.layers.regularization import embedding_dropout, sequence_dropout
from rnnkit.models.language_model import LanguageModel

from ..conftest import assert_rows_alone

# torch's kernels (lstm), rnnkit's native kernels (gru, mut1, leaky) and its Python loop (clockwork)
CELLS = ["lstm", "gru", "gru-cho", "mut1", "mut3", "leaky", "delay", "clockwork"]


def test_variational_dropout_keeps_one_mask_for_every_step():
    torch.manual_seed(0)
    x = torch.ones(64, 30, 8)
    locked = sequence_dropout(x, 0.4, True, variational=True)
    assert (locked == locked[:, :1]).all()  # the same at every step of a row
    assert torch.equal(locked.unique(), torch.tensor([0.0, 1 / 0.6]))
    assert not (locked == locked[:1]).all()  # rows have masks of their own
    assert abs(locked.mean().item() - 1.0) < 0.05
    per_step = sequence_dropout(x, 0.4, True)
    assert not (per_step == per_step[:, :1]).all()
    assert sequence_dropout(x, 0.4, False, variational=True) is x


def _dropped_reference(rnn, p, seed):
    """A copy of ``rnn`` without weight dropout and the parameter dict its forward must equal: each cell's
    recurrent matrices through F.dropout drawn in the layer's order (cells, then their ``recurrent_weights``)."""
    ref = copy.deepcopy(rnn)
    ref.weight_dropout = 0.0
    torch.manual_seed(seed)
    dropped = {f"cells.{k}.{name}": F.dropout(getattr(cell, name), p, True)
               for k, cell in enumerate(ref.cells) for name in cell.recurrent_weights}
    return ref, dropped


@pytest.mark.parametrize("cell", CELLS)
def test_weight_dropout_equals_the_forward_with_the_dropped_matrices(cell):
    torch.manual_seed(1)
    rnn = RNN(5, 6, num_layers=2, cell=cell, weight_dropout=0.4).double()
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    ref, dropped = _dropped_reference(rnn, 0.4, seed=2)
    out_ref, final_ref = torch.func.functional_call(ref, dropped, (x,))
    out_ref.square().sum().backward()

    torch.manual_seed(2)
    out, final = rnn(x)
    out.square().sum().backward()
    torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-12)
    for a, b in zip(torch.utils._pytree.tree_leaves(final), torch.utils._pytree.tree_leaves(final_ref)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    for (name, p), q in zip(rnn.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-10, msg=name)
    assert any((dropped[k] == 0).any() for k in dropped)  # something was dropped


def test_weight_dropout_draws_one_mask_per_call_and_none_in_eval():
    torch.manual_seed(0)
    rnn = RNN(4, 8, cell="lstm", weight_dropout=0.5)
    plain = copy.deepcopy(rnn)
    plain.weight_dropout = 0.0
    x = torch.randn(2, 5, 4)
    a, _ = rnn(x)
    b, _ = rnn(x)
    assert not torch.equal(a, b)  # a new mask each call
    rnn.eval(), plain.eval()
    torch.testing.assert_close(rnn(x)[0], plain(x)[0], rtol=0, atol=0)
    # the step of a length-1 sequence in training: the same mask law as forward
    rnn.train()
    torch.manual_seed(3)
    step_out, _ = rnn.step(x[:, 0])
    torch.manual_seed(3)
    seq_out, _ = rnn(x[:, :1])
    torch.testing.assert_close(step_out, seq_out[:, 0])


def test_the_parameters_stay_registered_in_order_even_when_the_forward_fails():
    rnn = RNN(4, 8, num_layers=2, cell="gru", weight_dropout=0.3)
    names = [n for n, _ in rnn.named_parameters()]
    with pytest.raises(ValueError, match="expected"):
        rnn(torch.randn(2, 5, 3))  # wrong input size, raised inside the dropped-weight block
    assert all(isinstance(c.weight_hh, nn.Parameter) for c in rnn.cells)
    rnn(torch.randn(2, 5, 4))[0].sum().backward()
    assert [n for n, _ in rnn.named_parameters()] == names
    assert all(isinstance(c.weight_hh, nn.Parameter) and c.weight_hh.grad is not None for c in rnn.cells)
    assert set(rnn.state_dict()) == set(RNN(4, 8, num_layers=2, cell="gru").state_dict())


def test_weight_dropout_refuses_a_structured_or_constrained_recurrence():
    with pytest.raises(ValueError, match="UnitaryCell has none"):
        RNN(4, 8, cell="unitary", weight_dropout=0.2)
    rnn = RNN(4, 8, cell="rnn", weight_dropout=0.2)
    orthogonal_recurrence(rnn.cells[0])
    with pytest.raises(ValueError, match="constrained"):
        rnn(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"weight_dropout must be in \[0, 1\)"):
        RNN(4, 8, weight_dropout=1.0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "mut1"])
@pytest.mark.parametrize("lengths", [None, [7, 4, 2]])
def test_variational_dropout_between_layers_equals_the_layers_run_by_hand(cell, lengths):
    torch.manual_seed(0)
    rnn = RNN(5, 6, num_layers=2, cell=cell, dropout=0.5, variational_dropout=True).double()
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    first = RNN(5, 6, cell=cell).double()
    second = RNN(6, 6, cell=cell).double()
    first.cells[0].load_state_dict(rnn.cells[0].state_dict())
    second.cells[0].load_state_dict(rnn.cells[1].state_dict())
    torch.manual_seed(4)
    out, _ = rnn(x, lengths=lengths)
    torch.manual_seed(4)
    h1, _ = first(x, lengths=lengths)
    mask = torch.empty(3, 1, 6, dtype=torch.float64).bernoulli_(0.5).div_(0.5)
    expected, _ = second(h1 * mask, lengths=lengths)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_embedding_dropout_drops_whole_token_types():
    torch.manual_seed(0)
    emb = nn.Embedding(10, 4)
    ids = torch.tensor([[1, 2, 1, 3, 1, 2] * 5])
    out = embedding_dropout(emb, ids, 0.5, True)
    for token in (1, 2, 3):
        rows = out[ids == token]
        assert (rows == rows[:1]).all()  # every occurrence kept or dropped together
        assert torch.equal(rows[0], torch.zeros(4)) or torch.allclose(rows[0], emb.weight[token] * 2)
    assert torch.equal(embedding_dropout(emb, ids, 0.5, False), emb(ids))


def test_language_model_takes_the_awd_options_and_evaluates_without_them():
    torch.manual_seed(0)
    model = LanguageModel(20, 8, 16, 2, dropout=0.3, variational_dropout=True, weight_dropout=0.4,
                          embedding_dropout=0.1)
    ids = torch.randint(0, 20, (4, 9))
    out = model(ids[:, :-1], ids[:, 1:])
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    logits, _ = model.step(ids[:, 0])  # training step: the regularised path
    assert logits.shape == (4, 20)
    model.eval()
    plain = LanguageModel(20, 8, 16, 2)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    torch.testing.assert_close(model(ids).prediction, plain(ids).prediction, rtol=0, atol=0)


def test_config_passes_the_options_and_refuses_them_where_they_do_not_apply():
    config = build_config(None, {"model.weight_dropout": "0.5", "model.variational_dropout": "true",
                                 "model.embedding_dropout": "0.1", "data.task": "char-lm"})
    assert (config.model.weight_dropout, config.model.variational_dropout) == (0.5, True)
    with pytest.raises(ValueError, match="not to 'seq2seq'"):
        build_config(None, {"model.weight_dropout": "0.5", "data.task": "seq2seq"})
    with pytest.raises(ValueError, match="embedding_dropout applies to language models"):
        build_config(None, {"model.embedding_dropout": "0.1", "data.task": "forecast"})


# ---- zoneout --------------------------------------------------------------------------------------------------
def _steps_from(rnn_cell, px, states):
    """The cell's own step from each recorded state s_{t-1}: its candidate s̃_t (a list of state tensors per step)."""
    from rnnkit.cells.base import state_from_tensors, state_tensors

    candidates, prev = [], rnn_cell.initial_state(px.shape[1], dtype=px.dtype)
    for t in range(px.shape[0]):
        _, new = rnn_cell.step(px[t], prev)
        candidates.append(state_tensors(new))
        prev = state_from_tensors(prev, [s[:, t] for s in states])
    return candidates


@pytest.mark.parametrize("cell", ["lstm", "gru", "layernorm-lstm", "mut1"])
def test_zoneout_keeps_each_unit_or_takes_the_cells_new_value(cell):
    """In training every unit of s_t is either s_{t-1} or the cell's s̃_t = step(x_t, s_{t-1}), the output is the
    zoned-out h, and about a fraction p of the units keep their previous value."""
    from rnnkit import Recurrent
    from rnnkit.registry import build_cell

    torch.manual_seed(0)
    p = (0.3, 0.6) if cell.endswith("lstm") else 0.3
    layer = Recurrent(build_cell(cell, 5, 200), zoneout=p).double()
    x = torch.randn(8, 12, 5, dtype=torch.float64)
    out, _, states = layer(x, return_states=True)
    fields = [states] if isinstance(states, torch.Tensor) else list(states)
    px = layer.cell.input_projection(x.transpose(0, 1))
    with torch.no_grad():
        candidates = _steps_from(layer.cell, px, fields)
    rates = p if isinstance(p, tuple) else (p,)
    for k, (s, rate) in enumerate(zip(fields, rates)):
        prev = torch.cat([torch.zeros_like(s[:, :1]), s[:, :-1]], 1)
        new = torch.stack([c[k] for c in candidates], 1)
        kept = torch.isclose(s, prev, rtol=0, atol=1e-12)  # (the step recomputed on strided states: last bits)
        took = torch.isclose(s, new, rtol=0, atol=1e-12)
        assert (kept | took).all()
        assert abs(kept[:, 1:].double().mean().item() - rate) < 0.02  # (s̃ = s_{t-1} exactly almost never)
    torch.testing.assert_close(out, fields[0], rtol=0, atol=0)


@pytest.mark.parametrize("cell", ["lstm", "gru-cho"])
def test_zoneout_in_evaluation_is_the_expectation(cell):
    """s_t = p s_{t-1} + (1 − p) step(x_t, s_{t-1}), written out; the same stack, padded and bidirectional, gives
    each row what it gives that row alone."""
    from rnnkit.cells.base import state_from_tensors, state_tensors

    torch.manual_seed(0)
    p = (0.2, 0.5) if cell == "lstm" else (0.4,)
    rnn = RNN(5, 6, cell=cell, zoneout=p).double().eval()
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    out, final = rnn(x)
    c = rnn.cells[0]
    px = c.input_projection(x.transpose(0, 1))
    s = c.initial_state(3, dtype=torch.float64)
    for t in range(7):
        _, new = c.step(px[t], s)
        s = state_from_tensors(s, [(1 - r) * n + r * o for r, n, o in zip(p, state_tensors(new), state_tensors(s))])
        torch.testing.assert_close(out[:, t], state_tensors(s)[0], rtol=1e-12, atol=1e-12)
    bi = RNN(5, 6, num_layers=2, cell=cell, zoneout=p, bidirectional=True).double().eval()
    assert_rows_alone(bi, x, torch.tensor([7, 4, 2]), lambda final, row: [t[:, row] for t in state_tensors(final)])


def test_zoneout_passes_the_gradient_through_the_kept_units():
    """d s_t / d s_{t-1} is 1 on a kept unit: with every unit kept (p → 1) the gradient reaches the initial state
    unchanged, where dropout on the state would cut it."""
    torch.manual_seed(0)
    layer = RNN(3, 4, cell="gru", zoneout=0.999999).double()
    h0 = torch.randn(1, 2, 4, dtype=torch.float64, requires_grad=True)
    out, h_n = layer(torch.randn(2, 5, 3, dtype=torch.float64), h0)
    h_n.sum().backward()
    torch.testing.assert_close(h_n, h0)
    torch.testing.assert_close(h0.grad, torch.ones_like(h0))


def test_zoneout_rates_are_checked_and_reach_the_layer_from_the_config():
    with pytest.raises(ValueError, match=r"one per tensor of the cell's state LSTMState"):
        RNN(3, 4, cell="lstm", zoneout=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        RNN(3, 4, cell="gru", zoneout=1.0)
    assert RNN(3, 4, cell="gru", zoneout=0.0).zoneout is None  # no zoneout: the fused kernels still run
    config = build_config({"model": {"cell": "lstm", "zoneout": "0.05,0.5", "hidden_size": 8, "num_layers": 1},
                           "data": {"task": "char-lm"}})
    lm = LanguageModel(20, 8, 8, 1, **recurrent_kwargs(config.model))
    assert lm.rnn.zoneout == (0.05, 0.5) and lm.rnn._torch_kernel is None
    with pytest.raises(ValueError, match="model.zoneout must be"):
        build_config({"model": {"zoneout": "half"}})
    with pytest.raises(ValueError, match="model.zoneout"):
        build_config({"model": {"zoneout": "0.1"}, "data": {"task": "seq2seq"}})
