"""Shared fixtures: the committed params files (the one place of every value) and small edits of them."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def committed(name: str = "params.yaml") -> dict:
    """A committed params file as a raw mapping, located from the repository root."""
    return yaml.safe_load((ROOT / name).read_text())


@pytest.fixture
def params_file(tmp_path):
    """write(pinn={...}, cnn={...}) -> the path of a params file: the committed params.yaml with these keys of
    each section replaced."""
    def write(pinn: dict | None = None, cnn: dict | None = None, name: str = "params.yaml") -> Path:
        p = copy.deepcopy(committed())
        p["pinn"].update(pinn or {})
        p["cnn"].update(cnn or {})
        path = tmp_path / name
        path.write_text(yaml.safe_dump(p, sort_keys=False))
        return path
    return write


@pytest.fixture
def pinn_cfg():
    """pinn_cfg(**keys) -> the committed `pinn:` section with these keys replaced, validated."""
    from pinn.config import validate

    return lambda **kw: validate({**copy.deepcopy(committed()["pinn"]), **kw})


@pytest.fixture
def cnn_cfg():
    """cnn_cfg(**keys) -> the committed `cnn:` section with these keys replaced, validated."""
    from cnn.config import validate

    return lambda **kw: validate({**copy.deepcopy(committed()["cnn"]), **kw})


@pytest.fixture
def one_thread():
    """Tiny models: one thread avoids OpenMP spin-waiting when other jobs share the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
