"""Conditions as objects (pinn.conditions): their points, their residuals, and the worked problems that need the
derivative conditions (heat: Neumann; wave: initial velocity) run end to end."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import committed

from pinn import conditions
from pinn.conditions import Dirichlet, Face, InitialVelocity, Neumann, Periodic, Robin
from pinn.points import generate
from pinn.stages import generate as generate_stage
from pinn.trainer import PinnData, load_data, train

pytestmark = pytest.mark.usefixtures("one_thread")
UNIT = ((0.0, 0.0), (1.0, 1.0))
WORKED = {"heat": {"domain": 128, "boundary": 32}, "wave": {"domain": 128, "boundary": 32}}


def _residual(cond, f, box=UNIT, n=24):
    """cond's residual of the function f (torch, (k, 2) -> (k,)) on cond's own points, via autograd."""
    pts, g = cond.sample(n, np.random.default_rng(0).random, *box)
    x = torch.tensor(pts).requires_grad_(True)
    u = f(x)
    du = torch.autograd.grad(u.sum(), x)[0]
    return pts, cond.residual(x, u.detach(), du, torch.tensor(g))


def test_face_points_lie_on_their_faces_in_blocks():
    faces = (Face(1, -1), Face(1, 1), Face(0, -1), Face(0, 1))
    pts = conditions.face_points(faces, 42, np.random.default_rng(0).random, (-1.0, 0.0), (1.0, 2.0))
    assert pts.shape == (40, 2)                                   # 42 // 4 = 10 per face
    assert (pts[:10, 1] == 0).all() and (pts[10:20, 1] == 2).all()
    assert (pts[20:30, 0] == -1).all() and (pts[30:, 0] == 1).all()
    assert (pts[:20, 0] > -1).all() and (pts[:20, 0] < 1).all() and (pts[20:, 1] > 0).all()


def test_robin_and_neumann_use_the_outward_normal():
    # u = exp(x): du/dn = -1 at x = 0 (normal -x), e at x = 1; Robin du/dn + 2 u = 1 at x = 0, 3e at x = 1.
    f = lambda x: torch.exp(x[:, 0])
    g = lambda p: np.where(p[:, 0] == 0, 1.0, 3 * np.e)
    _, r = _residual(Robin(on=(Face(0, -1), Face(0, 1)), a=2.0, value=g), f)
    assert r.abs().max() < 1e-12
    _, r = _residual(Neumann(on=(Face(0, -1), Face(0, 1)), value=lambda p: np.where(p[:, 0] == 0, -1.0, np.e)), f)
    assert r.abs().max() < 1e-12
    _, r = _residual(Neumann(on=(Face(0, -1), Face(0, 1)), value=lambda p: np.where(p[:, 0] == 0, 1.0, np.e)), f)
    assert r[:12].abs().min() > 1.9                               # the inward derivative is not du/dn
    assert Neumann(on=(Face(1, 1), Face(0, -1))).first == (0, 1) and Dirichlet(on=(Face(0, 1),)).first == ()


def test_periodic_pairs_points_across_the_box():
    cond = Periodic(axis=0)
    pts, r = _residual(cond, lambda x: torch.sin(2 * torch.pi * x[:, 0]) + x[:, 1])
    assert pts.shape == (24, 2) and (pts[:12, 0] == 0).all() and (pts[12:, 0] == 1).all()
    assert np.array_equal(pts[:12, 1], pts[12:, 1]) and r.shape == (12,) and r.abs().max() < 1e-12
    _, r = _residual(cond, lambda x: x[:, 0] + x[:, 1])
    assert torch.allclose(r, torch.full_like(r, -1.0)) and cond.first == ()


def test_initial_velocity_reads_u_t_at_the_initial_time():
    cond = InitialVelocity(time=1, value=lambda p: np.cos(p[:, 0]))
    pts, r = _residual(cond, lambda x: torch.sin(x[:, 0]) + x[:, 1] * torch.cos(x[:, 0]) + x[:, 1] ** 2)
    assert (pts[:, 1] == 0).all() and r.abs().max() < 1e-12 and cond.first == (1,)


def test_too_few_boundary_points_are_named():
    problem = SimpleNamespace(LOWER=UNIT[0], UPPER=UNIT[1], CONDITIONS=(Dirichlet(on=(Face(1, -1),)),
                                                                         Periodic(axis=0)))
    with pytest.raises(ValueError, match=r"2 boundary points leave none to condition 1 \(Periodic, 1 of them\)"):
        conditions.sample(problem, 2, np.random.default_rng(0).random)
    _, _, rows = conditions.sample(problem, 4, np.random.default_rng(0).random)
    assert rows == (2, 2)


def test_config_accepts_the_worked_problems(pinn_cfg):
    cfg = pinn_cfg(problems=["heat", "wave"], points={**committed()["pinn"]["points"], **WORKED})
    assert cfg.problems == ["heat", "wave"] and cfg.points["wave"].boundary == 32


@pytest.mark.parametrize("problem", ["heat", "wave"])
def test_worked_problems_train_from_the_generated_files(tmp_path, params_file, pinn_cfg, problem):
    # generate -> load_data -> a short training lowers the loss (the conditions on derivatives included).
    params = params_file(pinn={"problems": [problem], "points": {**committed()["pinn"]["points"], **WORKED}})
    generate_stage.main(["--problem", problem, "--params", str(params), "--out", str(tmp_path)])
    data = load_data(tmp_path)
    assert data.condition_rows == tuple(generate(problem, 128, 32)["condition_rows"]) and sum(data.condition_rows) == 32
    assert set(np.load(tmp_path / "reference.npz").files) == {"x", "t", "u"}
    cfg = pinn_cfg(width=16, steps=60, log_every=1, init="glorot", gemm="aten", lr=1e-2, optimizers={"adamw": {}})
    res = train(cfg, problem, 3, "adamw", data, progress=False)
    losses = [row[1] for row in res.history]
    assert res.steps == 60 and not res.diverged and losses[-1] < 0.5 * losses[0]


def test_data_without_condition_rows_is_refused_for_several_conditions(pinn_cfg):
    d = generate("heat", 32, 16)
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)
    data = PinnData(t(d["domain"]), t(d["boundary"]), t(d["boundary_values"]), t(d["test_points"]), d["test_u"],
                    d["axes"])
    cfg = pinn_cfg(width=8, steps=2, gemm="aten", optimizers={"adamw": {}})
    with pytest.raises(ValueError, match="condition_rows"):
        train(cfg, "heat", 2, "adamw", data, progress=False)


def test_condition_rows_are_plain_ints_that_fit_the_problem():
    # numpy integers (as points.generate's array holds them) would reach torch.compile's graph as tensors and
    # break it (the gemm choice reads the row count): the trainer takes plain ints.
    from pinn.problems import heat
    from pinn.trainer import condition_rows
    rows = condition_rows(heat, 32, generate("heat", 16, 32)["condition_rows"])
    assert rows == (10, 10, 12) and all(type(r) is int for r in rows)
    with pytest.raises(ValueError, match=r"condition_rows \(10, 22\) do not fit the problem's 3 conditions"):
        condition_rows(heat, 32, (10, 22))
    with pytest.raises(ValueError, match="32 boundary points"):
        condition_rows(heat, 32, (10, 10, 13))
