"""1D viscous Burgers: u_t + u u_x = nu u_xx, nu = 0.01/pi, x in [-1, 1], t in [0, 1].

u(0, x) = -sin(pi x), u(t, -1) = u(t, 1) = 0. Reference by Cole-Hopf + Gauss-Hermite quadrature.
Inputs are ordered (x, t).
"""
import numpy as np
import torch

INPUTS = ("x", "t")
LOWER = (-1.0, 0.0)
UPPER = (1.0, 1.0)
SECOND = (0,)  # input indices whose second derivative the residual needs (u_xx)
NU = 0.01 / np.pi
N_QUAD = 200  # Gauss-Hermite nodes (>= 80 reproduces the standard data set to ~1e-10)


def residual(x, u, du, d2u):
    """x: (N, 2); u: (N,); du: (N, 2) = (u_x, u_t); d2u: {0: u_xx}."""
    return du[:, 1] + u * du[:, 0] - NU * d2u[0]


def boundary(n: int, sampler) -> tuple[np.ndarray, np.ndarray]:
    """n points: half on the initial line t = 0, a quarter on each side x = -1, x = +1."""
    n_ic = n // 2
    n_side = (n - n_ic) // 2
    x_ic = LOWER[0] + (UPPER[0] - LOWER[0]) * sampler(n_ic)
    t_side = sampler(2 * n_side)
    pts = np.concatenate([
        np.stack([x_ic, np.zeros(n_ic)], 1),
        np.stack([-np.ones(n_side), t_side[:n_side]], 1),
        np.stack([np.ones(n_side), t_side[n_side:]], 1),
    ])
    vals = np.concatenate([-np.sin(np.pi * x_ic), np.zeros(2 * n_side)])
    return pts, vals


def boundary_loss(x, squared_error):
    """DeepXDE's convention, one mean per condition: the initial condition's (points on t = 0) plus the
    boundary condition's (points on x = -1, 1). With equal counts (`boundary`'s half and half) this is twice
    the mean over all points."""
    initial = (x[:, 1] == LOWER[1]).to(squared_error.dtype)
    side = 1.0 - initial
    return (squared_error * initial).sum() / initial.sum() + (squared_error * side).sum() / side.sum()


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
