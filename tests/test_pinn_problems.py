"""Each problem's residual and every condition vanish on its exact solution; the three paper problems keep the
points and the losses they had before their conditions became objects (pinn.conditions)."""
import hashlib

import numpy as np
import pytest
import torch
from scipy.stats import qmc

from pinn import conditions
from pinn.derivatives import value_and_derivatives
from pinn.model import MLP
from pinn.points import generate
from pinn.problems import PROBLEMS, burgers, heat, wave
from pinn.trainer import pinn_losses

EXACT = ["poisson", "helmholtz", "heat", "wave"]     # the problems with a closed-form solution (exact_torch)


def _exact_derivatives(f, x, second):
    x = x.clone().requires_grad_(True)
    u = f(x)
    du = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
    d2u = {k: torch.autograd.grad(du[:, k].sum(), x, retain_graph=True)[0][:, k] for k in second}
    return u.detach(), du.detach(), d2u


def _box_points(p, n, seed=0):
    lo, hi = torch.tensor(p.LOWER, dtype=torch.float64), torch.tensor(p.UPPER, dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, len(p.INPUTS), dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", EXACT)
def test_residual_vanishes_on_exact_solution(name):
    p = PROBLEMS[name]
    x = _box_points(p, 500)
    u, du, d2u = _exact_derivatives(p.exact_torch, x, p.SECOND)
    r = p.residual(x, u, du, d2u)
    scale = max(v.abs().max() for v in d2u.values())
    assert r.abs().max() < 1e-12 * scale
    # and does not vanish for a wrong solution (one second derivative off by 10 %)
    k = p.SECOND[0]
    assert p.residual(x, u, du, {**d2u, k: 1.1 * d2u[k]}).abs().max() > 1e-3 * scale


def _condition_residuals(p, f, n=40):
    """Each condition's residual of the function f (torch, (k, d) -> (k,)) on the problem's boundary points."""
    pts, g, rows = conditions.sample(p, n, np.random.default_rng(0).random)
    x = torch.tensor(pts)
    u, du, _ = _exact_derivatives(f, x, ())
    g = torch.tensor(g)
    out = []
    for cond, xi, ui, dui, gi in zip(conditions.ordered(p.CONDITIONS), x.split(rows), u.split(rows),
                                     du.split(rows), g.split(rows)):
        out.append(cond.residual(xi, ui, dui if cond.first else None, gi))
    return pts, rows, out


@pytest.mark.parametrize("name", EXACT)
def test_every_condition_vanishes_on_exact_solution(name):
    p = PROBLEMS[name]
    pts, rows, res = _condition_residuals(p, p.exact_torch)
    assert len(pts) == sum(rows) and len(rows) == len(p.CONDITIONS) and min(rows) > 0
    assert all(r.abs().max() < 1e-12 for r in res)
    on_face = np.isclose(pts, p.LOWER) | np.isclose(pts, p.UPPER)
    assert on_face.any(1).all()
    # a wrong solution (shifted, tilted) violates every condition
    wrong = lambda x: p.exact_torch(x) + 0.1 * (3 + x.sum(1))
    assert all(r.abs().min() > 1e-2 for r in _condition_residuals(p, wrong)[2])


def test_conditions_reading_derivatives_come_first_and_get_first_derivative_rows():
    assert [type(c).__name__ for c in conditions.ordered(heat.CONDITIONS)] == ["Neumann", "Dirichlet", "Dirichlet"]
    assert type(conditions.ordered(wave.CONDITIONS)[0]).__name__ == "InitialVelocity"
    d = generate("heat", 30, 40, seed=0)
    assert tuple(d["condition_rows"]) == (13, 13, 14) and conditions.first_rows(heat, d["condition_rows"]) == 13
    assert np.all(d["boundary"][:13, 0] == 1.0)                  # the Neumann rows (x = 1) lead
    assert conditions.first_rows(burgers, (50, 50)) == 0


def _old_boundary(name, n, sampler):
    """The boundary points and values of the code before pinn.conditions (commit 57b7b92), verbatim."""
    p = PROBLEMS[name]
    if name == "burgers":
        n_ic = n // 2
        n_side = (n - n_ic) // 2
        x_ic = p.LOWER[0] + (p.UPPER[0] - p.LOWER[0]) * sampler(n_ic)
        t_side = sampler(2 * n_side)
        pts = np.concatenate([np.stack([x_ic, np.zeros(n_ic)], 1), np.stack([-np.ones(n_side), t_side[:n_side]], 1),
                              np.stack([np.ones(n_side), t_side[n_side:]], 1)])
        return pts, np.concatenate([-np.sin(np.pi * x_ic), np.zeros(2 * n_side)])
    m = n // 4
    s = sampler(4 * m).reshape(4, m)
    (x0, y0), (x1, y1) = p.LOWER, p.UPPER
    sx = [x0 + (x1 - x0) * s[i] for i in range(4)]
    sy = [y0 + (y1 - y0) * s[i] for i in range(4)]
    one = np.ones(m)
    pts = np.concatenate([np.stack([sx[0], y0 * one], 1), np.stack([sx[1], y1 * one], 1),
                          np.stack([x0 * one, sy[2]], 1), np.stack([x1 * one, sy[3]], 1)])
    return pts, np.zeros(4 * m)


@pytest.mark.parametrize("name", ["burgers", "poisson", "helmholtz"])
@pytest.mark.parametrize("n_boundary,seed", [(100, 0), (200, 1), (103, 2), (102, 3), (7, 0)])
def test_paper_problems_keep_their_points_byte_for_byte(name, n_boundary, seed):
    # pinn.points.generate draws the domain first, then the boundary (the same generator): the old boundary code
    # on a generator advanced past the domain must give the same bytes.
    d = generate(name, 50, n_boundary, seed)
    rng = np.random.default_rng(seed)
    lower, upper = np.array(PROBLEMS[name].LOWER), np.array(PROBLEMS[name].UPPER)
    domain = qmc.scale(qmc.LatinHypercube(2, seed=rng).random(50), lower, upper)
    pts, vals = _old_boundary(name, n_boundary, lambda m: qmc.LatinHypercube(1, seed=rng).random(m)[:, 0])
    for new, old in [(d["domain"], domain), (d["boundary"], pts), (d["boundary_values"], vals)]:
        assert new.dtype == old.dtype and new.shape == old.shape and new.tobytes() == old.tobytes()


def test_paper_points_of_params_yaml_are_those_committed():
    # sha256 of the arrays pinn_generate wrote before pinn.conditions (commit 57b7b92) for params.yaml's counts
    # (1000 domain, 100 boundary points, seed 0): the committed results were trained on these points.
    committed = {"burgers": "697a1fad22a74d94", "poisson": "ec92d2aaf58c43fa", "helmholtz": "72623715b578c34d"}
    for name, digest in committed.items():
        d = generate(name, 1000, 100, 0)
        h = hashlib.sha256(b"".join(d[k].tobytes() for k in ("domain", "boundary", "boundary_values")))
        assert h.hexdigest()[:16] == digest, name


@pytest.mark.parametrize("name", ["burgers", "poisson", "helmholtz"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_paper_problems_keep_bit_identical_losses(name, dtype):
    # The losses the trainer takes equal the former formulas on the same points and weights, bit for bit:
    # mean(residual^2); Burgers' boundary term the mean over the t = 0 rows plus the mean over the x = +-1 rows,
    # Poisson's and Helmholtz's the plain mean of (u - g)^2.
    p = PROBLEMS[name]
    d = generate(name, 300, 200, 0)
    x = torch.tensor(np.concatenate([d["domain"], d["boundary"]]), dtype=dtype)
    g = torch.tensor(d["boundary_values"], dtype=dtype)
    torch.manual_seed(0)
    model = MLP(2, 16, 3, lower=p.LOWER, upper=p.UPPER).to(dtype)
    loss_r, loss_b, u = pinn_losses(model, p, x, 300, g, rows=tuple(d["condition_rows"]))
    uu, du, d2u = value_and_derivatives(model, x, p.SECOND, 300)
    se = (uu[300:] - g).square()
    if name == "burgers":
        initial = d["boundary"][:, 1] == 0
        assert initial[:100].all() and not initial[100:].any()
        old_b = se[:100].mean() + se[100:].mean()
        # the former implementation summed masked rows; it agrees to rounding only (a float32 ulp here)
        mask = torch.tensor(initial, dtype=dtype)
        masked = (se * mask).sum() / mask.sum() + (se * (1 - mask)).sum() / (1 - mask).sum()
        torch.testing.assert_close(loss_b, masked)
    else:
        old_b = se.mean()
    assert torch.equal(loss_r, p.residual(x[:300], uu[:300], du, d2u).square().mean())
    assert torch.equal(loss_b, old_b) and torch.equal(u, uu)


def test_burgers_residual_small_on_cole_hopf_solution():
    # Central finite differences of the Cole-Hopf reference, in the smooth region (t <= 0.3).
    x = np.linspace(-0.9, 0.9, 19)[None, :]
    t = np.linspace(0.1, 0.3, 5)[:, None]
    h = 1e-4
    u = burgers.exact(x, t)
    ut = (burgers.exact(x, t + h) - burgers.exact(x, t - h)) / (2 * h)
    ux = (burgers.exact(x + h, t) - burgers.exact(x - h, t)) / (2 * h)
    uxx = (burgers.exact(x + h, t) - 2 * u + burgers.exact(x - h, t)) / h**2
    X = torch.tensor(np.stack(np.broadcast_arrays(x, t), -1).reshape(-1, 2))
    du = torch.tensor(np.stack([ux, ut], -1).reshape(-1, 2))
    r = burgers.residual(X, torch.tensor(u.ravel()), du, {0: torch.tensor(uxx.ravel())})
    assert r.abs().max() < 1e-4 * np.abs(ut).max()
    # a wrong viscosity leaves a clear residual
    assert np.abs(ut + u * ux - 2 * burgers.NU * uxx).max() > 1e-2 * np.abs(ut).max()


def test_burgers_boundary_points():
    pts, vals, rows = conditions.sample(burgers, 100, np.random.default_rng(0).random)
    initial = pts[:, 1] == 0
    assert initial.sum() == 50 and rows == (50, 50) and initial[:50].all()
    np.testing.assert_allclose(vals[initial], -np.sin(np.pi * pts[initial, 0]))
    assert np.all(np.abs(pts[~initial, 0]) == 1) and np.all(vals[~initial] == 0)


def test_burgers_exact_torch_is_a_value_error_naming_the_alternatives():
    with pytest.raises(ValueError, match=r"poisson and helmholtz.*burgers\.exact\(x, t\).*reference\(axes\)"):
        burgers.exact_torch(torch.zeros(3, 2))


def test_boundary_loss_is_one_mean_per_condition_as_deepxde():
    """Burgers: the initial condition's mean plus the boundary condition's, whatever their counts (DeepXDE's
    sum over its IC and DirichletBC terms); Poisson and Helmholtz have one condition: the plain mean."""
    pts, _, _ = conditions.sample(burgers, 100, np.random.default_rng(0).random)
    pts = np.concatenate([pts[:50], pts[:10], pts[50:]])            # 60 initial, 50 side points
    x = torch.tensor(pts, dtype=torch.float32)
    u = torch.rand(len(x), generator=torch.Generator().manual_seed(0))
    g = torch.zeros(len(x))
    loss = conditions.boundary_loss(burgers, (60, 50), x, u, torch.zeros(0, 2), g)
    assert torch.equal(loss, u[:60].square().mean() + u[60:].square().mean())
    assert not torch.isclose(loss, 2 * u.square().mean())           # unequal counts: not the pooled mean
    for name in ("poisson", "helmholtz"):
        assert torch.equal(conditions.boundary_loss(PROBLEMS[name], (110,), x, u, torch.zeros(0, 2), g),
                           u.square().mean())
    # the loss the trainer takes (pinn_losses) uses it
    model = torch.nn.Linear(2, 1)
    no_domain = lambda m, xx, second, n, n_first: (m(xx)[:, 0], torch.zeros(0, 2), {0: torch.zeros(0)})
    _, loss_b, u = pinn_losses(model, burgers, x, 0, g, derivs=no_domain, rows=(60, 50))
    assert torch.equal(loss_b, u[:60].square().mean() + u[60:].square().mean())
    with pytest.raises(ValueError, match="condition_rows"):          # two conditions: the rows must be given
        pinn_losses(model, burgers, x, 0, g, derivs=no_domain)
