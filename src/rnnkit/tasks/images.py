"""``image-classify``: a class per image, with a 2-D recurrent network (ReNet), a row-by-row RNN or a small CNN
(``model.image_model``) on equal terms.

Data: an ``.npz`` file with ``images`` (N, H, W) or (N, H, W, C) (0-255 integers or floats in [0, 1]) and
``labels`` (N,), every image the size of the first; or the built-in ``digits`` / ``digits-test``: scikit-learn's
bundled 1,797 8×8 handwritten digits, split once with a fixed seed into 1,438 images to train on (the run holds
out ``data.val_fraction`` of them for validation) and 359 test images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import RunConfig, cell_kwargs
from ..data.batches import ExampleBatches
from ..data.images import image_array
from ..io import write_json_atomic
from ..models.image_classifier import ImageClassifier
from .base import Task, hold_out
from .sequences import _ClassCounts, _read_json, _sorted_labels

DIGITS = ("digits", "digits-test")
DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED = 0.2, 0


def load_digits_split(part: str) -> tuple[list[np.ndarray], list[str]]:
    """scikit-learn's digits as (1, 8, 8) float32 images in [0, 1] and their labels: the ``digits`` (training) or
    ``digits-test`` part of a fixed split (20% test, permutation seed 0, the same on every machine)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ValueError("the digits set is scikit-learn's bundled digits: pip install scikit-learn") from None
    digits = load_digits()
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(digits.target))
    n_test = int(len(order) * DIGITS_TEST_FRACTION)
    pick = order[-n_test:] if part == "digits-test" else order[:-n_test]
    images = [(digits.images[i] / 16.0).astype(np.float32)[None] for i in pick]
    return images, [str(int(digits.target[i])) for i in pick]


def read_labelled_images(path: str) -> tuple[list[np.ndarray], list[str]]:
    """(images as (C, H, W) float32, labels) of an ``.npz`` file or a built-in digits part; every image must have
    the size of the first (the error names the first one that does not)."""
    if path in DIGITS:
        return load_digits_split(path)
    if Path(path).suffix.lower() != ".npz":
        raise ValueError(f"{path}: image-classify reads an .npz file with 'images' and 'labels', or 'digits' / "
                         "'digits-test'")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if "images" not in data or "labels" not in data:
        raise ValueError(f"{path}: expected arrays 'images' (N, H, W[, C]) and 'labels' (N,); found "
                         f"{sorted(data.files)}")
    raw, labels = data["images"], [str(v) for v in data["labels"]]
    if len(raw) != len(labels) or len(raw) == 0:
        raise ValueError(f"{path}: {len(raw)} images but {len(labels)} labels; need one label per image")
    images = [image_array(v, f"{path}: image {i}") for i, v in enumerate(raw)]
    return images, labels


class ImageClassifyTask(Task):
    """Images → a class. Metrics: loss (cross-entropy), accuracy, macro-F1 (and the confusion matrix PNG)."""

    name = "image-classify"

    def __init__(self, config: RunConfig, run_dir: Path | None = None, with_data: bool = True):
        self.config = config
        d = config.data
        self.labels, self.image_shape = None, None
        if run_dir is not None:
            saved = _read_json(Path(run_dir) / "labels.json", "label set")
            if not isinstance(saved.get("labels"), list) or len(saved.get("image_shape", [])) != 3:
                raise ValueError(f"{run_dir}/labels.json: expected {{\"labels\": [...], \"image_shape\": [C, H, W]}}")
            self.labels, self.image_shape = saved["labels"], tuple(saved["image_shape"])
        if not with_data:
            self.description = f"{len(self.labels)} classes, images {'×'.join(map(str, self.image_shape))}"
            return
        examples = list(zip(*self.read(d.path or "digits")))
        if d.val_path:
            train, val = examples, list(zip(*self.read(d.val_path)))
        else:
            train, val = hold_out(examples, d.val_fraction, config.train.seed, d.path or "digits")
        if self.labels is None:
            self.labels = _sorted_labels(label for _, label in train)
            if len(self.labels) < 2:
                raise ValueError(f"{d.path}: the training images have only one class; need two or more")
        self.train = self.batches(train, d.batch_size, seed=config.train.seed)
        self.val = self.batches(val, min(d.batch_size, len(val)))
        self.description = (f"{len(train):,} training and {len(val):,} validation images of "
                            f"{'×'.join(map(str, self.image_shape))}, {len(self.labels)} classes, "
                            f"model {config.model.image_model}")

    def read(self, path: str) -> tuple[list[np.ndarray], list[str]]:
        images, labels = read_labelled_images(path)
        shape = self.image_shape or images[0].shape
        for i, image in enumerate(images):
            if image.shape != tuple(shape):
                source = "as this run was trained on" if self.image_shape else "as image 0"
                raise ValueError(f"{path}: image {i} has shape {image.shape} (channels, height, width); expected "
                                 f"{tuple(shape)} {source}")
        self.image_shape = tuple(shape)
        return images, labels

    def batches(self, examples, batch_size: int, seed: int = 0) -> ExampleBatches:
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = sorted({label for _, label in examples} - set(index))
        if unknown:
            raise ValueError(f"label {unknown[0]!r} was not seen in training; known labels: {self.labels}")
        inputs = [torch.from_numpy(image) for image, _ in examples]
        return ExampleBatches(inputs, [index[label] for _, label in examples], batch_size, seed=seed, bucket=False)

    def file_batches(self, path: str) -> ExampleBatches:
        examples = list(zip(*self.read(path)))
        return self.batches(examples, min(self.config.data.batch_size, len(examples)))

    def save_artifacts(self, run_dir: Path) -> list[str]:
        write_json_atomic(run_dir / "labels.json", {"labels": self.labels, "image_shape": list(self.image_shape)})
        return ["labels.json"]

    @classmethod
    def from_run(cls, config: RunConfig, run_dir: Path, with_data: bool = True) -> ImageClassifyTask:
        return cls(config, run_dir, with_data=with_data)

    def build_model(self) -> nn.Module:
        m = self.config.model
        channels = tuple(int(c) for c in m.cnn_channels.split(",") if c.strip())
        return ImageClassifier(len(self.labels), self.image_shape, m.image_model, m.hidden_size, m.num_layers, m.cell,
                               m.patch, channels, m.dropout, **cell_kwargs(m))

    def collector(self) -> _ClassCounts:
        return _ClassCounts(len(self.labels))

    @torch.no_grad()
    def predict(self, model: nn.Module, batches: ExampleBatches) -> list[dict]:
        """One dict per image in file order: the predicted label, every label's probability, the true label."""
        rows = {}
        for batch in batches.sequential():
            probs = model(batch.inputs).prediction.softmax(-1)
            for r, i in enumerate(batch.index.tolist()):
                rows[i] = {"index": i, "label": self.labels[int(probs[r].argmax())],
                           "true": self.labels[int(batch.targets[r])],
                           "probabilities": {lab: round(float(p), 6) for lab, p in zip(self.labels, probs[r])}}
        return [rows[i] for i in sorted(rows)]
