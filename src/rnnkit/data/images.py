"""Images with captions (the ``caption`` task), and the generated digit-strip captioning set.

Inputs:

* a captions file of ``image<TAB>caption`` lines, each image a PNG (or any format Pillow reads) named relative to
  the file's folder; an image with several captions has several lines;
* an ``.npz`` file with ``captions`` (N strings) and either ``images`` (N, H, W) or (N, H, W, C), 0-255 integers or
  floats in [0, 1], or ``features`` (N, positions, F) / (N, F): vectors a user computed (any CNN's feature map).

Images become float32 (C, H, W) arrays in [0, 1]; every image of a run must have the size of the first.

``digit_strips(n, seed, part)``: strips of 3-5 of scikit-learn's bundled 8×8 handwritten digits side by side,
padded to 8×40, captioned with their digit words ("three one four"). The ``train`` and ``test`` parts draw from
disjoint halves of the 1,797 digit images, and ``exclude`` keeps digit sequences seen in training out of a test set.

``moving_digits(n, frames, size, digits, seed, part)``: the Moving MNIST task of Srivastava et al. (2015) made from
the same bundled digits: each sequence shows ``digits`` digits gliding across a size × size frame, bouncing off its
edges (for next-frame prediction, e.g. with :class:`rnnkit.layers.ConvLSTM`).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from .examples import _error, _nonempty
from .text import read_text

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def image_array(array, where: str) -> np.ndarray:
    """An image as float32 (C, H, W) in [0, 1] from (H, W) or (H, W, C) integers 0-255 or floats in [0, 1]."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or min(a.shape[:2]) < 1:
        raise ValueError(f"{where}: expected an image (height, width) or (height, width, 1|3|4 channels); got shape "
                         f"{a.shape}")
    if a.dtype.kind in "ui":
        a = a.astype(np.float32) / 255.0
    a = a.astype(np.float32)
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise ValueError(f"{where}: pixel values must be 0-255 integers or floats in [0, 1]")
    return np.ascontiguousarray(a[:, :, :3].transpose(2, 0, 1))


def read_image(path: str | Path, channels: int | None = None) -> np.ndarray:
    """A picture file as (C, H, W) float32 in [0, 1]: grayscale (C = 1) or RGB (C = 3); ``channels`` converts."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            mode = {1: "L", 3: "RGB"}.get(channels) or ("L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB")
            return image_array(np.asarray(img.convert(mode)), str(path))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None


def read_captions(path: str | Path) -> list[tuple[np.ndarray, str]]:
    """(image or features array, caption) pairs of a captions file or an ``.npz`` file (see the module)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return _read_npz(path)
    pairs, cache = [], {}
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        name, tab, caption = line.partition("\t")
        if not tab or not name.strip() or not caption.strip():
            raise _error(path, n, "expected image<TAB>caption (the image named relative to this file)")
        image_path = path.parent / name.strip()
        if image_path not in cache:
            cache[image_path] = read_image(image_path)
        pairs.append((cache[image_path], caption.strip()))
    return _nonempty(pairs, path)


def _read_npz(path: Path) -> list[tuple[np.ndarray, str]]:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if "captions" not in data or ("images" in data) == ("features" in data):
        raise ValueError(f"{path}: expected arrays 'captions' and one of 'images' or 'features'; found "
                         f"{sorted(data.files)}")
    captions = [str(c).strip() for c in data["captions"]]
    key = "images" if "images" in data else "features"
    values = data[key]
    if len(values) != len(captions):
        raise ValueError(f"{path}: {len(values)} {key} but {len(captions)} captions")
    if any(not c for c in captions):
        raise ValueError(f"{path}: caption {captions.index('')} is empty")
    if key == "images":
        arrays = [image_array(v, f"{path}: image {i}") for i, v in enumerate(values)]
    else:
        if values.ndim not in (2, 3) or not np.isfinite(values).all():
            raise ValueError(f"{path}: features must be finite (N, positions, F) or (N, F); got shape {values.shape}")
        arrays = list(values.astype(np.float32))
    return _nonempty(list(zip(arrays, captions)), path)


