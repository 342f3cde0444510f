"""The points of one problem: seeded Latin hypercube (or Hammersley: pinn.conventions.sampler) collocation and
boundary points (condition after condition, pinn.conditions), the test grid and the reference solution on it
(what pinn_generate writes, and what studies regenerate in memory)."""
import numpy as np
from scipy.stats import qmc

from pinn import conditions
from pinn.problems import PROBLEMS


def grid_points(axes) -> np.ndarray:
    """All points of the grid, row-major with the first axis fastest (matches u[j, i])."""
    mesh = np.meshgrid(*axes, indexing="xy")
    return np.stack([m.ravel() for m in mesh], 1)


def hammersley(n: int, d: int) -> np.ndarray:
    """n points of the Hammersley set in [0, 1)^d without its first point (the origin, as DeepXDE skips it):
    (i / (n + 1), radical inverses of i in the bases 2, 3, 5, ...) for i = 1..n; deterministic."""
    first = np.arange(1, n + 1)[:, None] / (n + 1)
    if d == 1:
        return first
    return np.hstack([first, qmc.Halton(d - 1, scramble=False).random(n + 1)[1:]])


def samplers(kind: str, d: int, seed: int):
    """(domain(n) -> (n, d) points in [0, 1)^d, boundary(m) -> m numbers in [0, 1)) of the convention `kind`:
    "lhs", seeded Latin hypercubes; "hammersley", DeepXDE's default family: the Hammersley set inside, one
    van der Corput sequence (continued from call to call) on the boundary; not seeded."""
    if kind == "lhs":
        rng = np.random.default_rng(seed)
        return (lambda n: qmc.LatinHypercube(d, seed=rng).random(n),
                lambda m: qmc.LatinHypercube(1, seed=rng).random(m)[:, 0])
    if kind == "hammersley":
        line = qmc.Halton(1, scramble=False)
        line.fast_forward(1)                       # skip 0
        return (lambda n: hammersley(n, d)), (lambda m: line.random(m)[:, 0])
    raise ValueError(f"sampler must be lhs | hammersley, got {kind!r}")


def generate(problem_name: str, n_domain: int, n_boundary: int, seed: int = 0, sampler: str = "lhs",
             residual_points: str = "domain") -> dict:
    """The training points (pinn.conventions: `sampler`; `residual_points` "all" puts the boundary points
    into the residual set too, after the domain points), the test grid and the reference on it."""
    if residual_points not in ("domain", "all"):
        raise ValueError(f"residual_points must be domain | all, got {residual_points!r}")
    problem = PROBLEMS[problem_name]
    lower, upper = np.array(problem.LOWER), np.array(problem.UPPER)
    inside, on_boundary = samplers(sampler, len(lower), seed)
    domain = qmc.scale(inside(n_domain), lower, upper)
    boundary, values, rows = conditions.sample(problem, n_boundary, on_boundary)
    if residual_points == "all":
        domain = np.concatenate([domain, boundary])
    axes = problem.grid()
    return {"domain": domain, "boundary": boundary, "boundary_values": values, "condition_rows": np.array(rows),
            "axes": axes, "test_points": grid_points(axes), "test_u": problem.reference(axes)}
