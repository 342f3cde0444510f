"""1D wave equation: u_tt = C^2 u_xx on x in [0, 1], t in [0, 1], u(0, x) = sin(pi x),
u_t(0, x) = sin(pi x) (an initial velocity), u(t, 0) = u(t, 1) = 0.
Exact: u = sin(pi x) (cos(C pi t) + sin(C pi t) / (C pi))."""
import numpy as np
import torch

from pinn.conditions import Dirichlet, Face, InitialVelocity

INPUTS = ("x", "t")
LOWER, UPPER = (0.0, 0.0), (1.0, 1.0)
SECOND = (0, 1)                 # u_xx and u_tt
C = 1.0


def residual(x, u, du, d2u):
    return d2u[1] - C**2 * d2u[0]


def _sin(points):
    return np.sin(np.pi * points[:, 0])


CONDITIONS = (
    Dirichlet(on=(Face(1, -1),), value=_sin),            # u = sin(pi x) at t = 0
    InitialVelocity(time=1, value=_sin),                 # u_t = sin(pi x) at t = 0
    Dirichlet(on=(Face(0, -1), Face(0, 1))),             # u = 0 at x = 0 and x = 1
)


def exact_torch(x):
    w = C * torch.pi
    return torch.sin(torch.pi * x[:, 0]) * (torch.cos(w * x[:, 1]) + torch.sin(w * x[:, 1]) / w)


def grid():
    return [np.linspace(0.0, 1.0, 101), np.linspace(0.0, 1.0, 101)]


def reference(axes):
    x, t = axes
    w = C * np.pi
    return np.sin(np.pi * x[None, :]) * (np.cos(w * t[:, None]) + np.sin(w * t[:, None]) / w)
