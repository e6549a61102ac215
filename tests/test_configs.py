"""The structured config: every shipped config loads, and bad keys / values fail early and clearly."""

from pathlib import Path

import pytest
import yaml

from motif.config import ConfigError, load_config, save_config

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
                 if not p.name.startswith("_"))  # _base.yaml holds shared defaults, not a runnable config


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.optim.lr > 0 and cfg.video.window_size >= 1


def test_base_chain_and_overrides(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("optim:\n  lr: 0.5\n  batch_size: 8\nmodel:\n  tau: 2.0\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\noptim:\n  lr: 0.25\ndata:\n  format: synthetic_order\n")
    cfg = load_config(child, ["optim.batch_size=4", "name=${data.format}-run"])
    assert cfg.optim.lr == 0.25  # child wins over base
    assert cfg.optim.batch_size == 4  # command line wins over files
    assert cfg.model.tau == 2.0  # inherited from base
    assert cfg.name == "synthetic_order-run"  # interpolation resolved


def test_published_defaults():
    cfg = load_config("configs/ucf101.yaml")
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.batch_size) == (1e-3, 1e-2, 32)
    assert (cfg.optim.patience, cfg.optim.grad_clip, cfg.optim.label_smoothing) == (50, 1.0, 0.1)
    assert (cfg.model.num_layers, cfg.model.head_dim, cfg.model.tau) == (1, 1, 1.0)
    assert list(cfg.data.splits) == [1, 2, 3]
    assert load_config("configs/breakfast.yaml").video.window_size == 32


@pytest.mark.parametrize("override, key, suggestion", [
    ("optim.lr_rate=1", "optim.lr_rate", "optim.lr"),
    ("optimm.lr=1", "optimm.lr", "optim.lr"),
    ("model.num_layer=2", "model.num_layer", "model.num_layers"),
])
def test_unknown_override_suggests_closest_key(override, key, suggestion):
    with pytest.raises(ConfigError, match=rf"Unknown config key '{key}'.*Did you mean '{suggestion}'"):
        load_config("configs/synthetic_order.yaml", [override])


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  format: synthetic_order\noptim:\n  batchsize: 3\n")
    with pytest.raises(ConfigError, match=r"optim.batchsize.*bad.yaml.*Did you mean 'optim.batch_size'"):
        load_config(bad)


@pytest.mark.parametrize("override, key", [("optim.batch_size=abc", "optim.batch_size"),
                                           ("model.tau=fast", "model.tau"), ("model.compile=maybe", "model.compile")])
def test_wrong_type_names_key(override, key):
    with pytest.raises(ConfigError, match=rf"'{key}'"):
        load_config("configs/synthetic_order.yaml", [override])


def test_invalid_choice_lists_choices():
    with pytest.raises(ConfigError, match=r"model.variant.*motif, full, space_time"):
        load_config("configs/synthetic_order.yaml", ["model.variant=lstm"])
    with pytest.raises(ConfigError, match=r"'model.precision' is '16'; choose one of 32, bf16"):
        load_config("configs/synthetic_order.yaml", ["model.precision=16"])
    cfg = load_config("configs/synthetic_order.yaml", ["model.precision=bf16", "model.compile=true"])
    assert (cfg.model.precision, cfg.model.compile) == ("bf16", True)
    assert load_config("configs/synthetic_order.yaml", ["model.precision=32"]).model.precision == "32"


def test_missing_root_and_malformed_override(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("data:\n  format: list\n")
    with pytest.raises(ConfigError, match="data.root"):
        load_config(cfg_file)
    with pytest.raises(ConfigError, match="key=value"):
        load_config("configs/synthetic_order.yaml", ["optim.lr"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config("configs/synthetic_order.yaml", ["optim.lr=0.002"])
    save_config(cfg, tmp_path / "config.yaml")
    tree = yaml.safe_load((tmp_path / "config.yaml").read_text())
    again = load_config(tmp_path / "config.yaml")
    assert tree["optim"]["lr"] == 0.002 and again.optim.lr == 0.002
