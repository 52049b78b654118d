"""Typed configs: TOML and dotted overrides from the same dataclasses; bad keys and values named."""

import pytest

from rnnkit.cli.main import main
from rnnkit.config import build_config, load_toml, option_table


def test_toml_then_overrides(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('[model]\ncell = "mut1"\nhidden_size = 32\n[train]\nlr = 0.01\ntensorboard = true\n')
    cfg = build_config(load_toml(f), {"train.lr": "3e-3", "data.seq_length": "64"})
    assert (cfg.model.cell, cfg.model.hidden_size, cfg.train.lr, cfg.data.seq_length) == ("mut1", 32, 3e-3, 64)
    assert cfg.train.tensorboard is True and cfg.model.num_layers == 2  # defaults fill the rest


@pytest.mark.parametrize("base,overrides,match", [
    ({"train": {"lrr": 1}}, None, r"unknown key 'train.lrr'; valid keys: .*lr"),
    ({"optim": {}}, None, r"unknown section 'optim'; valid sections: model, data, train"),
    (None, {"train.optimizer": "adamm"}, r"train.optimizer must be one of \['adam', 'adamw', 'sgd'"),
    (None, {"model.cell": "lstn"}, r"model.cell must be one of \[.*'lstm'"),
    (None, {"train.steps": "ten"}, r"train.steps must be an integer; got 'ten'"),
    (None, {"train.steps": "0"}, r"train.steps must be >= 1; got 0"),
    (None, {"model.dropout": "1.5"}, r"model.dropout must be \[0.0, 0.99\]; got 1.5"),
    (None, {"model.tie_weights": "maybe"}, r"model.tie_weights must be true or false"),
    (None, {"lr": "1"}, r"unknown option '--lr'"),
    *[(None, {key: value}, rf"{key} must be a finite number; got '{value}'")
      for key in ("train.clip_norm", "train.clip_value", "train.time_limit", "train.lr", "train.decay_factor",
                  "train.momentum", "data.val_fraction", "model.dropout") for value in ("nan", "inf", "1e400")],
    ({"train": {"lr": float("nan")}}, None, r"train.lr must be a finite number; got nan"),
    (None, {"train.lr": "5000"}, r"train.lr must be \[0.0, 1000.0\]; got 5000"),
    (None, {"model.cell_options": "forget_bias = nan"}, r"model.cell_options: forget_bias must be finite"),
    (None, {"model.cell": "leaky", "model.cell_options": "tau = [1, inf]"}, r"tau must be finite"),
    ({"model": {"tie_weights": True, "embedding_size": 8, "hidden_size": 16}}, None, "embedding_size == model"),
])
def test_bad_configs_are_named(base, overrides, match):
    with pytest.raises(ValueError, match=match):
        build_config(base, overrides)


def test_bad_toml_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[model\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_toml(f)
    with pytest.raises(ValueError, match="no such file"):
        load_toml(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="is a directory; expected a TOML file"):
        load_toml(tmp_path)
    f.write_bytes(b"[model]\ncell = '\xe9\xff'\n")  # latin-1 / binary bytes
    with pytest.raises(ValueError, match="not UTF-8 text; expected a TOML file"):
        load_toml(f)


def test_help_lists_every_option_with_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for key, _, _, _ in option_table():
        assert f"--{key}" in out
    assert "(default: 'lstm')" in out and "(default: 0.002)" in out


def test_cli_rejects_unknown_and_bad_values(capsys):
    assert main(["train", "--train.lrr", "3"]) == 2
    assert "unknown key 'train.lrr'; valid keys:" in capsys.readouterr().err
    assert main(["train", "--model.cell", "lstn"]) == 2
    assert "model.cell must be one of" in capsys.readouterr().err
