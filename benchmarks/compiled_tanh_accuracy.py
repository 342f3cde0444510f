"""Does the compiled derivative pass's rational tanh (pinn/derivatives.py: Eigen's approximation, a few float32
ulp) change what training reaches? Burgers, AdamW, the quick settings of params.yaml except the step count and
a cosine decay to 0.01 x lr, three ways on the same points and seeds: eager (torch.tanh), compiled with the
rational tanh (what the pipeline runs), compiled with torch.tanh. One thread.

    python benchmarks/compiled_tanh_accuracy.py [--depth 8] [--steps 3000] [--seeds 0 1 2]

Prints the test-grid rel. L2 per mode and seed, then per mode the median over seeds.
"""
import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the experiments run from the repository

import torch

import pinn.derivatives
from pinn.config import load
from pinn.points import generate
from pinn.trainer import PinnData, predict, rel_l2, train

RATIONAL = pinn.derivatives.fast_tanh


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load(Path(__file__).resolve().parents[1] / "params.yaml")
    pts = cfg.points["burgers"]
    d = generate("burgers", pts.domain, pts.boundary, seed=0)
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)
    data = PinnData(t(d["domain"]), t(d["boundary"]), t(d["boundary_values"]), t(d["test_points"]), d["test_u"],
                    d["axes"], tuple(d["condition_rows"]))
    medians = {}
    for mode in ("eager", "compiled-rational", "compiled-torch-tanh"):
        pinn.derivatives.fast_tanh = torch.tanh if mode == "compiled-torch-tanh" else RATIONAL
        c = dataclasses.replace(cfg, steps=args.steps, compile=mode != "eager", final_lr_factor=0.01)
        errs = []
        for seed in args.seeds:
            res = train(c, "burgers", args.depth, "adamw", data, seed=seed, progress=False)
            errs.append(rel_l2(predict(res.model, data), data.reference))
            print(f"{mode} seed {seed}: rel_l2 {errs[-1]:.3e} final loss {res.final_loss:.3e}", flush=True)
        medians[mode] = statistics.median(errs)
    for mode, m in medians.items():
        print(f"{mode}: median rel_l2 {m:.3e} over seeds {args.seeds}")


if __name__ == "__main__":
    main()
