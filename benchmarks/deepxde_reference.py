"""DeepXDE out of the box on a study's PDEs, net width, point counts and step budget: the anchor every PINN
result of ours is compared with (the credible-evidence issue).

"Out of the box" = what a DeepXDE user gets: tanh FNN with its "Glorot normal" init, Adam lr 1e-3 constant,
DeepXDE's own point sampler (same counts as the params file), float32, reverse-mode derivatives; with --lbfgs,
then DeepXDE's own L-BFGS phase (`model.compile("L-BFGS")`, its shipped options but maxiter). Scored on our test
grids (pinn.points: the same grid and reference as the pipeline). One thread per run.

    python benchmarks/deepxde_reference.py --params params_cpu_study.yaml --depths 4 8 --seeds 0 1 2 \
        --lbfgs 2500 --jobs 2 --out data/cpu_study/deepxde.json

Prints one line per run and writes <out> (per problem and depth: rel_l2 = median over seeds, rel_l2_seeds,
wall seconds; plus the settings and the CPU).
"""
import argparse
import multiprocessing
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


def one_run(problem, n_domain, n_boundary, width, depth, steps, seed, test_x, test_u, lbfgs=0):
    """rel. L2 after Adam, wall seconds; then (if lbfgs) rel. L2 after DeepXDE's own L-BFGS phase."""
    import deepxde as dde

    dde.config.set_default_float("float32")
    dde.config.set_random_seed(seed)
    net = dde.nn.FNN([2] + [width] * depth + [1], "tanh", "Glorot normal")
    model = dde.Model(pde_data(problem, n_domain, n_boundary), net)
    model.compile("adam", lr=LR)
    t0 = time.perf_counter()
    model.train(iterations=steps, display_every=steps, verbose=0)
    wall = time.perf_counter() - t0
    err = rel_l2(model.predict(test_x)[:, 0].reshape(test_u.shape), test_u)
    if not lbfgs:
        return err, wall, None
    dde.optimizers.set_LBFGS_options(maxiter=lbfgs)   # its other options as shipped (history 100, strong Wolfe)
    model.compile("L-BFGS")
    model.train(verbose=0)
    return err, wall, rel_l2(model.predict(test_x)[:, 0].reshape(test_u.shape), test_u)


def run_job(params, problem, depth, steps, seed, lbfgs):
    """One run in a worker process: the params file's width and point counts, our test grid."""
    torch.set_num_threads(1)
    cfg = load(params)
    pts = cfg.points[problem]
    ref = generate(problem, 1, 4)   # only the test grid and its reference (the same as the pipeline's)
    err, wall, after = one_run(problem, pts.domain, pts.boundary, cfg.width, depth, steps, seed,
                               ref["test_points"], ref["test_u"], lbfgs)
    then = f", after L-BFGS {after:.3e}" if lbfgs else ""
    print(f"deepxde {problem} depth {depth} seed {seed}: rel_l2 {err:.3e} ({wall:.0f} s){then}", flush=True)
    return err, wall, after


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params_cpu_study.yaml")
    ap.add_argument("--problems", nargs="+", default=None, help="default: pinn.problems of the params")
    ap.add_argument("--depths", nargs="+", type=int, default=[4, 8])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=None, help="default: pinn.steps of the params")
    ap.add_argument("--lbfgs", type=int, default=0, metavar="ITERS",
                    help="then DeepXDE's L-BFGS phase for ITERS iterations (what its users do; pinn.stages.finish)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, one thread each")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    cfg = load(args.params)
    steps = args.steps or cfg.steps
    problems = args.problems or cfg.problems
    print(f"CPU: {cpu_name()}; DeepXDE out of the box (Glorot normal, Adam lr {LR:g} constant), width {cfg.width}, "
          f"{steps} steps, point counts of {args.params}", flush=True)
    jobs = [(args.params, p, d, steps, s, args.lbfgs) for p in problems for d in args.depths for s in args.seeds]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:   # one thread each
        done = dict(zip(jobs, pool.starmap(run_job, jobs)))
    results = {}
    for problem in problems:
        for depth in args.depths:
            errs, walls, finished = zip(*(done[args.params, problem, depth, steps, s, args.lbfgs] for s in args.seeds))
            results.setdefault(problem, {})[str(depth)] = {
                "rel_l2": statistics.median(errs), "rel_l2_seeds": list(errs), "seeds": args.seeds,
                "wall_time_s": [round(w, 1) for w in walls]}
            if args.lbfgs:
                results[problem][str(depth)].update(rel_l2_lbfgs=statistics.median(finished),
                                                    rel_l2_lbfgs_seeds=list(finished))
    if args.out:
        write_json(args.out, {"settings": {"params": args.params, "width": cfg.width, "steps": steps, "lr": LR,
                                           "schedule": "constant", "init": "Glorot normal", "cpu": cpu_name(),
                                           "lbfgs_iters": args.lbfgs,
                                           "points": {p: vars(cfg.points[p]) for p in problems}},
                              "deepxde": results})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
