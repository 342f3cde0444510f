"""DeepXDE out of the box on a study's PDEs, net width, point counts and step budget: the anchor every PINN
result of ours is compared with (the credible-evidence issue).

"Out of the box" = what a DeepXDE user gets: tanh FNN with its "Glorot normal" init, Adam lr 1e-3 constant,
DeepXDE's own point sampler (same counts as the params file), float32, reverse-mode derivatives. Scored on our
test grids (pinn.points: the same grid and reference as the pipeline). One thread.

    python benchmarks/deepxde_reference.py --params params_cpu_study.yaml --depths 4 8 --seeds 0 \
        --out data/cpu_study/deepxde.json

Prints one line per run and writes <out> (per problem and depth: rel_l2 = median over seeds, rel_l2_seeds,
wall seconds; plus the settings and the CPU).
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ["DDE_BACKEND"] = "pytorch"
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]   # the experiments run from the repository, not installed

import numpy as np
import torch
from pinn_vs_deepxde import cpu_name

from pinn.config import load
from pinn.points import generate
from pinn.problems import burgers, helmholtz, poisson
from pinn.trainer import rel_l2
from pipeline.runs import write_json

LR = 1e-3


def pde_data(problem: str, n_domain: int, n_boundary: int):
    """DeepXDE's data object for one of our problems, with the point counts of our params file."""
    import deepxde as dde

    if problem == "burgers":
        geom = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 0.99))

        def pde(x, u):
            return (dde.grad.jacobian(u, x, i=0, j=1) + u * dde.grad.jacobian(u, x, i=0, j=0)
                    - burgers.NU * dde.grad.hessian(u, x, i=0, j=0))

        bc = dde.icbc.DirichletBC(geom, lambda x: 0, lambda _, on_boundary: on_boundary)
        ic = dde.icbc.IC(geom, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
        return dde.data.TimePDE(geom, pde, [bc, ic], num_domain=n_domain, num_boundary=n_boundary // 2,
                                num_initial=n_boundary - n_boundary // 2)
    mod = {"poisson": poisson, "helmholtz": helmholtz}[problem]
    geom = dde.geometry.Rectangle(list(mod.LOWER), list(mod.UPPER))

    def pde(x, u):
        d2 = [dde.grad.hessian(u, x, i=j, j=j) for j in (0, 1)]
        return mod.residual(x, u[:, 0], None, [d[:, 0] for d in d2])[:, None]

    bc = dde.icbc.DirichletBC(geom, lambda x: 0, lambda _, on_boundary: on_boundary)
    return dde.data.PDE(geom, pde, bc, num_domain=n_domain, num_boundary=n_boundary)


def one_run(problem, n_domain, n_boundary, width, depth, steps, seed, test_x, test_u):
    import deepxde as dde

    dde.config.set_default_float("float32")
    dde.config.set_random_seed(seed)
    net = dde.nn.FNN([2] + [width] * depth + [1], "tanh", "Glorot normal")
    model = dde.Model(pde_data(problem, n_domain, n_boundary), net)
    model.compile("adam", lr=LR)
    t0 = time.perf_counter()
    model.train(iterations=steps, display_every=steps, verbose=0)
    wall = time.perf_counter() - t0
    pred = model.predict(test_x)[:, 0].reshape(test_u.shape)
    return rel_l2(pred, test_u), wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params_cpu_study.yaml")
    ap.add_argument("--problems", nargs="+", default=None, help="default: pinn.problems of the params")
    ap.add_argument("--depths", nargs="+", type=int, default=[4, 8])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=None, help="default: pinn.steps of the params")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load(args.params)
    steps = args.steps or cfg.steps
    problems = args.problems or cfg.problems
    print(f"CPU: {cpu_name()}; DeepXDE out of the box (Glorot normal, Adam lr {LR:g} constant), width {cfg.width}, "
          f"{steps} steps, point counts of {args.params}", flush=True)
    results = {}
    for problem in problems:
        pts = cfg.points[problem]
        ref = generate(problem, 1, 4)   # only the test grid and its reference (the same as the pipeline's)
        for depth in args.depths:
            errs, walls = [], []
            for seed in args.seeds:
                err, wall = one_run(problem, pts.domain, pts.boundary, cfg.width, depth, steps, seed,
                                    ref["test_points"], ref["test_u"])
                errs.append(err)
                walls.append(wall)
                print(f"deepxde {problem} depth {depth} seed {seed}: rel_l2 {err:.3e} ({wall:.0f} s)", flush=True)
            results.setdefault(problem, {})[str(depth)] = {
                "rel_l2": statistics.median(errs), "rel_l2_seeds": errs, "seeds": args.seeds,
                "wall_time_s": [round(w, 1) for w in walls]}
    if args.out:
        write_json(args.out, {"settings": {"params": args.params, "width": cfg.width, "steps": steps, "lr": LR,
                                           "schedule": "constant", "init": "Glorot normal", "cpu": cpu_name(),
                                           "points": {p: vars(cfg.points[p]) for p in problems}},
                              "deepxde": results})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
