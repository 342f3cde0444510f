"""The scale of u, u_x and u_xx and the residual loss at initialization, per init and depth (a diagnosis, not a
DVC stage): why forward-normalising inits lose to Glorot on deep PINNs (docs/method.md).

    python -m pinn.stages.init_scales --problem poisson --depths 4 16 --width 32
"""
import argparse

import torch

from pinn.derivatives import value_and_derivatives
from pinn.model import build_model
from pinn.points import generate
from pinn.problems import PROBLEMS
from stablegrad.init import SCHEMES


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="poisson", choices=sorted(PROBLEMS))
    ap.add_argument("--depths", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--points", type=int, default=1000)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    problem = PROBLEMS[args.problem]
    x = torch.tensor(generate(args.problem, args.points, 4, seed=0)["domain"], dtype=torch.float32)
    print(f"| depth | init | std u | std du | std d2u | residual loss |  ({args.problem}, width {args.width}, "
          f"{args.points} points, seed 0)")
    for depth in args.depths:
        for init in SCHEMES:
            torch.manual_seed(0)
            model = build_model(problem, args.width, depth, "tanh", init, x)
            with torch.no_grad():
                u, du, d2u = value_and_derivatives(model, x, problem.SECOND, gemm="aten")
                res = problem.residual(x, u, du, d2u).square().mean()
            print(f"| {depth} | {init} | {u.std():.2g} | {du.std():.2g} | {torch.stack(list(d2u.values())).std():.2g} "
                  f"| {res:.2g} |")


if __name__ == "__main__":
    main()
