"""PDE problems. Each is one module exposing:

INPUTS (input names, in column order), LOWER / UPPER (domain box), SECOND (input indices whose
second derivative `residual` needs), residual(x, u, du, d2u) (torch; du: (N, d), d2u: {index: (N,)}),
CONDITIONS (its boundary and initial conditions, pinn.conditions: Dirichlet, Neumann, Robin, Periodic,
InitialVelocity; each owns its points, targets, the derivatives it reads and its residual; the boundary
loss is one mean per condition, summed, as DeepXDE's), grid() -> list of 1D axes (the test grid, one per
input) and reference(axes) -> u on the grid with shape (len(axes[1]), len(axes[0])).

Adding a PDE (docs/adding_a_pde.md): write such a module, add one line to PROBLEMS, add it and its point counts
to params.yaml. heat (a Neumann condition) and wave (an initial velocity) are worked examples, not in the
default params.yaml lists.
"""
from pinn.problems import burgers, heat, helmholtz, poisson, wave

PROBLEMS = {
    "burgers": burgers,
    "poisson": poisson,
    "helmholtz": helmholtz,
    "heat": heat,
    "wave": wave,
}
