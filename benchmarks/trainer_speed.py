"""The study's per-step costs, this checkout against a reference commit, side by side in one run: the Adam phase
(pinn.trainer.train, ms per step) and the L-BFGS finish (pinn.finish.lbfgs_finish, ms per iteration) of the
adamw control on one problem of params_cpu_study.yaml, at the given depths and seeds, 1 thread.

The reference commit is checked out into a temporary git worktree; each (checkout, depth, seed) runs in its own
Python process on the same points (generated once by this checkout), after a warm-up in that process (so
torch.compile's time is not counted; it is cached on disk), and rounds alternate between the two checkouts so
that machine noise hits both. Prints the CPU, every run, and per depth the median ratio reference / this (for
L-BFGS also per function evaluation: the line search makes 1-2 per iteration, depending on where Adam ended).

    python benchmarks/trainer_speed.py --ref 4366414 [--problem burgers] [--depths 4 32] [--seeds 0 1 2]
        [--steps 200] [--lbfgs 100] [--rounds 1]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pinn_vs_deepxde import cpu_name

# Runs inside a checkout (old or new API of the finish: a loss function or a derivative function).
TIMING = """
import dataclasses, json, sys, torch
import pinn.trainer as T
from pinn.config import load
from pinn.finish import lbfgs_finish
from pinn.problems import PROBLEMS
params, points, problem, depth, seed, steps, iters = sys.argv[1:8]
depth, seed, steps, iters = int(depth), int(seed), int(steps), int(iters)
torch.set_num_threads(1)
cfg = load(params)
data = T.load_data(points)
run = lambda n: T.train(dataclasses.replace(cfg, steps=n), problem, depth, "adamw", data, seed, progress=False)
run(5)                                                   # warm-up: compile (or read the compile cache)
res = run(steps)
make = T.loss_function if hasattr(T, "loss_function") else T.derivative_function
loss = make(cfg.compile, res.gemm)
history = cfg.conventions.lbfgs_history
lbfgs_finish(res.model, PROBLEMS[problem], data, loss, res.boundary_weight, 3, history=history)   # warm-up
fin = lbfgs_finish(res.model, PROBLEMS[problem], data, loss, res.boundary_weight, iters, history=history)
print(json.dumps({"adam_ms": 1e3 * res.wall_time_s / steps, "lbfgs_ms": 1e3 * fin.wall_time_s / max(fin.iters, 1),
                  "lbfgs_iters": fin.iters, "eval_ms": 1e3 * fin.wall_time_s / max(fin.evals, 1)}))
"""


def measure(checkout: Path, args, points: Path, depth: int, seed: int) -> dict:
    out = subprocess.run([sys.executable, "-c", TIMING, str(ROOT / args.params), str(points), args.problem,
                          str(depth), str(seed), str(args.steps), str(args.lbfgs)],
                         check=False, cwd=checkout, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode:
        raise SystemExit(f"{checkout}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", required=True, help="the reference commit (e.g. the one before a trainer change)")
    ap.add_argument("--params", default="params_cpu_study.yaml")
    ap.add_argument("--problem", default="burgers")
    ap.add_argument("--depths", type=int, nargs="+", default=[4, 32])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lbfgs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(["git", "worktree", "add", "--detach", str(tmp / "ref"), args.ref], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            subprocess.run([sys.executable, "-m", "pinn.stages.generate", "--params", args.params, "--problem",
                            args.problem, "--out", str(tmp / "points")], cwd=ROOT, check=True, capture_output=True)
            print(f"CPU: {cpu_name()}; {args.problem}, adamw, {args.params}, {args.steps} Adam steps and "
                  f"{args.lbfgs} L-BFGS iterations per run, 1 thread; reference {args.ref}")
            got = {}
            for r in range(args.rounds):
                for depth in args.depths:
                    for seed in args.seeds:
                        for name, checkout in (("reference", tmp / "ref"), ("this", ROOT)):
                            m = measure(checkout, args, tmp / "points", depth, seed)
                            got.setdefault((depth, name), []).append(m)
                            print(f"  depth {depth:2d} seed {seed} {name:9s}: Adam {m['adam_ms']:7.2f} ms/step, "
                                  f"L-BFGS {m['lbfgs_ms']:7.2f} ms/iteration ({m['lbfgs_iters']} iterations, "
                                  f"{m['eval_ms']:.2f} ms per function evaluation)", flush=True)
            for depth in args.depths:
                med = {(name, k): statistics.median(m[k] for m in got[depth, name])
                       for name in ("reference", "this") for k in ("adam_ms", "lbfgs_ms", "eval_ms")}
                print(f"depth {depth}: Adam {med['reference', 'adam_ms']:.2f} -> {med['this', 'adam_ms']:.2f} ms/step "
                      f"(x{med['reference', 'adam_ms'] / med['this', 'adam_ms']:.2f}), L-BFGS "
                      f"{med['reference', 'lbfgs_ms']:.2f} -> {med['this', 'lbfgs_ms']:.2f} ms/iteration "
                      f"(x{med['reference', 'lbfgs_ms'] / med['this', 'lbfgs_ms']:.2f}; per function evaluation "
                      f"x{med['reference', 'eval_ms'] / med['this', 'eval_ms']:.2f})")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "ref")], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
