"""Collocation, boundary and test points of one problem (pinn.conventions: sampler, residual points), plus its
reference.

Writes collocation.npz (domain, boundary, boundary_values, condition_rows: the boundary rows of each of the
problem's conditions, pinn.conditions), test.npz (the test grid and the reference u on it) and reference.npz
(the reference u with its axes named by the problem's inputs, e.g. x, t, u).

    python -m pinn.stages.generate --problem burgers --params params.yaml --out data/pinn/burgers
"""
import argparse
from pathlib import Path

import numpy as np

from pinn.config import load
from pinn.points import generate
from pinn.problems import PROBLEMS
from pipeline.params import exits_on_bad_input


@exits_on_bad_input
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", required=True, choices=sorted(PROBLEMS))
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cfg = load(args.params)
    pts = cfg.points[args.problem]
    d = generate(args.problem, pts.domain, pts.boundary, args.seed, cfg.conventions.sampler,
                 cfg.conventions.residual_points)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = PROBLEMS[args.problem].INPUTS
    np.savez(out / "collocation.npz", domain=d["domain"], boundary=d["boundary"],
             boundary_values=d["boundary_values"], condition_rows=d["condition_rows"])
    np.savez(out / "test.npz", points=d["test_points"], u=d["test_u"], ndim=len(d["axes"]),
             **{f"axis{i}": a for i, a in enumerate(d["axes"])}, names=np.array(names))
    np.savez(out / "reference.npz", **dict(zip(names, d["axes"])), u=d["test_u"])
    print(f"{args.problem}: {len(d['domain'])} domain, {len(d['boundary'])} boundary, "
          f"{len(d['test_points'])} test points -> {out}")


if __name__ == "__main__":
    main()
