"""Ablation of StableGrad's open choices on PINNs (one factor at a time around params.yaml's setting).

    python -m pinn.stages.ablation --params params.yaml --data data/pinn --out data/pinn/ablation

For each (problem, depth) in pinn.ablation: AdamW and StableGrad with each initialization (gain, lsuv,
lsuv-jacobian), then StableGrad with reference "last"/"output", statistic std/rms, bias shared/own/none
(the rest as in pinn.stablegrad / pinn.init). Writes ablation.json and ablation.md (table of rel. L2).
"""
import argparse
import dataclasses
import json
from pathlib import Path

import torch

from pinn.config import INITS
from pinn.trainer import load_data, predict, rel_l2, resolve_device, train
from pipeline.params import load_section


def variants(cfg):
    """(name, optimizer, init, StableGradOptions) for every ablation run, without duplicates."""
    base = cfg.stablegrad
    out = []
    for init in INITS:
        out.append((f"adamw, init={init}", "adamw", init, base))
        out.append((f"stablegrad, init={init}", "stablegrad", init, base))
    for field, values in [("reference", ("last", "output")), ("statistic", ("std", "rms")),
                          ("bias", ("shared", "own", "none"))]:
        for v in values:
            if v != getattr(base, field):
                opts = dataclasses.replace(base, **{field: v})
                out.append((f"stablegrad, {field}={v}", "stablegrad", cfg.init, opts))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", required=True, help="data/pinn (one folder per problem)")
    ap.add_argument("--out", required=True, help="output stem: writes <out>.json and <out>.md")
    args = ap.parse_args(argv)
    cfg = load_section(args.params, "pinn")
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    rows = []
    for problem in cfg.ablation.problems:
        data = load_data(Path(args.data) / problem, getattr(torch, cfg.dtype), device)
        for depth in cfg.ablation.depths:
            for name, opt, init, opts in variants(cfg):
                c = dataclasses.replace(cfg, steps=cfg.ablation.steps, init=init, stablegrad=opts)
                res = train(c, problem, depth, opt, data, seed=cfg.seeds[0], progress=False)
                err = None if res.diverged else rel_l2(predict(res.model, data), data.reference)
                row = {"problem": problem, "depth": depth, "variant": name, "optimizer": opt, "init": init,
                       **dataclasses.asdict(opts), "rel_l2": err, "final_loss": res.final_loss,
                       "diverged": res.diverged, "wall_time_s": round(res.wall_time_s, 2)}
                rows.append(row)
                print(f"{problem} depth {depth} {name}: rel_l2={err} loss={res.final_loss:.3e}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"steps": cfg.ablation.steps, "runs": rows}, indent=2) + "\n")
    head = (f"Ablation ({cfg.ablation.steps} steps, width {cfg.width}, seed {cfg.seeds[0]}; base: init={cfg.init}, "
            f"reference={cfg.stablegrad.reference}, statistic={cfg.stablegrad.statistic}, "
            f"bias={cfg.stablegrad.bias})")
    lines = [head, "",
             "| problem | depth | variant | rel. L2 | final loss |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        err = "diverged" if r["rel_l2"] is None else f"{r['rel_l2']:.3e}"
        lines.append(f"| {r['problem']} | {r['depth']} | {r['variant']} | {err} | {r['final_loss']:.3e} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
