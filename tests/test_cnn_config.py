"""Validation of the `cnn:` params section: one clear error naming the key, before any training."""
import pytest
import yaml

from cnn.config import validate
from cnn.stages import train as stage
from pipeline.params import load_section


def test_defaults_validate():
    cfg = validate({})
    assert cfg.archs == ["resnet50", "efficientnet_v2_s"] and cfg.num_classes == 10


@pytest.mark.parametrize("section, match", [
    ({"archs": ["resnet50", "resnet18"]}, r"cnn\.archs\[1\].*resnet50 \| efficientnet_v2_s"),
    ({"variants": ["bn-adamw", "nobn-adamw", "nobn-sgd"]}, r"cnn\.variants\[2\].*nobn-stablegrad"),
    ({"variants": []}, r"cnn\.variants"),
    ({"lr": -1e-3}, r"cnn\.lr"),
    ({"lr": "fast"}, r"cnn\.lr"),
    ({"epochs": 0}, r"cnn\.epochs"),
    ({"batch_size": 3.5}, r"cnn\.batch_size"),
    ({"learning_rate": 1e-3}, r"unknown key `cnn\.learning_rate`"),
    ({"stablegrad": {"reference": "first"}}, r"cnn\.stablegrad\.reference.*last \| output"),
    ({"stablegrad": {"momentum": 1}}, r"unknown key `cnn\.stablegrad\.momentum`"),
    ({"dataset": "mnist"}, r"cnn\.dataset.*digits \| cifar100 \| imagenet"),
    ({"dataset": "imagenet"}, r"cnn\.imagenet_path.*not set"),
    ({"dataset": "imagenet", "imagenet_path": "/nonexistent/imagenet"}, r"/nonexistent/imagenet/train"),
    ({"download": "yes"}, r"cnn\.download"),
    ({"val_fraction": 0.8}, r"cnn\.val_fraction.*<= 0\.5"),
    ({"val_fraction": -0.1}, r"cnn\.val_fraction"),
    ({"val_fraction": "10%"}, r"cnn\.val_fraction"),
    ({"seeds": []}, r"cnn\.seeds.*non-empty list of distinct integers"),
    ({"seeds": [0, 0]}, r"cnn\.seeds.*distinct"),
    ({"seeds": 3}, r"cnn\.seeds"),
    ({"seeds": [0, -1]}, r"cnn\.seeds\[1\].*integer >= 0"),
    ({"seed": 0}, r"unknown key `cnn\.seed`.*seeds"),
])
def test_bad_values_name_the_key(section, match):
    with pytest.raises(ValueError, match=match):
        validate(section)


def test_cifar_offline_fails_at_validation(tmp_path):
    with pytest.raises(ValueError, match="CIFAR-100 is not in"):
        validate({"dataset": "cifar100", "data_root": str(tmp_path), "download": False})


def test_stage_exits_2_with_message_before_training(tmp_path, capsys):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"pinn": {}, "cnn": {"variants": ["bn-adamw", "nobn-adam"]}}))
    rc = stage.main(["--arch", "resnet50", "--variant", "bn-adamw", "--out", str(tmp_path / "run"),
                     "--params", str(p)])
    assert rc == 2
    assert "cnn.variants[1]" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    rc = stage.main(["--arch", "resnet18", "--variant", "bn-adamw", "--out", str(tmp_path / "run"),
                     "--params", str(p)])
    assert rc == 2 and "--arch" in capsys.readouterr().err


def test_load_section_reads_the_repo_params():
    cfg = load_section("params.yaml", "cnn")
    assert set(cfg.archs) <= {"resnet50", "efficientnet_v2_s"}
