"""The recurrent language model: weight tying, Zaremba's uniform initialisation, state selection."""

import pytest
import torch

from rnnkit.models import LanguageModel


def test_tied_weights_are_one_parameter_and_get_both_gradients():
    model = LanguageModel(20, 8, 8, 1, tie_weights=True)
    assert model.head.weight is model.embedding.weight
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in LanguageModel(20, 8, 8, 1).parameters()) - 20 * 8
    x = torch.randint(0, 20, (2, 5))
    model(x, x).loss.backward()
    # the shared matrix's gradient is the sum of the embedding's (rows of x only) and the output layer's
    untied = LanguageModel(20, 8, 8, 1)
    untied.load_state_dict(model.state_dict())
    untied(x, x).loss.backward()
    torch.testing.assert_close(model.embedding.weight.grad, untied.embedding.weight.grad + untied.head.weight.grad)


def test_tying_needs_equal_sizes():
    with pytest.raises(ValueError, match="embedding_size"):
        LanguageModel(20, 8, 16, 1, tie_weights=True)


@pytest.mark.parametrize("cell", ["lstm", "gru", "mut1"])
def test_init_range_draws_every_parameter_uniformly(cell):
    model = LanguageModel(50, 16, 16, 2, cell=cell, init_range=0.1)
    values = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert values.abs().max() <= 0.1 and values.std() == pytest.approx(0.1 / 3 ** 0.5, rel=0.05)


def test_select_state_repeats_rows():
    model = LanguageModel(10, 4, 6, 2)
    _, _, state = model(torch.randint(0, 10, (3, 4)))
    picked = model.select_state(state, torch.tensor([2, 2, 0]))
    torch.testing.assert_close(picked.h[:, 0], state.h[:, 2])
    torch.testing.assert_close(picked.c[:, 2], state.c[:, 0])


def test_step_equals_forward_on_one_token():
    """LanguageModel.step (generation's inner loop) gives forward's logits and state for a (B, 1) input."""
    torch.manual_seed(0)
    model = LanguageModel(13, 8, 16, num_layers=2, cell="lstm", dropout=0.3).eval()
    _, _, state = model(torch.randint(0, 13, (3, 5)))
    ids = torch.tensor([1, 7, 12])
    with torch.no_grad():
        logits, final = model.step(ids, state)
        ref = model(ids.view(-1, 1), state=state)
    torch.testing.assert_close(logits, ref.prediction[:, 0])
    for a, b in zip(final, ref.state, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cell", ["lstm", "gru", "mut2"])
@pytest.mark.parametrize("table_limit", [1 << 22, 0], ids=["input-table", "no-table"])
def test_step_through_the_input_table_follows_changes(cell, table_limit, monkeypatch):
    """Without autograd, LanguageModel.step reads the first cell's input term from a table (input_projection of
    every embedding row) that follows in-place changes of the embedding and of the cell, and is skipped for large
    vocabularies and with autograd on; every way gives forward's logits."""
    from rnnkit import native
    from rnnkit.models import language_model

    monkeypatch.setattr(language_model, "INPUT_TABLE_MAX_ENTRIES", table_limit)
    torch.manual_seed(0)
    model = LanguageModel(9, 5, 6, num_layers=2, cell=cell).double().eval()
    ids = torch.tensor([3, 0, 8])
    _, _, state = model(torch.randint(0, 9, (3, 4)))
    for _ in range(2):
        with torch.no_grad():
            logits, _ = model.step(ids, state)
            assert (model.input_table() is not None) == (table_limit > 0)
            # a GRU's steps of a few rows run rnnkit's kernel where it is built (which takes the term), else
            # torch.gru_cell (which wants the input)
            assert model.rnn.step_takes_input_term(ids) == (cell != "gru" or native.extension() is not None)
            ref = model(ids.view(-1, 1), state=state).prediction[:, 0]
        torch.testing.assert_close(logits, ref)
        with torch.no_grad():  # the cached table must notice both
            model.embedding.weight.add_(0.5)
            model.rnn.cells[0].weight_ih.mul_(0.9)
    assert model.input_table() is None  # autograd on: gradients must reach the embedding
    logits, _ = model.step(ids, state)
    torch.testing.assert_close(logits, model(ids.view(-1, 1), state=state).prediction[:, 0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("rows", [1, 3, 16])  # 1 and 3: the one-call native step; 16: the batched products
@pytest.mark.parametrize("table_limit", [None, 0])  # through the input table, and through the embedding
def test_stepper_equals_step(cell, rows, table_limit, monkeypatch):
    """The prepared step (generation's) gives step's logits and states token after token, and checks a state it
    did not return itself as step does."""
    from rnnkit.models import language_model

    if table_limit is not None:
        monkeypatch.setattr(language_model, "INPUT_TABLE_MAX_ENTRIES", table_limit)
    torch.manual_seed(0)
    model = LanguageModel(13, 8, 16, num_layers=2, cell=cell).eval()
    ids = torch.randint(0, 13, (6, rows))
    with torch.inference_mode():
        stepper = model.stepper()
        state_a = state_b = model(ids[:1].t()).state
        for token in ids[1:]:
            logits_a, state_a = model.step(token, state_a)
            logits_b, state_b = stepper(token, state_b)
            torch.testing.assert_close(logits_b, logits_a, rtol=1e-5, atol=1e-6)
            for a, b in zip(state_a, state_b):
                torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
        wrong = tuple(s[:, :1] for s in state_b) if rows > 1 else tuple(s[:1] for s in state_b)
        with pytest.raises(ValueError, match="state"):
            stepper(ids[0], wrong)


def test_stepper_under_bf16_autocast_keeps_float32_logits_at_few_rows():
    """Under CPU bf16 autocast a step of few rows computes the output layer in float32 (rnnkit.precision.step_linear):
    float32 logits, within bf16 rounding of the float32 model's."""
    torch.manual_seed(0)
    model = LanguageModel(13, 8, 32, num_layers=2, cell="lstm").eval()
    ids = torch.randint(0, 13, (5, 1))
    with torch.inference_mode():
        state32 = state16 = model(ids[:1].t()).state
        stepper = model.stepper()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            stepper16 = model.stepper()
        for token in ids[1:]:
            logits32, state32 = stepper(token, state32)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits16, state16 = stepper16(token, state16)
            assert logits16.dtype == torch.float32 and all(s.dtype == torch.float32 for s in state16)
            torch.testing.assert_close(logits16, logits32, rtol=0, atol=0.05)
