"""Every configuration in examples/ parses and names only real options."""

from pathlib import Path

import pytest

from rnnkit.config import build_config, load_toml

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_config_parses(path):
    config = build_config(load_toml(path))
    assert config.data.task in ("char-lm", "word-lm", "forecast", "classify", "tag", "seq2seq", "caption", "ntm-copy",
                                "ntm-repeat-copy", "ntm-recall", "tree-classify", "image-classify")
