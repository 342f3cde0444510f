"""The points of one problem: seeded Latin hypercube collocation and boundary points (condition after
condition, pinn.conditions), the test grid and the reference solution on it (what pinn_generate writes, and
what studies regenerate in memory)."""
import numpy as np
from scipy.stats import qmc

from pinn import conditions
from pinn.problems import PROBLEMS


def grid_points(axes) -> np.ndarray:
    """All points of the grid, row-major with the first axis fastest (matches u[j, i])."""
    mesh = np.meshgrid(*axes, indexing="xy")
    return np.stack([m.ravel() for m in mesh], 1)


def generate(problem_name: str, n_domain: int, n_boundary: int, seed: int = 0) -> dict:
    problem = PROBLEMS[problem_name]
    rng = np.random.default_rng(seed)
    lower, upper = np.array(problem.LOWER), np.array(problem.UPPER)
    domain = qmc.scale(qmc.LatinHypercube(len(lower), seed=rng).random(n_domain), lower, upper)
    sampler = lambda m: qmc.LatinHypercube(1, seed=rng).random(m)[:, 0]
    boundary, values, rows = conditions.sample(problem, n_boundary, sampler)
    axes = problem.grid()
    return {"domain": domain, "boundary": boundary, "boundary_values": values, "condition_rows": np.array(rows),
            "axes": axes, "test_points": grid_points(axes), "test_u": problem.reference(axes)}