def _bundled_digits(part: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits in [0, 1] and their labels: the ``train`` or ``test`` half (alternate images)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ValueError("this set is generated from scikit-learn's bundled digits: pip install scikit-learn") from None
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test'; got {part!r}")
    digits = load_digits()
    half = np.arange(len(digits.target)) % 2 == (0 if part == "train" else 1)
    return digits.images[half] / 16.0, digits.target[half]


def moving_digits(n: int, frames: int = 20, size: int = 24, digits: int = 2, seed: int = 0,
                  part: str = "train") -> np.ndarray:
    """``n`` sequences (n, frames, 1, size, size) float32 in [0, 1]: ``digits`` 8×8 digits per sequence, each starting
    at a random place with a random direction and a speed of 1-2 pixels per frame, reflected at the frame's edges;
    where digits overlap the brighter pixel shows (Srivastava et al. 2015's Moving MNIST, on the bundled digits)."""
    if size < 8 or frames < 2 or digits < 1 or n < 1:
        raise ValueError(f"moving_digits needs n >= 1, frames >= 2, digits >= 1 and size >= 8 (the digits are 8×8); "
                         f"got n={n}, frames={frames}, digits={digits}, size={size}")
    images, _ = _bundled_digits(part)
    rng = np.random.default_rng([seed, 0 if part == "train" else 1])
    out = np.zeros((n, frames, 1, size, size), dtype=np.float32)
    room = size - 8
    for i in range(n):
        for _ in range(digits):
            image = images[rng.integers(len(images))]
            position = rng.uniform(0, room, 2)
            angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(1, 2)
            velocity = speed * np.array([np.sin(angle), np.cos(angle)])
            for t in range(frames):
                r, c = np.round(position).astype(int)
                patch = out[i, t, 0, r:r + 8, c:c + 8]
                np.maximum(patch, image, out=patch)
                position = position + velocity
                for axis in range(2):  # bounce: reflect the position into [0, room] and turn round
                    if position[axis] < 0 or position[axis] > room:
                        position[axis] = -position[axis] if position[axis] < 0 else 2 * room - position[axis]
                        velocity[axis] = -velocity[axis]
    return out


def digit_strips(n: int, seed: int = 0, part: str = "train", exclude=()) -> list[tuple[np.ndarray, str]]:
    """``n`` strips of 3-5 digit images with their captions; ``exclude``: digit sequences (as captions) to avoid."""
    images, labels = _bundled_digits(part)
    by_digit = [np.flatnonzero(labels == d) for d in range(10)]
    rng, seen, out = random.Random(f"digit-strips-{part}-{seed}"), set(exclude), []
    while len(out) < n:
        sequence = [rng.randrange(10) for _ in range(rng.randint(3, 5))]
        caption = " ".join(WORDS[d] for d in sequence)
        if caption in seen:
            continue
        seen.add(caption)
        strip = np.zeros((1, 8, 40), dtype=np.float32)
        for k, d in enumerate(sequence):
            strip[0, :, 8 * k:8 * k + 8] = images[rng.choice(by_digit[d])]
        out.append((strip, caption))
    return out


def write_caption_folder(pairs: list[tuple[np.ndarray, str]], folder: str | Path) -> Path:
    """PNG files and a ``captions.txt`` that :func:`read_captions` reads back; returns the captions file."""
    from PIL import Image

    from ..io import write_bytes_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (image, caption) in enumerate(pairs):
        name = f"{i:06d}.png"
        pixels = np.rint(image.transpose(1, 2, 0) * 255).astype(np.uint8)
        Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(folder / name)
        lines.append(f"{name}\t{caption}\n")
    write_bytes_atomic(folder / "captions.txt", "".join(lines).encode())
    return folder / "captions.txt"
