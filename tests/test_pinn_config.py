"""params.yaml `pinn:` validation: one clear error naming the key and the allowed values."""
import re

import pytest
import yaml

from pinn.config import PinnConfig, validate
from pipeline.params import load_section


@pytest.mark.parametrize("section,key,allowed", [
    ({"problems": ["burgers", "navier"]}, "pinn.problems[1]", "burgers, poisson, helmholtz"),
    ({"depths": [4, 0]}, "pinn.depths[1]", "> 0"),
    ({"depths": [4, -8]}, "pinn.depths[1]", "> 0"),
    ({"width": 0}, "pinn.width", "> 0"),
    ({"optimizers": ["adamw", "sgd"]}, "pinn.optimizers[1]", "adamw, stablegrad"),
    ({"activation": "relu"}, "pinn.activation", "tanh"),
    ({"init": "xavier"}, "pinn.init", "gain, lsuv, lsuv-jacobian"),
    ({"stablegrad": {"statistic": "mad"}}, "pinn.stablegrad.statistic", "std, rms"),
    ({"stablegrad": {"bias": "all"}}, "pinn.stablegrad.bias", "shared, own, none"),
    ({"points": {"burgers": {"domain": -5}}}, "pinn.points.burgers.domain", "> 0"),
    ({"points": {"wave": {"domain": 5}}}, "pinn.points.wave", "burgers, poisson, helmholtz"),
    ({"ablation": {"depths": [3.5]}}, "pinn.ablation.depths[0]", "int"),
    ({"dtype": "float16"}, "pinn.dtype", "float32, float64"),
    ({"depths": "16"}, "pinn.depths", "list"),
    ({"width": "wide"}, "pinn.width", "int"),
    ({"compile": "yes"}, "pinn.compile", "bool"),
    ({"lr": -1e-3}, "pinn.lr", "> 0"),
])
def test_bad_values_name_key_and_allowed(section, key, allowed):
    with pytest.raises(ValueError, match=re.escape(key) + ":") as e:
        validate(section)
    assert allowed in str(e.value)


def test_unknown_key_lists_allowed_keys():
    with pytest.raises(ValueError, match=r"pinn\.widht: unknown key; allowed keys: .*width"):
        validate({"widht": 32})
    with pytest.raises(ValueError, match=r"pinn\.stablegrad\.ref: unknown key"):
        validate({"stablegrad": {"ref": "last"}})


def test_defaults_and_points_filled_in():
    cfg = validate({"problems": ["poisson"], "depths": [2, 4], "lr": "2e-3"})
    assert isinstance(cfg, PinnConfig)
    assert cfg.depths == [2, 4] and cfg.lr == 2e-3          # YAML 1.1 reads 2e-3 as a string
    assert set(cfg.points) == {"poisson"} and cfg.points["poisson"].domain > 0


def test_repository_params_are_valid():
    cfg = load_section("params.yaml", "pinn")
    assert max(cfg.depths) >= 16 and len(cfg.depths) >= 3
    assert set(cfg.problems) == {"burgers", "poisson", "helmholtz"}


def test_paper_params_are_valid():
    with open("params_paper.yaml") as f:
        cfg = validate(yaml.safe_load(f)["pinn"])
    assert len(cfg.seeds) >= 3 and max(cfg.depths) > 16


def test_missing_section(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("cnn: {}\n")
    with pytest.raises(ValueError, match="no `pinn:` section"):
        load_section(str(p), "pinn")
