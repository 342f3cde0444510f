"""docs/adding_a_pde.md's worked example runs exactly as the document shows it: its python block is a problem
module the trainer takes (the residual and every condition vanish on its exact solution; a short training
lowers the loss), and it is pinn/problems/heat.py verbatim."""
import importlib.util
import re

import numpy as np
import pytest
import torch
from conftest import ROOT

from pinn import conditions
from pinn.points import generate
from pinn.problems import PROBLEMS
from pinn.trainer import PinnData, train

pytestmark = pytest.mark.usefixtures("one_thread")


def _doc_block() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "docs" / "adding_a_pde.md").read_text(), re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture
def doc_problem(monkeypatch, tmp_path):
    """The block, written to a file as a user would, imported as a module and registered as "doc_heat"."""
    path = tmp_path / "doc_heat.py"
    path.write_text(_doc_block())
    spec = importlib.util.spec_from_file_location("doc_heat", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(PROBLEMS, "doc_heat", module)
    return module


def test_the_block_is_the_shipped_module():
    assert _doc_block() == (ROOT / "pinn" / "problems" / "heat.py").read_text()


def test_the_block_defines_a_problem_whose_solution_satisfies_everything(doc_problem):
    p = doc_problem
    assert any(isinstance(c, conditions.Neumann) for c in p.CONDITIONS)
    x = torch.rand(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pts, g, rows = conditions.sample(p, 60, np.random.default_rng(0).random)
    x = torch.cat([x, torch.tensor(pts)]).requires_grad_(True)
    u = p.exact_torch(x)
    du = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
    uxx = torch.autograd.grad(du[:, 0].sum(), x)[0][:, 0]
    assert p.residual(x[:200], u[:200], du[:200], {0: uxx[:200]}).abs().max() < 1e-12
    n1 = conditions.first_rows(p, rows)
    loss = conditions.boundary_loss(p, rows, x[200:], u[200:], du[200:200 + n1], torch.tensor(g))
    assert loss < 1e-24
    axes = p.grid()
    t, xx = np.meshgrid(axes[1], axes[0], indexing="ij")
    np.testing.assert_allclose(p.reference(axes), p.exact_torch(torch.tensor(np.stack([xx, t], -1).reshape(-1, 2)))
                               .reshape(t.shape).numpy(), atol=1e-12)


def test_the_trainer_takes_the_block(doc_problem, pinn_cfg):
    d = generate("doc_heat", 128, 32, seed=0)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)
    data = PinnData(f(d["domain"]), f(d["boundary"]), f(d["boundary_values"]), f(d["test_points"]), d["test_u"],
                    d["axes"], tuple(d["condition_rows"]))
    cfg = pinn_cfg(width=16, steps=60, log_every=1, init="glorot", gemm="aten", lr=1e-2, optimizers={"adamw": {}})
    res = train(cfg, "doc_heat", 3, "adamw", data, progress=False)
    losses = [row[1] for row in res.history]
    assert not res.diverged and losses[-1] < 0.5 * losses[0]
