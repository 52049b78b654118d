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
