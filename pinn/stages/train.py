"""DVC stage: train one PINN run (problem, depth, gradient control) for every seed in pinn.seeds.

    python -m pinn.stages.train --problem burgers --depth 16 --optimizer stablegrad \
        --params params.yaml --data data/pinn/burgers --out data/pinn/runs/burgers-16-stablegrad \
        --ckpt data/checkpoints/pinn/burgers-16-stablegrad

Writes the run layout of pipeline/runs.py: <out>/metrics.json (rel_l2 = median over seeds, with min, max and
rel_l2_seeds; final_loss; diverged_seeds; the products used), <out>/history.csv (seed, step, loss, lr,
boundary_weight) and per seed <out>/seeds/seed<k>/{metrics.json, grad_scales.json, prediction.npz}.
Checkpoints in --ckpt, one per seed. A diverged seed is recorded (rel_l2 null) and the stage still exits 0.
"""
import argparse

import numpy as np
import torch

from pinn.config import load
from pinn.problems import PROBLEMS
from pinn.trainer import load_data, predict, rel_l2, resolve_device, train
from pipeline import runs
from pipeline.params import exits_on_bad_input
from pipeline.validate import BadInput

SUMMARIZED = ("rel_l2", "final_loss", "boundary_weight")


def run(cfg, problem, depth, control, data_dir, out, ckpt_dir=None, progress=True) -> dict:
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    data = load_data(data_dir, getattr(torch, cfg.dtype), device)
    per_seed, history = [], []
    for seed in cfg.seeds:
        res = train(cfg, problem, depth, control, data, seed, checkpoint=runs.checkpoint_path(ckpt_dir, seed),
                    progress=progress)
        pred = predict(res.model, data)
        err = rel_l2(pred, data.reference) if np.isfinite(pred).all() and not res.diverged else None
        folder = runs.seed_dir(out, seed)
        per_seed.append({"seed": seed, "rel_l2": err, "final_loss": runs.finite_or_none(res.final_loss),
                         "boundary_weight": res.boundary_weight, "wall_time_s": round(res.wall_time_s, 2),
                         "steps": res.steps, "diverged": res.diverged, "problem": problem, "depth": depth,
                         "optimizer": control, "device": str(device), "gemm": res.gemm})
        history += [{"seed": seed, "step": s, "loss": loss, "lr": lr, "boundary_weight": w}
                    for s, loss, lr, w in res.history]
        folder.mkdir(parents=True, exist_ok=True)
        runs.write_json(folder / "grad_scales.json", res.grad_scales)
        np.savez(folder / "prediction.npz", u=pred, u_ref=data.reference,
                 **{f"axis{j}": a for j, a in enumerate(data.axes)})
        print(f"{problem}-{depth}-{control} seed {seed}: rel_l2={err} diverged={res.diverged} "
              f"steps={res.steps} {res.wall_time_s:.1f}s", flush=True)
    return runs.write_run(out, per_seed, history, SUMMARIZED)


@exits_on_bad_input
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", required=True, choices=sorted(PROBLEMS))
    ap.add_argument("--depth", required=True, type=int)
    ap.add_argument("--optimizer", required=True, help="a key of pinn.optimizers")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", required=True, help="folder written by pinn.stages.generate")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ckpt", default=None, help="checkpoint folder (resumed from if it matches the run)")
    args = ap.parse_args(argv)
    cfg = load(args.params)
    if args.depth <= 0:
        raise BadInput(f"--depth must be > 0, got {args.depth}")
    if args.optimizer not in cfg.optimizers:
        raise BadInput(f"--optimizer {args.optimizer!r} is not a key of pinn.optimizers "
                       f"({', '.join(cfg.optimizers)})")
    run(cfg, args.problem, args.depth, args.optimizer, args.data, args.out, args.ckpt)


if __name__ == "__main__":
    main()
