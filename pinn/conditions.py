"""Boundary and initial conditions of a PINN problem, as objects.

A problem lists its conditions in CONDITIONS. Each condition owns its points (`sample`: on faces of the
problem's box, from `sampler(m)`, m numbers in [0, 1)), its target g at them, the first derivatives it reads
(`first`: input indices; none for Dirichlet and periodic) and its residual from (u, du, g) on its rows. The
boundary loss is one mean of the squared residual per condition, summed (DeepXDE's convention).

The boundary points of a problem are stored condition after condition, those that read first derivatives
first (`ordered`), so that the derivative pass (pinn.derivatives) computes first derivatives on them and on
the collocation points only: rows [collocation: value, first, second | derivative conditions: value, first |
the others: value].

A face is (axis, side): the points where input `axis` is at the box's lower (side -1) or upper (+1) end;
side is the sign of the outward normal, so du/dn = side * du/dx_axis there. An initial condition u = g at
t = t0 is a Dirichlet condition on the face (t, -1).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Face:
    axis: int   # the input held at the box's end
    side: int   # -1: lower end, +1: upper end (the sign of the outward normal)


def zero(points: np.ndarray) -> np.ndarray:
    """g = 0 at every point (the default target)."""
    return np.zeros(len(points))


def face_points(faces, n: int, sampler, lower, upper) -> np.ndarray:
    """n // len(faces) points on each face, face after face; the other inputs from `sampler`, one call of
    len(faces) * m numbers per free input (face i takes the i-th block of m)."""
    k, m = len(faces), n // len(faces)
    free = [sampler(k * m).reshape(k, m) for _ in range(len(lower) - 1)]
    blocks = []
    for i, face in enumerate(faces):
        others = iter(free)
        cols = [np.full(m, (lower if face.side < 0 else upper)[j]) if j == face.axis
                else lower[j] + (upper[j] - lower[j]) * next(others)[i] for j in range(len(lower))]
        blocks.append(np.stack(cols, 1))
    return np.concatenate(blocks)


def normal_derivative(faces, du: torch.Tensor) -> torch.Tensor:
    """du/dn on rows that are len(faces) equal blocks, face after face (as `face_points` lays them out)."""
    blocks = du.split(len(du) // len(faces))
    return torch.cat([face.side * b[:, face.axis] for face, b in zip(faces, blocks)])


@dataclass(frozen=True)
class Dirichlet:
    """u = g on the faces `on`."""
    on: tuple
    value: Callable = zero     # g(points) -> (k,), numpy
    share: int = 1             # this condition's share of the boundary points (relative to the others')

    @property
    def first(self) -> tuple:
        return ()

    def sample(self, n, sampler, lower, upper):
        pts = face_points(self.on, n, sampler, lower, upper)
        return pts, self.value(pts)

    def residual(self, x, u, du, g):
        return u - g


@dataclass(frozen=True)
class Neumann:
    """du/dn = g on the faces `on` (n: the outward normal)."""
    on: tuple
    value: Callable = zero
    share: int = 1

    @property
    def first(self) -> tuple:
        return tuple(sorted({face.axis for face in self.on}))

    sample = Dirichlet.sample

    def residual(self, x, u, du, g):
        return normal_derivative(self.on, du) - g


@dataclass(frozen=True)
class Robin:
    """du/dn + a u = g on the faces `on`."""
    on: tuple
    a: float
    value: Callable = zero
    share: int = 1

    first = Neumann.first
    sample = Dirichlet.sample

    def residual(self, x, u, du, g):
        return normal_derivative(self.on, du) + self.a * u - g


@dataclass(frozen=True)
class Periodic:
    """u(lower end of `axis`) = u(upper end) at paired points (the other inputs equal); value only."""
    axis: int
    share: int = 1

    @property
    def first(self) -> tuple:
        return ()

    def sample(self, n, sampler, lower, upper):
        low = face_points((Face(self.axis, -1),), n // 2, sampler, lower, upper)
        high = low.copy()
        high[:, self.axis] = upper[self.axis]
        return np.concatenate([low, high]), np.zeros(2 * len(low))

    def residual(self, x, u, du, g):
        low, high = u.chunk(2)
        return low - high


@dataclass(frozen=True)
class InitialVelocity:
    """u_t = g at t = t0, the lower end of input `time` (the second initial condition of a wave equation)."""
    time: int
    value: Callable = zero
    share: int = 1

    @property
    def first(self) -> tuple:
        return (self.time,)

    def sample(self, n, sampler, lower, upper):
        pts = face_points((Face(self.time, -1),), n, sampler, lower, upper)
        return pts, self.value(pts)

    def residual(self, x, u, du, g):
        return du[:, self.time] - g


def ordered(conditions) -> list:
    """The conditions in storage order: those reading first derivatives first (otherwise as listed)."""
    return sorted(conditions, key=lambda c: not c.first)


def sample(problem, n: int, sampler) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(points (M, d), targets (M,), rows per condition) for about n boundary points of `problem`, in the
    order of `ordered(problem.CONDITIONS)`. Condition i gets n * share_i // (sum of shares) of them (the last
    the remainder) and may round down (a condition on k faces takes a multiple of k)."""
    conds = ordered(problem.CONDITIONS)
    total = sum(c.share for c in conds)
    counts = [n * c.share // total for c in conds[:-1]]
    counts.append(n - sum(counts))
    points, values = [], []
    for i, (cond, count) in enumerate(zip(conds, counts)):
        pts, g = cond.sample(count, sampler, problem.LOWER, problem.UPPER)
        if len(pts) == 0:
            raise ValueError(f"{n} boundary points leave none to condition {i} ({type(cond).__name__}, "
                             f"{count} of them): give more boundary points")
        points.append(pts)
        values.append(g)
    return np.concatenate(points), np.concatenate(values), tuple(len(p) for p in points)


def first_rows(problem, rows) -> int:
    """How many of the boundary rows (laid out as `rows`, from `sample`) need first derivatives."""
    return sum(r for c, r in zip(ordered(problem.CONDITIONS), rows) if c.first)


def boundary_loss(problem, rows, x, u, du, g) -> torch.Tensor:
    """Sum over the conditions of the mean squared residual on its rows. x, u, g: all boundary rows; du:
    the first `first_rows` of them."""
    conds = ordered(problem.CONDITIONS)
    n1 = first_rows(problem, rows)
    xs, us, gs = x.split(rows), u.split(rows), g.split(rows)
    dus = iter(du.split([r for c, r in zip(conds, rows) if c.first]) if n1 else ())
    loss = None
    for cond, xi, ui, gi in zip(conds, xs, us, gs):
        term = cond.residual(xi, ui, next(dus) if cond.first else None, gi).square().mean()
        loss = term if loss is None else loss + term
    return loss
