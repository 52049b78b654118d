"""Classification and tagging metrics against scikit-learn and CoNLL's chunk rules."""

import numpy as np
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score

from rnnkit.metrics import bio_spans, confusion_matrix, is_bio, macro_f1, span_counts


def test_confusion_and_macro_f1_match_scikit_learn():
    rng = np.random.default_rng(0)
    actual = rng.integers(0, 5, 300)
    predicted = np.where(rng.random(300) < 0.6, actual, rng.integers(0, 5, 300))
    predicted[predicted == 4] = 3  # a class never predicted
    c = confusion_matrix(actual, predicted, 5)
    np.testing.assert_array_equal(c, sk_confusion(actual, predicted, labels=range(5)))
    assert abs(macro_f1(c) - f1_score(actual, predicted, average="macro")) < 1e-12


def test_bio_spans_follow_conlleval():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-PER"]
    assert bio_spans(tags) == {(0, 2, "PER"), (3, 5, "LOC"), (5, 6, "LOC"), (6, 7, "PER")}
    assert span_counts(["B-PER", "I-PER", "O"], ["B-PER", "O", "O"]) == (0, 1, 1)
    assert is_bio(["O", "B-X", "I-X"]) and not is_bio(["B", "O"])
