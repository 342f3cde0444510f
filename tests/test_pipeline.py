"""The pipeline glue: whole-file params validation, the aggregate stage, and dvc.yaml resolving."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import aggregate
from pipeline.params import load

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _committed() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("name", ["params.yaml", "params_paper.yaml"])
def test_committed_params_files_are_valid(name):
    cfg = load(ROOT / name, check_paths=False)
    assert cfg["pinn"].depths and cfg["cnn"].archs


def test_quick_defaults_reach_depth_16_with_three_depths():
    cfg = load(ROOT / "params.yaml", check_paths=False)["pinn"]
    assert len(cfg.depths) >= 3 and max(cfg.depths) >= 16


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda p: p.update(extra={}), "extra"),
        (lambda p: p["pinn"].update(depths=[4, -8]), "pinn.depths[1]"),
        (lambda p: p["pinn"].update(problems=["burgers", "navier"]), "pinn.problems[1]"),
        (lambda p: p["pinn"].update(optimizers=["sgd"]), "pinn.optimizers[0]"),
        (lambda p: p["pinn"].update(activation="gelu"), "pinn.activation"),
        (lambda p: p["pinn"].update(width=0), "pinn.width"),
        (lambda p: p["cnn"].update(archs=["vgg16"]), "cnn.archs[0]"),
        (lambda p: p["cnn"].update(variants=["nobn-sgd"]), "cnn.variants[0]"),
        (lambda p: p["cnn"].update(typo_key=1), "cnn.typo_key"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(tmp_path, edit, key):
    params = _committed()
    edit(params)
    with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load(_write(tmp_path, params), check_paths=False)


def test_cli_exits_2_with_one_message(tmp_path):
    params = _committed()
    params["pinn"]["depths"] = [4, "deep"]
    path = _write(tmp_path, params)
    proc = subprocess.run([sys.executable, "-m", "pipeline.params", str(path)], capture_output=True, text=True, check=False,
                          cwd=ROOT)
    assert proc.returncode == 2
    assert "pinn.depths[1]" in proc.stderr and "Traceback" not in proc.stderr


def test_aggregate_reads_only_the_runs_params_ask_for(tmp_path):
    params = _committed()
    params["pinn"].update(problems=["burgers"], depths=[4, 8], optimizers=["adamw", "stablegrad"])
    params["cnn"].update(archs=["resnet50"], variants=["nobn-adamw", "nobn-stablegrad", "bn-adamw"])
    cfg = load(_write(tmp_path, params), check_paths=False)
    runs = tmp_path / "runs"
    for depth in (4, 8, 32):  # 32 is stale: not in pinn.depths any more
        for i, opt in enumerate(("adamw", "stablegrad")):
            d = runs / "pinn" / f"burgers-{depth}-{opt}"
            d.mkdir(parents=True)
            (d / "metrics.json").write_text(json.dumps({"rel_l2": 0.1 / (depth + i), "diverged": False}))
    three_seeds = {"seeds": [0, 1, 2], "test_acc_min": 0.1, "test_acc_max": 0.3, "diverged_seeds": 2}
    for variant, acc, div, extra in (("nobn-adamw", 0.1, True, {}), ("nobn-stablegrad", 0.9, False, {}),
                                     ("bn-adamw", 0.2, True, three_seeds)):
        d = runs / "cnn" / f"resnet50-{variant}"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"test_acc": acc, "diverged": div, "diverged_epoch": 2,
                                                    **extra}))
    summary = aggregate.collect(cfg, runs / "pinn", runs / "cnn")
    assert set(summary["pinn"]["burgers"]) == {"4", "8"}
    assert summary["pinn"]["burgers"]["8"]["stablegrad"]["rel_l2"] == pytest.approx(0.1 / 9)
    assert summary["cnn"]["resnet50"]["nobn-adamw"]["diverged"] is True
    header, rows = aggregate.cnn_rows(summary, cfg["cnn"].variants)
    aggregate.write_tables(tmp_path / "t", header, rows, "caption")
    md = (tmp_path / "t.md").read_text()
    assert "10.0 % (collapsed, from epoch 2)" in md and "| 90.0 % |" in md
    assert "20.0 [10.0–30.0] % (collapsed in 2/3 seeds, from epoch 2)" in md
    assert r"\begin{tabular}" in (tmp_path / "t.tex").read_text()


@pytest.mark.skipif(shutil.which("dvc", path=str(Path(sys.executable).parent)) is None, reason="dvc not installed")
def test_dvc_yaml_resolves_with_readable_stage_names():
    dvc = str(Path(sys.executable).parent / "dvc")
    proc = subprocess.run([dvc, "stage", "list"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    cfg = load(ROOT / "params.yaml", check_paths=False)
    for depth in cfg["pinn"].depths:
        assert any(n.endswith(f"-{depth}-stablegrad") for n in names), names
    assert "aggregate" in names
