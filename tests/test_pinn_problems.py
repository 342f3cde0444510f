"""Each problem's residual vanishes on its exact solution; boundary data are consistent with it."""
import numpy as np
import pytest
import torch

from pinn.problems import PROBLEMS, burgers


def _exact_derivatives(f, x, second):
    x = x.clone().requires_grad_(True)
    u = f(x)
    du = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
    d2u = {k: torch.autograd.grad(du[:, k].sum(), x, retain_graph=True)[0][:, k] for k in second}
    return u.detach(), du.detach(), d2u


@pytest.mark.parametrize("name", ["poisson", "helmholtz"])
def test_residual_vanishes_on_exact_solution(name):
    p = PROBLEMS[name]
    lo, hi = torch.tensor(p.LOWER, dtype=torch.float64), torch.tensor(p.UPPER, dtype=torch.float64)
    x = lo + (hi - lo) * torch.rand(500, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    u, du, d2u = _exact_derivatives(p.exact_torch, x, p.SECOND)
    r = p.residual(x, u, du, d2u)
    scale = p.source(x).abs().max()
    assert r.abs().max() < 1e-12 * scale
    # and does not vanish for a wrong solution
    assert p.residual(x, 1.1 * u, 1.1 * du, {k: 1.1 * v for k, v in d2u.items()}).abs().max() > 1e-3 * scale


@pytest.mark.parametrize("name", ["poisson", "helmholtz"])
def test_boundary_values_match_exact_solution(name):
    p = PROBLEMS[name]
    rng = np.random.default_rng(0)
    pts, vals = p.boundary(40, rng.random)
    assert pts.shape == (40, 2)
    exact = p.exact_torch(torch.tensor(pts)).numpy()
    np.testing.assert_allclose(exact, vals, atol=1e-12)
    on_edge = np.isclose(pts, p.LOWER) | np.isclose(pts, p.UPPER)
    assert on_edge.any(1).all()


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
    pts, vals = burgers.boundary(100, np.random.default_rng(0).random)
    initial = pts[:, 1] == 0
    assert initial.sum() == 50
    np.testing.assert_allclose(vals[initial], -np.sin(np.pi * pts[initial, 0]))
    assert np.all(np.abs(pts[~initial, 0]) == 1) and np.all(vals[~initial] == 0)


def test_burgers_exact_torch_is_a_value_error_naming_the_alternatives():
    with pytest.raises(ValueError, match=r"poisson and helmholtz.*burgers\.exact\(x, t\).*reference\(axes\)"):
        burgers.exact_torch(torch.zeros(3, 2))


def test_boundary_loss_is_one_mean_per_condition_as_deepxde():
    """Burgers: the initial condition's mean plus the boundary condition's, whatever their counts (DeepXDE's
    sum over its IC and DirichletBC terms); Poisson and Helmholtz have one condition: the plain mean."""
    pts, _ = burgers.boundary(100, np.random.default_rng(0).random)
    pts = np.concatenate([pts, pts[pts[:, 1] == 0][:10]])            # 60 initial, 50 side points
    x = torch.tensor(pts, dtype=torch.float32)
    err = torch.rand(len(x), generator=torch.Generator().manual_seed(0))
    initial = pts[:, 1] == 0
    expected = err[initial].mean() + err[~initial].mean()
    torch.testing.assert_close(burgers.boundary_loss(x, err), expected)
    assert not torch.isclose(burgers.boundary_loss(x, err), 2 * err.mean())   # unequal counts: not the pooled mean
    for name in ("poisson", "helmholtz"):
        torch.testing.assert_close(PROBLEMS[name].boundary_loss(x, err), err.mean())
    # the loss the trainer takes (pinn_losses) uses it
    from pinn.trainer import pinn_losses
    model = torch.nn.Linear(2, 1)
    g = torch.zeros(len(x))
    no_domain = lambda m, xx, second, n: (m(xx)[:, 0], torch.zeros(0, 2), {0: torch.zeros(0)})
    _, loss_b, u = pinn_losses(model, burgers, x, 0, g, derivs=no_domain)
    torch.testing.assert_close(loss_b, burgers.boundary_loss(x, u.square()))
