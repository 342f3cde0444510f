"""2D Poisson: -(u_xx + u_yy) = f on [0, 1]^2, u = sin(pi x) sin(pi y), u = 0 on the boundary."""
import numpy as np
import torch

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


def boundary(n: int, sampler) -> tuple[np.ndarray, np.ndarray]:
    """n points spread over the four edges of the square; u = 0 there."""
    return square_edges(n, sampler, LOWER, UPPER), np.zeros(4 * (n // 4))


def boundary_loss(x, squared_error):
    """One Dirichlet condition on the whole boundary: the mean squared error over its points."""
    return squared_error.mean()


def square_edges(n, sampler, lower, upper):
    m = n // 4
    s = sampler(4 * m).reshape(4, m)
    (x0, y0), (x1, y1) = lower, upper
    sx = [x0 + (x1 - x0) * s[i] for i in range(4)]
    sy = [y0 + (y1 - y0) * s[i] for i in range(4)]
    one = np.ones(m)
    return np.concatenate([
        np.stack([sx[0], y0 * one], 1), np.stack([sx[1], y1 * one], 1),
        np.stack([x0 * one, sy[2]], 1), np.stack([x1 * one, sy[3]], 1),
    ])


def grid():
    return [np.linspace(0.0, 1.0, 101), np.linspace(0.0, 1.0, 101)]


def reference(axes):
    x, y = axes
    return np.sin(np.pi * x[None, :]) * np.sin(np.pi * y[:, None])
