"""Validation of the `cnn:` params section: one clear line naming the key, before any training; data paths
are checked by the stage that reads them, not by the params check."""
import copy
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, committed

from cnn.config import load, validate
from cnn.data import check_cifar_available
from cnn.stages import train as stage


def _with(**kw):
    return {**copy.deepcopy(committed()["cnn"]), **kw}


@pytest.mark.parametrize("edit, match", [
    ({"archs": ["resnet50", "vgg_unknown"]}, r"`cnn\.archs\[1\]`.*torchvision classification model builder"),
    ({"archs": ["resnet50", "resnet50"]}, r"`cnn\.archs\[1\]`.*each value once"),
    ({"variants": {"bn-adamw": {}, "nobn-sgd": {}}}, r"`cnn\.variants\.nobn-sgd`.*nobn-stablegrad"),
    ({"variants": {}}, r"`cnn\.variants`"),
    ({"variants": {"nobn-agc": {"clipping": "x", "eps": 1e-3}}}, r"`cnn\.variants\.nobn-agc\.clipping`"),
    ({"variants": {"nobn-stablegrad": {"reference": "first", "statistic": "std", "bias": "shared"}}},
     r"`cnn\.variants\.nobn-stablegrad\.reference`.*last \| output"),
    ({"variants": {"nobn-stablegrad": {"momentum": 1}}}, r"unknown key `cnn\.variants\.nobn-stablegrad\.momentum`"),
    ({"lr": -1e-3}, r"`cnn\.lr`"),
    ({"lr": "fast"}, r"`cnn\.lr`"),
    ({"lr": float("inf")}, r"`cnn\.lr`.*finite"),
    ({"epochs": 0}, r"`cnn\.epochs`"),
    ({"batch_size": 3.5}, r"`cnn\.batch_size`"),
    ({"learning_rate": 1e-3}, r"unknown key `cnn\.learning_rate`"),
    ({"dataset": "mnist"}, r"`cnn\.dataset`.*digits \| cifar100 \| imagenet"),
    ({"dataset": "imagenet"}, r"`cnn\.imagenet_path`"),
    ({"download": "yes"}, r"`cnn\.download`"),
    ({"val_fraction": 0.8}, r"`cnn\.val_fraction`.*<= 0\.5"),
    ({"val_fraction": "10%"}, r"`cnn\.val_fraction`"),
    ({"seeds": []}, r"`cnn\.seeds`"),
    ({"seeds": [0, 0]}, r"`cnn\.seeds\[1\]`.*each value once"),
    ({"seeds": 3}, r"`cnn\.seeds`"),
    ({"seeds": [0, -1]}, r"`cnn\.seeds\[1\]`.*integer >= 0"),
    ({"seed": 0}, r"unknown key `cnn\.seed`"),
])
def test_bad_values_name_the_key(edit, match):
    with pytest.raises(ValueError, match=match):
        validate(_with(**edit))


def test_any_torchvision_classification_builder_is_an_arch():
    assert validate(_with(archs=["resnet18", "mobilenet_v3_small"])).archs == ["resnet18", "mobilenet_v3_small"]


def test_missing_data_paths_pass_the_params_check_and_stop_the_stage(tmp_path):
    """Paper scale without ImageNet or CIFAR-100 on disk: the params check passes (the PINN stages can run);
    the CNN stage that reads the data names the path in one line."""
    cfg = validate(_with(dataset="imagenet", imagenet_path="/nonexistent/imagenet"))
    assert cfg.imagenet_path == "/nonexistent/imagenet"
    paper = load(ROOT / "params_paper.yaml", "cnn_imagenet")
    assert paper.dataset == "imagenet"
    with pytest.raises(ValueError, match="CIFAR-100 is not in"):
        check_cifar_available(str(tmp_path), download=False)
    p = tmp_path / "params.yaml"
    raw = committed()
    raw["cnn"].update(dataset="imagenet", imagenet_path=str(tmp_path / "none"), epochs=1, warmup_epochs=0)
    p.write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, "-m", "cnn.stages.train", "--arch", "resnet50", "--variant", "bn-adamw",
                           "--out", str(tmp_path / "run"), "--params", str(p)], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(tmp_path / "none" / "train") in proc.stderr


def test_stage_exits_2_with_one_line_before_training(tmp_path, capsys):
    p = tmp_path / "params.yaml"
    raw = committed()
    raw["cnn"]["variants"] = {"bn-adamw": {}, "nobn-adam": {}}
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(SystemExit) as e:
        stage.main(["--arch", "resnet50", "--variant", "bn-adamw", "--out", str(tmp_path / "run"), "--params", str(p)])
    assert e.value.code == 2 and "cnn.variants.nobn-adam" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    p.write_text(yaml.safe_dump(committed()))
    with pytest.raises(SystemExit) as e:
        stage.main(["--arch", "resnet18", "--variant", "bn-adamw", "--out", str(tmp_path / "run"), "--params", str(p)])
    assert e.value.code == 2 and "--arch" in capsys.readouterr().err


def test_committed_files_are_valid():
    assert load(ROOT / "params.yaml").archs
    assert load(ROOT / "params_paper.yaml").dataset == "cifar100"


# -- issue 22, defect 1: values that passed the check and then killed the stage -----------------------------
@pytest.mark.parametrize("edit, match", [
    ({"batch_size": 1200}, r"`cnn\.batch_size` = 1200.*<= 1149"),   # 1000 trains: 1149 images
    ({"val_fraction": 0.001}, r"`cnn\.val_fraction` = 0\.001.*at least 10 validation images"),
    ({"archs": ["resnet18", "vit_b_16"]}, r"`cnn\.archs\[1\]` = 'vit_b_16'.*32 px"),
    ({"archs": ["convnext_tiny"]}, r"`cnn\.archs\[0\]` = 'convnext_tiny'.*BatchNorm"),
    ({"seeds": [0, 18446744073709551616]}, rf"`cnn\.seeds\[1\]`.*<= {2**32 - 1}"),
])
def test_values_that_would_kill_the_stage_are_refused(edit, match):
    with pytest.raises(ValueError, match=match) as e:
        validate(_with(**edit))
    assert "\n" not in str(e.value)


def test_the_batch_and_validation_bounds_follow_the_data_set():
    assert validate(_with(batch_size=1149)).batch_size == 1149       # digits: 1437 training images, 20 % held out
    assert validate(_with(val_fraction=0.0, batch_size=1437)).batch_size == 1437
    with pytest.raises(ValueError, match=r"`cnn\.batch_size`.*<= 100"):
        validate(_with(train_subset=100, batch_size=128))
    assert validate(_with(archs=["resnet18", "efficientnet_v2_s"], stem="cifar")).archs[1] == "efficientnet_v2_s"
