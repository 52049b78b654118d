"""Polyphonic music as piano rolls: 88 binary keys per time step (Boulanger-Lewandowski, Bengio & Vincent 2012).

Two file forms, each holding the train / valid / test split of the benchmark:

* ``.mat`` (MATLAB v5, the Boulanger-Lewandowski files of JSB Chorales, Nottingham, Piano-midi.de and MuseData):
  ``traindata``, ``validdata``, ``testdata``, each a 1×N cell of (T, 88) binary matrices, column j = MIDI pitch
  21 + j (A0 … C8). Read with ``scipy.io.loadmat`` (no pickle).
* ``.json``: ``{"train" | "valid" | "test": [sequence[step[MIDI pitches sounding]]]}`` (czhuang's
  jsb-chorales-quarter.json); pitches outside 21-108 are an error.

Every sequence becomes a float32 (T, 88) array of 0/1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

KEYS = 88
LOWEST_PITCH = 21  # MIDI number of column 0 (A0)
PARTS = ("train", "valid", "test")
_MAT_NAMES = {"train": "traindata", "valid": "validdata", "test": "testdata"}


def _check_roll(roll, where: str) -> np.ndarray:
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != KEYS or roll.shape[0] == 0:
        raise ValueError(f"{where}: expected a (T, {KEYS}) piano roll with T >= 1; got shape {roll.shape}")
    if not np.isin(roll, (0, 1)).all():
        raise ValueError(f"{where}: a piano roll holds 0 or 1 per key; found {roll[~np.isin(roll, (0, 1))].flat[0]}")
    return roll.astype(np.float32)


def _read_mat(path: Path) -> dict[str, list[np.ndarray]]:
    from scipy.io import loadmat

    try:
        data = loadmat(str(path))
    except (OSError, ValueError, TypeError, NotImplementedError) as e:
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({e})") from None
    missing = [name for name in _MAT_NAMES.values() if name not in data]
    if missing:
        found = sorted(k for k in data if not k.startswith("__"))
        raise ValueError(f"{path}: expected cells {list(_MAT_NAMES.values())}; missing {missing} (found {found})")
    parts = {}
    for part, name in _MAT_NAMES.items():
        cell = data[name]
        if cell.dtype != object:
            raise ValueError(f"{path}: {name} must be a cell array of (T, {KEYS}) matrices; got {cell.dtype}")
        parts[part] = [_check_roll(r, f"{path}: {name}{{{i + 1}}}") for i, r in enumerate(cell.ravel())]
    return parts


def _read_json(path: Path) -> dict[str, list[np.ndarray]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(p), list) for p in PARTS):
        raise ValueError(f"{path}: expected {{\"train\": [...], \"valid\": [...], \"test\": [...]}}, each a list of "
                         "sequences of time steps of MIDI pitches")
    parts = {}
    for part in PARTS:
        rolls = []
        for i, sequence in enumerate(data[part]):
            where = f"{path}: {part}[{i}]"
            if not isinstance(sequence, list) or not sequence:
                raise ValueError(f"{where}: expected a non-empty list of time steps")
            roll = np.zeros((len(sequence), KEYS), np.float32)
            for t, pitches in enumerate(sequence):
                if not isinstance(pitches, list) or not all(isinstance(p, (int, float)) for p in pitches):
                    raise ValueError(f"{where}[{t}]: expected a list of MIDI pitch numbers; got {pitches!r}")
                for p in pitches:
                    if not (LOWEST_PITCH <= p < LOWEST_PITCH + KEYS) or p != int(p):
                        raise ValueError(f"{where}[{t}]: pitch {p} is not a piano key (MIDI {LOWEST_PITCH}-"
                                         f"{LOWEST_PITCH + KEYS - 1})")
                    roll[t, int(p) - LOWEST_PITCH] = 1.0
            rolls.append(roll)
        parts[part] = rolls
    return parts


def read_music(path: str | Path) -> dict[str, list[np.ndarray]]:
    """``{"train", "valid", "test"}`` → lists of (T, 88) float32 piano rolls from a ``.mat`` or ``.json`` file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file; expected a Boulanger-Lewandowski .mat file or a .json of MIDI "
                         "pitches (e.g. ../shared/data/jsb_chorales/JSB_Chorales.mat)")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        parts = _read_mat(path)
    elif suffix == ".json":
        parts = _read_json(path)
    else:
        raise ValueError(f"{path}: music files are .mat (Boulanger-Lewandowski piano rolls) or .json (MIDI pitches "
                         f"per step); got {suffix or 'no extension'}")
    for part, rolls in parts.items():
        if not rolls:
            raise ValueError(f"{path}: the {part} part has no sequences")
    return parts
