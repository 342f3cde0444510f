"""Our problems as DeepXDE sets them up, and DeepXDE's set-up in our trainer's terms: the one place that
knows both (the differential test tests/test_deepxde_parity.py, the DeepXDE reference and the benchmarks).

DeepXDE (PyTorch backend) trains `sum(losses)` with, in this order, the mean squared PDE residual on
`data.train_x_all` (the domain points AND the boundary and initial points) and one mean squared error per
condition on that condition's points (`data.train_x[:sum(num_bcs)]`, condition by condition); its net takes the
raw inputs. `pinn_data` turns a DeepXDE data object into our `PinnData` with exactly those rows, so that our
trainer, with the conventions input_map=none and float64, computes the same loss on the same points.
DeepXDE is imported lazily (it is a test and benchmark dependency, not the pipeline's).
"""
from __future__ import annotations

import numpy as np
import torch

from pinn.problems import PROBLEMS, burgers

BURGERS_T_END = 0.99   # DeepXDE's Burgers example trains on t in [0, 0.99] (the test grid's last time)


def deepxde_data(problem: str, n_domain: int, n_boundary: int, n_initial: int | None = None):
    """DeepXDE's data object for one of our problems with its default (Hammersley) sampler, its conditions in
    the order of the problem's CONDITIONS. Burgers: the initial condition (n_initial points, default
    n_boundary - n_boundary // 2) and the boundary condition on x = -1, 1 (n_boundary // 2), as DeepXDE's Burgers
    example; Poisson and Helmholtz: one Dirichlet condition on the square."""
    import deepxde as dde

    mod = PROBLEMS[problem]
    if problem == "burgers":
        geom = dde.geometry.GeometryXTime(dde.geometry.Interval(mod.LOWER[0], mod.UPPER[0]),
                                          dde.geometry.TimeDomain(mod.LOWER[1], BURGERS_T_END))

        def pde(x, u):
            return (dde.grad.jacobian(u, x, i=0, j=1) + u * dde.grad.jacobian(u, x, i=0, j=0)
                    - burgers.NU * dde.grad.hessian(u, x, i=0, j=0))

        bc = dde.icbc.DirichletBC(geom, lambda x: 0, lambda _, on_boundary: on_boundary)
        ic = dde.icbc.IC(geom, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
        n_initial = n_boundary - n_boundary // 2 if n_initial is None else n_initial
        return dde.data.TimePDE(geom, pde, [ic, bc], num_domain=n_domain, num_boundary=n_boundary // 2,
                                num_initial=n_initial)
    geom = dde.geometry.Rectangle(list(mod.LOWER), list(mod.UPPER))

    def pde(x, u):
        d2 = [dde.grad.hessian(u, x, i=j, j=j) for j in (0, 1)]
        return mod.residual(x, u[:, 0], None, [d[:, 0] for d in d2])[:, None]

    bc = dde.icbc.DirichletBC(geom, lambda x: 0, lambda _, on_boundary: on_boundary)
    return dde.data.PDE(geom, pde, bc, num_domain=n_domain, num_boundary=n_boundary)


def deepxde_net(width: int, depth: int, n_inputs: int = 2):
    """DeepXDE's FNN as its users build it: tanh, "Glorot normal" (zero biases)."""
    import deepxde as dde

    return dde.nn.FNN([n_inputs] + [width] * depth + [1], "tanh", "Glorot normal")


def condition_targets(data) -> np.ndarray:
    """The target of every condition point of `data`, condition by condition (DeepXDE's `train_x` order)."""
    from deepxde.utils import to_numpy

    x, out, start = data.train_x, [], 0
    for bc, n in zip(data.bcs, data.num_bcs):   # bc.func: DeepXDE's wrapper (X, beg, end, aux) of the target
        target = np.asarray(to_numpy(bc.func(x, start, start + n, None)), dtype=float).reshape(-1)
        out.append(np.broadcast_to(target, (n,)))   # a constant target comes as one number
        start += n
    return np.concatenate(out)


def pinn_data(data, problem: str, dtype=torch.float64):
    """Our PinnData for DeepXDE's data object (from `deepxde_data`): residual rows = DeepXDE's `train_x_all`,
    boundary rows = its condition points and targets, condition by condition; the test grid is ours."""
    from pinn.points import generate
    from pinn.trainer import PinnData

    grid = generate(problem, 1, 4)
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)
    return PinnData(t(data.train_x_all), t(data.train_x[:sum(data.num_bcs)]), t(condition_targets(data)),
                    t(grid["test_points"]), grid["test_u"], grid["axes"], tuple(data.num_bcs))


def our_state_dict(net) -> dict:
    """DeepXDE's FNN weights under our MLP's names (`linears.i` -> `layers.i`): pinn.trainer.train's
    `init_state`."""
    return {k.replace("linears.", "layers."): v.detach().clone() for k, v in net.state_dict().items()}


def record_losses(model, into: list) -> None:
    """Append the loss of every closure evaluation of a compiled DeepXDE model's optimizer to `into` (Adam:
    one per step, before the update; L-BFGS: every function evaluation, line-search trials included)."""
    step = model.opt.step

    def recorded(closure):
        def evaluate():
            loss = closure()
            into.append(loss.item())
            return loss
        return step(evaluate)

    model.opt.step = recorded
