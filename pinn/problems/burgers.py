"""1D viscous Burgers: u_t + u u_x = nu u_xx, nu = 0.01/pi, x in [-1, 1], t in [0, 1].

u(0, x) = -sin(pi x), u(t, -1) = u(t, 1) = 0. Reference by Cole-Hopf + Gauss-Hermite quadrature.
Inputs are ordered (x, t).
"""
import numpy as np
import torch

from pinn.conditions import Dirichlet, Face

INPUTS = ("x", "t")
LOWER = (-1.0, 0.0)
UPPER = (1.0, 1.0)
SECOND = (0,)  # input indices whose second derivative the residual needs (u_xx)
NU = 0.01 / np.pi
N_QUAD = 200  # Gauss-Hermite nodes (>= 80 reproduces the standard data set to ~1e-10)


def residual(x, u, du, d2u):
    """x: (N, 2); u: (N,); du: (N, 2) = (u_x, u_t); d2u: {0: u_xx}."""
    return du[:, 1] + u * du[:, 0] - NU * d2u[0]


def _initial(points):
    return -np.sin(np.pi * points[:, 0])


# One mean per condition (DeepXDE's IC and DirichletBC): the initial condition on t = 0 (half the boundary
# points), u = 0 on x = -1 and x = 1 (a quarter each).
CONDITIONS = (Dirichlet(on=(Face(1, -1),), value=_initial), Dirichlet(on=(Face(0, -1), Face(0, 1))))


def _quadrature(x, t, n_quad=N_QUAD):
    """Return y_k = x - s z_k, the weights w_k F(y_k) (stabilised), broadcast over x, t."""
    z, w = np.polynomial.hermite.hermgauss(n_quad)
    x = np.asarray(x, float)[..., None]
    s = 2.0 * np.sqrt(NU * np.asarray(t, float))[..., None]
    y = x - s * z
    # F(y) = exp(-cos(pi y) / (2 pi nu)); a per-point constant factor cancels in the ratio, so the
    # largest exponent is removed to keep every term <= 1.
    e = -np.cos(np.pi * y) / (2 * np.pi * NU)
    wf = w * np.exp(e - e.max(-1, keepdims=True))
    return y, wf


def exact(x, t, n_quad=N_QUAD):
    """u(t, x) by Cole-Hopf; x and t broadcast against each other (numpy, float64)."""
    y, wf = _quadrature(x, t, n_quad)
    return -np.sum(np.sin(np.pi * y) * wf, -1) / np.sum(wf, -1)


def exact_ux(x, t, n_quad=N_QUAD):
    """du/dx of the Cole-Hopf solution (analytic derivative of the quadrature formula)."""
    y, wf = _quadrature(x, t, n_quad)
    dlogf = np.sin(np.pi * y) / (2 * NU)  # d/dy log F(y)
    num = np.sum(np.sin(np.pi * y) * wf, -1)
    den = np.sum(wf, -1)
    dnum = np.sum((np.pi * np.cos(np.pi * y) + np.sin(np.pi * y) * dlogf) * wf, -1)
    dden = np.sum(dlogf * wf, -1)
    return -(dnum * den - num * dden) / den**2


def grid():
    """The standard evaluation grid: x = linspace(-1, 1, 256), t = 0, 0.01, ..., 0.99."""
    return [np.linspace(-1.0, 1.0, 256), np.round(np.arange(100) * 0.01, 12)]


def reference(axes):
    """Reference u on the grid `axes` = [x, t], shape (len(t), len(x))."""
    x, t = axes
    return exact(x[None, :], t[:, None])


def exact_torch(x: torch.Tensor) -> torch.Tensor:
    """Not available: Burgers has no closed-form solution (only poisson and helmholtz define exact_torch)."""
    raise ValueError("exact_torch: burgers has no closed-form solution; exact_torch exists only for the "
                     "problems poisson and helmholtz. For burgers use burgers.exact(x, t) (Cole-Hopf, numpy) "
                     "or burgers.reference(axes) on a grid")
