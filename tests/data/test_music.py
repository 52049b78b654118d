"""Piano-roll readers: the four Boulanger-Lewandowski sets have the documented shapes and counts (when
../shared/data is beside this checkout), JSB's .json and .mat hold the same rolls, and bad files are named."""

import json
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.music import read_music

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SETS = {  # (sequences, steps) of train / valid / test, as ../shared/data/README.md gives them
    "jsb_chorales/JSB_Chorales.mat": [(229, 13807), (76, 4602), (77, 4725)],
    "polyphonic_music_extra/Nottingham.mat": [(694, 176561), (173, 45513), (170, 44463)],
    "polyphonic_music_extra/Piano_midi.mat": [(87, 75911), (12, 8540), (25, 19036)],
    "polyphonic_music_extra/MuseData.mat": [(524, 245202), (135, 82755), (124, 64339)],
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_the_four_sets_have_the_documented_counts(name):
    if not (DATA / name).is_file():
        pytest.skip(f"../shared/data/{name} is not beside this checkout")
    parts = read_music(DATA / name)
    for part, (count, steps) in zip(("train", "valid", "test"), SETS[name]):
        rolls = parts[part]
        assert (len(rolls), sum(len(r) for r in rolls)) == (count, steps)
        assert all(r.shape[1] == 88 and r.dtype == np.float32 and set(np.unique(r)) <= {0.0, 1.0} for r in rolls)


def test_jsb_json_equals_the_mat_file():
    mat, js = DATA / "jsb_chorales/JSB_Chorales.mat", DATA / "jsb_chorales/jsb-chorales-quarter.json"
    if not (mat.is_file() and js.is_file()):
        pytest.skip("../shared/data/jsb_chorales is not beside this checkout")
    a, b = read_music(mat), read_music(js)
    for part in ("train", "valid", "test"):
        assert len(a[part]) == len(b[part]) and all(np.array_equal(x, y) for x, y in zip(a[part], b[part]))
    assert max(int(r.sum(1).max()) for r in a["train"]) == 4  # four voices at most


def _write(tmp_path, data, name="m.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_json_rolls_and_errors(tmp_path):
    good = {"train": [[[60, 64], [], [108]]], "valid": [[[21]]], "test": [[[60]]]}
    roll = read_music(_write(tmp_path, good))["train"][0]
    assert roll.shape == (3, 88) and roll[0, [39, 43]].tolist() == [1, 1] and roll[1].sum() == 0 and roll[2, 87] == 1
    with pytest.raises(ValueError, match=r"train\[0\]\[1\]: pitch 120 is not a piano key \(MIDI 21-108\)"):
        read_music(_write(tmp_path, {**good, "train": [[[60], [120]]]}))
    with pytest.raises(ValueError, match=r"expected \{\"train\": \[...\], \"valid\""):
        read_music(_write(tmp_path, {"train": []}))
    with pytest.raises(ValueError, match="the test part has no sequences"):
        read_music(_write(tmp_path, {**good, "test": []}))
    with pytest.raises(ValueError, match=r"music files are .mat .* or .json"):
        read_music(_write(tmp_path, good, "m.txt"))
    with pytest.raises(ValueError, match="no such file"):
        read_music(tmp_path / "missing.mat")


def test_mat_errors(tmp_path):
    from scipy.io import savemat

    cells = np.empty((1, 1), dtype=object)
    cells[0, 0] = np.zeros((3, 88), np.uint8)
    savemat(tmp_path / "a.mat", {"traindata": cells, "validdata": cells})
    with pytest.raises(ValueError, match=r"missing \['testdata'\]"):
        read_music(tmp_path / "a.mat")
    bad = np.empty((1, 1), dtype=object)
    bad[0, 0] = np.zeros((3, 87), np.uint8)
    savemat(tmp_path / "b.mat", {"traindata": cells, "validdata": cells, "testdata": bad})
    with pytest.raises(ValueError, match=r"testdata\{1\}: expected a \(T, 88\) piano roll"):
        read_music(tmp_path / "b.mat")
