"""How far our fast path drifts from the exact one: the same run (same points, same initial weights, AdamW) in
float64 with the eager pass (exact tanh; the path that reproduces DeepXDE step for step,
tests/test_deepxde_parity.py) against float32 eager and float32 with the compiled pass (rational tanh), over the
first `--steps` steps. Prints, per problem, the relative difference of the training loss at a few steps, of the
weights and of the test-grid prediction after the last step.

    python benchmarks/fast_path_drift.py --params params_cpu_study.yaml --depth 8 --steps 200
"""
import argparse
import dataclasses
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]   # the experiments run from the repository

import numpy as np
import torch

from pinn.config import load
from pinn.points import generate
from pinn.trainer import PinnData, predict, train

PATHS = {"float32 eager": ("float32", False), "float32 compiled": ("float32", True)}


def data_of(problem: str, cfg) -> PinnData:
    pts = cfg.points[problem]
    d = generate(problem, pts.domain, pts.boundary)
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)
    return PinnData(t(d["domain"]), t(d["boundary"]), t(d["boundary_values"]), t(d["test_points"]), d["test_u"],
                    d["axes"])


def run(cfg, problem, depth, data, dtype, compile):
    cfg = dataclasses.replace(cfg, dtype=dtype, compile=compile, log_every=1)
    res = train(cfg, problem, depth, "adamw", data, seed=0, progress=False)
    weights = torch.cat([p.detach().double().flatten() for p in res.model.parameters()])
    return np.array([row[1] for row in res.history]), weights, predict(res.model, data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params_cpu_study.yaml")
    ap.add_argument("--problems", nargs="+", default=["burgers", "poisson", "helmholtz"])
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = dataclasses.replace(load(args.params), steps=args.steps, optimizers={"adamw": {}})
    marks = [m for m in (1, 10, 50, 100, 200, 500, 1000) if m <= args.steps]
    print(f"AdamW, {args.params} (width {cfg.width}, lr {cfg.lr:g}, conventions {vars(cfg.conventions)}), "
          f"depth {args.depth}, seed 0: relative difference from float64 eager")
    print(f"| problem | path | loss at step {' / '.join(map(str, marks))} | weights | prediction |")
    print("|---|---|---|---|---|")
    for problem in args.problems:
        data = data_of(problem, cfg)
        loss64, w64, pred64 = run(cfg, problem, args.depth, data, "float64", False)
        for name, (dtype, compile) in PATHS.items():
            loss, w, pred = run(cfg, problem, args.depth, data, dtype, compile)
            at = [abs(loss[m - 1] - loss64[m - 1]) / abs(loss64[m - 1]) for m in marks]
            print(f"| {problem} | {name} | {' / '.join(f'{x:.1e}' for x in at)} | "
                  f"{((w - w64).norm() / w64.norm()).item():.1e} | "
                  f"{np.linalg.norm(pred - pred64) / np.linalg.norm(pred64):.1e} |", flush=True)


if __name__ == "__main__":
    main()
