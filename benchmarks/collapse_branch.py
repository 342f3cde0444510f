"""Is a deep AdamW run's collapse to u = 0 made by our fast path's numerics, or by Adam itself? One study run
(the params' AdamW, its conventions, points and seed) is trained on the fast path (float32, compiled pass,
rational tanh) to step `--branch`, a few hundred steps before the loss spike the study recorded; from that same
state (weights, Adam's moments, step count) it then goes on `--steps` steps three ways: the fast path again,
float32 eager (exact torch.tanh: DeepXDE's numerics) and float64 eager (the path that is DeepXDE step for step,
tests/test_deepxde_parity.py). If every branch spikes and ends near u = 0 the collapse is the optimizer's at that
state; if only the fast path does, its rounding makes it.

The study's spikes (data/cpu_study/runs/poisson-32-adamw/history.csv): seed 0 between steps 2650 and 2750,
seed 1 between 4050 and 4100; DeepXDE's three seeds at Poisson 32 did not collapse.

    python benchmarks/collapse_branch.py --problem poisson --depth 32 --seed 0 --branch 2500 --steps 400
"""
import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]   # the experiments run from the repository, not installed

import torch
from conventions import study_data
from pinn_vs_deepxde import cpu_name

from pinn.config import load
from pinn.trainer import predict, rel_l2, run_key, train
from pipeline import runs

BRANCHES = {"fast path (float32, compiled)": ("float32", True), "float32 eager (exact tanh)": ("float32", False),
            "float64 eager": ("float64", False)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params_cpu_study.yaml")
    ap.add_argument("--problem", default="poisson")
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--branch", type=int, default=2500, help="the step the branches start from")
    ap.add_argument("--steps", type=int, default=400, help="steps each branch trains")
    ap.add_argument("--every", type=int, default=25, help="print the loss every this many steps")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load(args.params)
    cfg = dataclasses.replace(cfg, optimizers={"adamw": cfg.optimizers["adamw"]}, log_every=args.every)
    if not (0 < args.branch and args.branch + args.steps <= cfg.steps):
        raise SystemExit(f"--branch {args.branch} + --steps {args.steps} must lie within pinn.steps ({cfg.steps})")
    data = study_data(cfg, args.problem, cfg.conventions)
    run = (args.problem, args.depth, "adamw", args.seed)
    print(f"CPU: {cpu_name()}; {args.problem} depth {args.depth} AdamW seed {args.seed} ({args.params}): fast path "
          f"to step {args.branch}, then {args.steps} steps per branch", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        start = Path(tmp) / "start.pt"
        train(cfg, *run[:3], data, args.seed, checkpoint=start, stop_after=args.branch, progress=False)
        state = torch.load(start, weights_only=True)
        rows = {}
        for name, (dtype, compile) in BRANCHES.items():
            c = dataclasses.replace(cfg, dtype=dtype, compile=compile)
            branch = Path(tmp) / f"{dtype}-{compile}.pt"
            runs.save_checkpoint(branch, run_key(c, *run[:3], args.seed, data),
                                 {k: v for k, v in state.items() if k != "key"})
            res = train(c, *run[:3], data, args.seed, checkpoint=branch, stop_after=args.branch + args.steps,
                        progress=False)
            rows[name] = ([(s, loss) for s, loss, *_ in res.history if s >= args.branch],
                          rel_l2(predict(res.model, data), data.reference))
    steps = [s for s, _ in next(iter(rows.values()))[0]]
    print("| branch | " + " | ".join(f"loss at {s}" for s in steps) + " | max loss | rel. L2 at the end |")
    print("|---|" + "---|" * (len(steps) + 2))
    for name, (hist, err) in rows.items():
        print(f"| {name} | " + " | ".join(f"{loss:.3g}" for _, loss in hist) +
              f" | {max(loss for _, loss in hist):.3g} | {err:.3g} |")


if __name__ == "__main__":
    main()
