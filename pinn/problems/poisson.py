"""2D Poisson: -(u_xx + u_yy) = f on [0, 1]^2, u = sin(pi x) sin(pi y), u = 0 on the boundary."""
import numpy as np
import torch

from pinn.conditions import Dirichlet, Face

INPUTS = ("x", "y")
LOWER = (0.0, 0.0)
UPPER = (1.0, 1.0)
SECOND = (0, 1)


def exact_torch(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(torch.pi * x[:, 0]) * torch.sin(torch.pi * x[:, 1])


def source(x: torch.Tensor) -> torch.Tensor:
    return 2 * torch.pi**2 * exact_torch(x)


def residual(x, u, du, d2u):
    return -(d2u[0] + d2u[1]) - source(x)


# One Dirichlet condition on the whole boundary: the edges y = 0, y = 1, x = 0, x = 1, a quarter each.
CONDITIONS = (Dirichlet(on=(Face(1, -1), Face(1, 1), Face(0, -1), Face(0, 1))),)


def grid():
    return [np.linspace(0.0, 1.0, 101), np.linspace(0.0, 1.0, 101)]


def reference(axes):
    x, y = axes
    return np.sin(np.pi * x[None, :]) * np.sin(np.pi * y[:, None])
