"""PDE problems. Each is one module exposing:

INPUTS (input names, in column order), LOWER / UPPER (domain box), SECOND (input indices whose
second derivative `residual` needs), residual(x, u, du, d2u) (torch; du: (N, d), d2u: {index: (N,)}),
boundary(n, sampler) -> (points, values) (numpy; `sampler(m)` gives m numbers in [0, 1)),
grid() -> list of 1D axes (the test grid, one per input), reference(axes) -> u on the grid with
shape (len(axes[1]), len(axes[0])), and boundary_loss(x, squared_error) (torch): the boundary term of the
loss, one mean per condition summed as DeepXDE does (one Dirichlet condition: the plain mean; Burgers: the
initial condition's mean plus the boundary condition's).

Adding a PDE: write such a module, add one line to PROBLEMS, add its point counts to params.yaml.
"""
from pinn.problems import burgers, helmholtz, poisson

PROBLEMS = {
    "burgers": burgers,
    "poisson": poisson,
    "helmholtz": helmholtz,
}
