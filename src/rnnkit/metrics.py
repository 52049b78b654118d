"""Forecast accuracy metrics (Hyndman & Koehler 2006 for MASE; sMAPE as in the M4 competition) and
classification / tagging metrics (macro-F1 as scikit-learn's ``f1_score(average="macro")``; spans as CoNLL's
conlleval reads BIO tags)."""

from __future__ import annotations

import numpy as np


def rmse(actual, forecast) -> float:
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    return float(np.sqrt(np.mean((a - f) ** 2)))


def mae(actual, forecast) -> float:
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    return float(np.mean(np.abs(a - f)))


def mase(actual, forecast, history, season: int = 1) -> float:
    """MAE scaled by the in-sample MAE of the (seasonal) naive forecast on ``history``: < 1 beats it."""
    h = np.asarray(history, float)
    if len(h) <= season:
        raise ValueError(f"MASE needs more than season={season} history points; got {len(h)}")
    scale = np.mean(np.abs(h[season:] - h[:-season]))
    if scale == 0:
        raise ValueError("MASE is undefined for a constant history (the naive forecast has zero error)")
    return mae(actual, forecast) / float(scale)


def smape(actual, forecast) -> float:
    """Symmetric MAPE in percent: 200/n Σ |a - f| / (|a| + |f|) (terms with a = f = 0 count as 0)."""
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    denom = np.abs(a) + np.abs(f)
    terms = np.where(denom == 0, 0.0, np.abs(a - f) / np.where(denom == 0, 1.0, denom))
    return float(200.0 * np.mean(terms))


def forecast_metrics(actual, forecast, history, season: int = 1) -> dict:
    return {"rmse": rmse(actual, forecast), "mae": mae(actual, forecast),
            "mase": mase(actual, forecast, history, season), "smape": smape(actual, forecast)}


# ---- classification and tagging ---------------------------------------------------------------------------
def confusion_matrix(actual, predicted, num_classes: int) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    a, p = np.asarray(actual, int), np.asarray(predicted, int)
    return np.bincount(a * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def macro_f1(confusion: np.ndarray) -> float:
    """Mean over the classes that occur (in truth or prediction) of F1 = 2 TP / (2 TP + FP + FN)."""
    tp = np.diag(confusion).astype(float)
    fp, fn = confusion.sum(0) - tp, confusion.sum(1) - tp
    present = (tp + fp + fn) > 0
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=present)
    return float(f1[present].mean()) if present.any() else 0.0


def bio_spans(tags: list[str]) -> set[tuple[int, int, str]]:
    """(start, end, type) of the chunks in a BIO / IOB tag sequence (an I- after O or another type opens a chunk,
    as conlleval does)."""
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, t = tag.partition("-")
        opens = prefix == "B" or (prefix == "I" and (kind != t or start is None))
        if start is not None and (prefix == "O" or opens):
            spans.add((start, i, kind))
            start, kind = None, None
        if opens:
            start, kind = i, t
    return spans


def f1_from_counts(correct: int, predicted: int, actual: int) -> float:
    return 2 * correct / (predicted + actual) if predicted + actual else 0.0


def span_counts(actual_tags: list[str], predicted_tags: list[str]) -> tuple[int, int, int]:
    """(correct, predicted, actual) chunk counts of one sequence."""
    a, p = bio_spans(actual_tags), bio_spans(predicted_tags)
    return len(a & p), len(p), len(a)


def is_bio(tags) -> bool:
    """Tags that read as BIO chunks: O, and B-/I- prefixed names."""
    tags = set(tags)
    return any(t.startswith(("B-", "I-")) for t in tags) and all(t == "O" or t.startswith(("B-", "I-")) for t in tags)
