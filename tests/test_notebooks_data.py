"""notebooks/_data.py and notebooks/make_fixtures.py: the file lists of the new run layout, the choice between
data/ and the fixtures, and fixtures regenerated from a (synthetic) data/ tree."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
import _data
import make_fixtures


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_fixtures.synthetic(root)
    return root


def test_file_lists_follow_the_summary_settings(data):
    summary = json.loads((data / "summary.json").read_text())
    pinn = _data.files_for("pinn", data)
    assert "summary.json" in pinn and "pinn/ablation/poisson.json" in pinn
    assert "pinn/runs/burgers-8-clip/seeds/seed0/prediction.npz" in pinn
    assert "pinn/runs/poisson-8-stablegrad/seeds/seed0/grad_scales.json" in pinn
    assert len([f for f in pinn if f.endswith("/metrics.json")]) == 2 * 2 * 3
    cnn = _data.cnn_files(summary)
    assert "cnn/runs/resnet50-nobn-agc/seeds/seed0/grad_scales.json" in cnn
    assert all((data / f).is_file() for f in pinn + cnn)


def test_fixtures_regenerate_from_data(data, tmp_path, monkeypatch):
    files = make_fixtures.make(data, tmp_path / "fx", {"source": "data"})
    assert all((tmp_path / "fx" / f).is_file() for f in files)
    monkeypatch.setattr(_data, "DATA", data)
    monkeypatch.setattr(_data, "FIXTURES", tmp_path / "fx")
    monkeypatch.setenv(_data.ENV, "auto")
    assert _data.source("pinn").mode == "data"
    monkeypatch.setenv(_data.ENV, "fixtures")
    src = _data.source("cnn")
    assert src.mode == "fixtures" and src.origin() == {"source": "data"}
    assert src.run("resnet50", "bn-adamw") == tmp_path / "fx" / "cnn" / "runs" / "resnet50-bn-adamw"


def test_old_or_missing_summary_falls_back(tmp_path, monkeypatch):
    (tmp_path / "summary.json").write_text(json.dumps({"pinn": {}, "cnn": {}}))   # no settings: older pipeline
    monkeypatch.setattr(_data, "DATA", tmp_path)
    monkeypatch.setenv(_data.ENV, "auto")
    src = _data.source("pinn")
    assert src.mode == "fixtures" and "older pipeline" in src.missing[0]
    monkeypatch.setenv(_data.ENV, "data")
    with pytest.raises(FileNotFoundError):
        _data.source("cnn")
