"""Shared fixtures: the committed params files (the one place of every value) and small edits of them."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

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


def tiny_mlp(seed: int = 0, d_out: int = 1) -> nn.Module:
    """A 3 -> 12 -> 12 -> d_out tanh MLP with seeded weights (optimizer tests)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 12), nn.Tanh(), nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, d_out))


def tiny_batch(seed: int, d_out: int = 1):
    """A seeded regression batch for `tiny_mlp`: 16 inputs, targets sin(sum x) (+ 0.3 when d_out > 1)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 3, generator=gen)
    y = torch.sin(x.sum(1, keepdim=True))
    return (x, y) if d_out == 1 else (x, y.repeat(1, d_out) + 0.3)
