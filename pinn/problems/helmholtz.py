"""2D Helmholtz (Wang, Teng, Perdikaris 2021): u_xx + u_yy + k^2 u = q on [-1, 1]^2,
u = sin(a1 pi x) sin(a2 pi y) with a1 = 1, a2 = 4, k = 1; u = 0 on the boundary."""
import numpy as np
import torch

from pinn.problems.poisson import CONDITIONS  # noqa: F401 (u = 0 on the whole boundary, as Poisson)

INPUTS = ("x", "y")
LOWER = (-1.0, -1.0)
UPPER = (1.0, 1.0)
SECOND = (0, 1)
A1, A2, K = 1.0, 4.0, 1.0


def exact_torch(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(A1 * torch.pi * x[:, 0]) * torch.sin(A2 * torch.pi * x[:, 1])


def source(x: torch.Tensor) -> torch.Tensor:
    return (K**2 - (A1 * torch.pi) ** 2 - (A2 * torch.pi) ** 2) * exact_torch(x)


def residual(x, u, du, d2u):
    return d2u[0] + d2u[1] + K**2 * u - source(x)


def grid():
    return [np.linspace(-1.0, 1.0, 101), np.linspace(-1.0, 1.0, 101)]


def reference(axes):
    x, y = axes
    return np.sin(A1 * np.pi * x[None, :]) * np.sin(A2 * np.pi * y[:, None])
