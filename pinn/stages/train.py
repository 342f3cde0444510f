"""Train one PINN run (problem, depth, optimizer) for every seed in pinn.seeds; write its outputs.

    python -m pinn.stages.train --problem burgers --depth 16 --optimizer stablegrad \
        --params params.yaml --data data/pinn/burgers --out data/pinn/runs/burgers-16-stablegrad

Outputs in --out: metrics.json (rel_l2 = median over seeds, rel_l2_seeds, final_loss, wall_time_s, steps,
diverged), history.csv (step, loss, lr per seed), prediction.npz (first seed, on the test grid),
grad_scales.json (per-layer gradient std before/after the rescale, per seed); checkpoints in --ckpt.
A diverged run is recorded (diverged: true, rel_l2: null) and the stage still exits 0.
"""
import argparse
import csv
import json
import math
import statistics
from pathlib import Path

import numpy as np
import torch

from pinn.config import OPTIMIZERS
from pinn.problems import PROBLEMS
from pinn.trainer import load_data, predict, rel_l2, resolve_device, train
from pipeline.params import load_section


def run(cfg, problem, depth, optimizer, data_dir, out, ckpt_dir=None, progress=True) -> dict:
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    data = load_data(data_dir, getattr(torch, cfg.dtype), device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_seed, history, scales = [], [], {}
    for i, seed in enumerate(cfg.seeds):
        ckpt = Path(ckpt_dir) / f"seed{seed}.pt" if ckpt_dir else None
        res = train(cfg, problem, depth, optimizer, data, seed, checkpoint=ckpt, progress=progress)
        pred = predict(res.model, data)
        err = rel_l2(pred, data.reference) if np.isfinite(pred).all() and not res.diverged else None
        per_seed.append({"seed": seed, "rel_l2": err, "final_loss": _finite(res.final_loss),
                         "wall_time_s": res.wall_time_s, "steps": res.steps, "diverged": res.diverged})
        history += [(seed, *row) for row in res.history]
        scales[str(seed)] = res.grad_scales
        if i == 0:
            np.savez(out / "prediction.npz", u=pred, u_ref=data.reference,
                     **{f"axis{j}": a for j, a in enumerate(data.axes)})
        print(f"{problem}-{depth}-{optimizer} seed {seed}: rel_l2={err} diverged={res.diverged} "
              f"steps={res.steps} {res.wall_time_s:.1f}s")
    errs = [s["rel_l2"] for s in per_seed if s["rel_l2"] is not None]
    metrics = {
        "rel_l2": statistics.median(errs) if errs else None,
        "rel_l2_seeds": [s["rel_l2"] for s in per_seed],
        "final_loss": statistics.median([s["final_loss"] for s in per_seed if s["final_loss"] is not None]
                                        or [math.nan]),
        "wall_time_s": sum(s["wall_time_s"] for s in per_seed),
        "steps": max(s["steps"] for s in per_seed),
        "diverged": any(s["diverged"] for s in per_seed),
        "diverged_seeds": sum(s["diverged"] for s in per_seed),
        "problem": problem, "depth": depth, "optimizer": optimizer, "device": str(device),
    }
    metrics["final_loss"] = _finite(metrics["final_loss"])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    with open(out / "history.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seed", "step", "loss", "lr"])
        w.writerows(history)
    (out / "grad_scales.json").write_text(json.dumps(scales) + "\n")
    return metrics


def _finite(x):
    return x if x is not None and math.isfinite(x) else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", required=True, choices=sorted(PROBLEMS))
    ap.add_argument("--depth", required=True, type=int)
    ap.add_argument("--optimizer", required=True, choices=OPTIMIZERS)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", required=True, help="folder written by pinn.stages.generate")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ckpt", default=None, help="checkpoint folder (resumed from if it matches the run)")
    args = ap.parse_args(argv)
    cfg = load_section(args.params, "pinn")
    if args.depth <= 0:
        raise SystemExit(f"--depth must be > 0, got {args.depth}")
    run(cfg, args.problem, args.depth, args.optimizer, args.data, args.out, args.ckpt)


if __name__ == "__main__":
    main()
