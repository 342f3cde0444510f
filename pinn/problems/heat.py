"""1D heat equation with an insulated end: u_t = K u_xx on x in [0, 1], t in [0, 1],
u(0, x) = sin(pi x / 2), u(t, 0) = 0, u_x(t, 1) = 0 (Neumann). Exact: u = exp(-K (pi/2)^2 t) sin(pi x / 2)."""
import numpy as np
import torch

from pinn.conditions import Dirichlet, Face, Neumann

INPUTS = ("x", "t")             # column order of the points; inputs whose second derivative is needed first
LOWER, UPPER = (0.0, 0.0), (1.0, 1.0)
SECOND = (0,)                   # inputs whose second derivative the residual needs (u_xx)
K = 0.5


def residual(x, u, du, d2u):    # torch; du[:, i] = du/dx_i, d2u[k] = d2u/dx_k^2
    return du[:, 1] - K * d2u[0]


CONDITIONS = (                  # a face is (input, side): side -1 its lower end, +1 its upper end
    Dirichlet(on=(Face(1, -1),), value=lambda p: np.sin(np.pi * p[:, 0] / 2)),   # u = g at t = 0
    Dirichlet(on=(Face(0, -1),)),                                                 # u = 0 at x = 0
    Neumann(on=(Face(0, 1),)),                                                    # du/dn = u_x = 0 at x = 1
)


def exact_torch(x):
    return torch.exp(-K * (torch.pi / 2) ** 2 * x[:, 1]) * torch.sin(torch.pi * x[:, 0] / 2)


def grid():                     # the test grid, one 1D axis per input
    return [np.linspace(0.0, 1.0, 101), np.linspace(0.0, 1.0, 101)]


def reference(axes):            # u on the grid, shape (len(axes[1]), len(axes[0]))
    x, t = axes
    return np.exp(-K * (np.pi / 2) ** 2 * t[:, None]) * np.sin(np.pi * x[None, :] / 2)
