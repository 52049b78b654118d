"""Classifier and tagger: pooling over real steps only, padded batches equal their examples one by one, attention
weights, and the losses against torch's cross-entropy."""

import pytest
import torch
from torch.nn import functional as F

from rnnkit.data.batches import IGNORE_INDEX, collate
from rnnkit.models.classifier import POOLINGS, SequenceClassifier, SequenceTagger, pool


def _examples(n=5, features=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(L, features, generator=g) for L in (7, 3, 5, 1, 6)[:n]]


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["lstm", "mut1"])
def test_padded_batch_equals_each_example_alone(pooling, bidirectional, cell):
    model = SequenceClassifier(4, pooling=pooling, input_size=3, hidden_size=8, num_layers=2, cell=cell,
                               bidirectional=bidirectional).eval()
    xs = _examples()
    batch = collate(xs, [0, 1, 2, 3, 0])
    together = model(batch.inputs, batch.targets, lengths=batch.lengths)
    alone = torch.cat([model(x[None]).prediction for x in xs])
    torch.testing.assert_close(together.prediction, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together.loss, F.cross_entropy(alone, batch.targets), atol=1e-5, rtol=1e-5)
    junk = batch.inputs.clone()
    junk[batch.inputs == 0] = 1e3  # what sits in the padding changes nothing
    torch.testing.assert_close(model(junk, lengths=batch.lengths).prediction, together.prediction)


def test_last_pooling_takes_forward_end_and_backward_start():
    out = torch.arange(2 * 4 * 4, dtype=torch.float32).view(2, 4, 4)  # (B, T, 2·2): forward | backward halves
    pooled, _ = pool(out, torch.tensor([4, 2]), "last", num_directions=2)
    assert pooled[1].tolist() == out[1, 1, :2].tolist() + out[1, 0, 2:].tolist()
    assert pooled[0].tolist() == out[0, 3, :2].tolist() + out[0, 0, 2:].tolist()


def test_attention_weights_sum_to_one_over_real_steps():
    model = SequenceClassifier(3, pooling="attention", vocab_size=20, embedding_size=6, hidden_size=8)
    batch = collate([torch.tensor([3, 4, 5]), torch.tensor([6])], [0, 1])
    summary, alpha = model.encode(batch.inputs, batch.lengths)
    torch.testing.assert_close(alpha.sum(1), torch.ones(2))
    assert alpha[1, 1:].abs().sum() == 0 and summary.shape == (2, 8)


def test_tagger_loss_is_the_mean_over_real_steps():
    model = SequenceTagger(3, vocab_size=10, embedding_size=4, hidden_size=6, bidirectional=True).eval()
    xs = [torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6])]
    ys = [torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2])]
    batch = collate(xs, ys)
    assert (batch.targets == IGNORE_INDEX).sum() == 2
    out = model(batch.inputs, batch.targets, lengths=batch.lengths)
    per_example = [model(x[None]).prediction[0] for x in xs]
    expected = F.cross_entropy(torch.cat(per_example), torch.cat(ys))
    torch.testing.assert_close(out.loss, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.prediction[1, :2], per_example[1], atol=1e-5, rtol=1e-5)


def test_input_noise_only_while_training():
    model = SequenceClassifier(2, input_size=3, hidden_size=4, input_noise=0.5)
    x = torch.randn(2, 5, 3)
    model.eval()
    assert torch.equal(model(x).prediction, model(x).prediction)
    model.train()
    assert not torch.equal(model(x).prediction, model(x).prediction)
    with pytest.raises(ValueError, match="feature sequences"):
        SequenceClassifier(2, vocab_size=5, input_noise=0.1)
