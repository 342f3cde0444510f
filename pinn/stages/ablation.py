"""Ablation of StableGrad's open choices on PINNs, every variant over every seed.

Pipeline default (stage `pinn_ablation@<problem>`, one per problem of pinn.ablation.problems; kept cheap:
pinn.seeds of params.yaml):

    python -m pinn.stages.ablation --params params.yaml --problem poisson --data data/pinn \
        --out data/pinn/ablation/poisson

For each (problem, depth) in pinn.ablation and each seed in pinn.seeds: AdamW and StableGrad with each
initialization (stablegrad.init.SCHEMES), then StableGrad with reference "last"/"output", statistic
std/rms, bias shared/own/none, one factor at a time (the rest as in pinn.optimizers.stablegrad / pinn.init).

Multi-seed study (CLI overrides; not part of the pipeline; docs/method.md has the exact command used):

    python -m pinn.stages.ablation --params params.yaml --data data/pinn --out /tmp/pinn_ablation/study \
        --seeds 0 1 2 --cases poisson:8 burgers:8 poisson:16 helmholtz:8 burgers:16 helmholtz:16 poisson:4 \
        burgers:4 helmholtz:4 --grid reference=last,output statistic=std,rms --resume

`--grid FIELD=V1,V2 ...` replaces the one-factor-at-a-time set by AdamW plus StableGrad over the cartesian
product of the listed values (fields: init, reference, statistic, bias; unlisted ones from params.yaml).
`--cases PROBLEM:DEPTH ...` replaces the product pinn.ablation.problems x pinn.ablation.depths (`--problem P`:
P x pinn.ablation.depths);
`--seeds` replaces pinn.seeds; `--steps` replaces pinn.ablation.steps. Runs go case -> seed -> variant and
both outputs are rewritten after every run; `--resume` keeps the runs of an existing <out>.json made with
the same settings (so a study can be extended by more cases or seeds).

Writes <out>.json ({"settings", "runs": one row per (case, variant, seed), "variants": per (case, variant)
rel_l2 / final_loss as {"median", "min", "max", "seeds"} over the non-diverged seeds, "n_seeds",
"diverged_seeds"}) and <out>.md (median and min-max over seeds of the rel. L2 per variant).
"""
import argparse
import dataclasses
import itertools
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from pinn.config import load, parse_case
from pinn.trainer import load_data, predict, rel_l2, resolve_device, train
from pipeline import runs
from pipeline.params import exits_on_bad_input
from pipeline.validate import BadInput
from stablegrad.init import SCHEMES as INITS
from stablegrad.options import BIAS_MODES as BIASES
from stablegrad.options import REFERENCES, STATISTICS

GRID_FIELDS = {"init": INITS, "reference": REFERENCES, "statistic": STATISTICS, "bias": BIASES}


def variants(cfg):
    """(name, optimizer, init, StableGrad options) for the one-factor-at-a-time runs, without duplicates."""
    base = cfg.optimizers["stablegrad"]
    out = []
    for init in INITS:
        out.append((f"adamw, init={init}", "adamw", init, base))
        out.append((f"stablegrad, init={init}", "stablegrad", init, base))
    for field, values in [("reference", REFERENCES), ("statistic", STATISTICS), ("bias", BIASES)]:
        for v in values:
            if v != base[field]:
                out.append((f"stablegrad, {field}={v}", "stablegrad", base.get("init", cfg.init),
                            {**base, field: v}))
    return out


def grid_variants(cfg, grid: dict):
    """AdamW (for each init in grid, else cfg.init) plus StableGrad over the product of grid's values."""
    base = cfg.optimizers["stablegrad"]
    inits = grid.get("init", [base.get("init", cfg.init)])
    out = []
    for init in inits:
        out.append(("adamw" + (f", init={init}" if "init" in grid else ""), "adamw", init, base))
    sg_fields = [f for f in grid if f != "init"]
    for init in inits:
        for values in itertools.product(*(grid[f] for f in sg_fields)):
            opts = {**base, **dict(zip(sg_fields, values))}
            parts = [f"init={init}"] if "init" in grid else []
            parts += [f"{f}={v}" for f, v in zip(sg_fields, values)]
            out.append((", ".join(["stablegrad"] + parts), "stablegrad", init, opts))
    return out


def parse_grid(items) -> dict:
    """["reference=last,output", "statistic=std,rms"] -> {"reference": [...], "statistic": [...]}."""
    grid = {}
    for item in items:
        field, sep, values = item.partition("=")
        if not sep or field not in GRID_FIELDS:
            raise BadInput(f"--grid {item!r}: expected FIELD=V1,V2; "
                             f"allowed fields: {', '.join(GRID_FIELDS)}")
        vals = [v for v in values.split(",") if v]
        bad = [v for v in vals if v not in GRID_FIELDS[field]]
        if not vals or bad:
            raise BadInput(f"--grid {item!r}: unknown value(s) {bad or values!r}; "
                             f"allowed for {field}: {', '.join(GRID_FIELDS[field])}")
        grid[field] = list(dict.fromkeys(vals))
    return grid


def _spread(values) -> dict:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return {"median": None, "min": None, "max": None, "seeds": list(values)}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "seeds": list(values)}


def aggregate(rows: list[dict]) -> list[dict]:
    """One entry per (problem, depth, variant), in first-seen order: rel_l2 and final_loss as
    {"median", "min", "max", "seeds"} over the seeds (diverged seeds: None in "seeds", left out of the
    rest)."""
    groups = {}
    for r in rows:
        groups.setdefault((r["problem"], r["depth"], r["variant"]), []).append(r)
    out = []
    for (problem, depth, variant), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        first = rs[0]
        out.append({
            "problem": problem, "depth": depth, "variant": variant, "optimizer": first["optimizer"],
            "init": first["init"], "reference": first["reference"], "statistic": first["statistic"],
            "bias": first["bias"], "seeds": [r["seed"] for r in rs], "n_seeds": len(rs),
            "diverged_seeds": sum(bool(r["diverged"]) for r in rs),
            "rel_l2": _spread([r["rel_l2"] for r in rs]),
            "final_loss": _spread([r["final_loss"] for r in rs]),
            "wall_time_s": round(sum(r["wall_time_s"] for r in rs), 2),
        })
    return out


def _fmt(x):
    return "—" if x is None else f"{x:.3e}"


def markdown(settings: dict, summary: list[dict]) -> str:
    s = settings
    head = (f"Ablation ({s['steps']} steps, width {s['width']}, seeds {', '.join(map(str, s['seeds']))}; "
            f"base: init={s['init']}, reference={s['reference']}, statistic={s['statistic']}, "
            f"bias={s['bias']}). "
            "rel. L2 on the test grid: median and [min, max] over seeds.")
    lines = [head, "",
             ("| problem | depth | variant | seeds | rel. L2 median | rel. L2 min | rel. L2 max | "
              "final loss median | diverged |"),
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for v in summary:
        e, f = v["rel_l2"], v["final_loss"]
        lines.append(f"| {v['problem']} | {v['depth']} | {v['variant']} | {v['n_seeds']} | "
                     f"{_fmt(e['median'])} | "
                     f"{_fmt(e['min'])} | {_fmt(e['max'])} | {_fmt(f['median'])} | {v['diverged_seeds']} |")
    return "\n".join(lines) + "\n"


def _finite(x):
    return x if x is not None and math.isfinite(x) else None


def _write(out: Path, settings: dict, rows: list[dict]):
    summary = aggregate(rows)
    settings = {**settings, "seeds": sorted({r["seed"] for r in rows} | set(settings["seeds"])),
                "cases": list(dict.fromkeys([f"{r['problem']}:{r['depth']}" for r in rows]
                                            + settings["cases"]))}
    runs.write_study(out, {"settings": settings, "runs": rows, "variants": summary}, markdown(settings, summary))


@exits_on_bad_input
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", required=True, help="data/pinn (one folder per problem)")
    ap.add_argument("--out", required=True, help="output stem: writes <out>.json and <out>.md")
    ap.add_argument("--problem", help="only this problem, at each depth of pinn.ablation.depths")
    ap.add_argument("--seeds", type=int, nargs="+", help="override pinn.seeds")
    ap.add_argument("--cases", nargs="+", metavar="PROBLEM:DEPTH",
                    help="override the product pinn.ablation.problems x pinn.ablation.depths")
    ap.add_argument("--steps", type=int, help="override pinn.ablation.steps")
    ap.add_argument("--grid", nargs="+", metavar="FIELD=V1,V2",
                    help="AdamW + StableGrad over this product instead of the one-factor-at-a-time set")
    ap.add_argument("--resume", action="store_true", help="keep matching runs of an existing <out>.json")
    args = ap.parse_args(argv)
    cfg = load(args.params)
    if "stablegrad" not in cfg.optimizers:
        raise BadInput("the ablation varies StableGrad's options: pinn.optimizers needs a `stablegrad` entry")
    seeds = list(dict.fromkeys(args.seeds)) if args.seeds else list(cfg.seeds)
    if any(s < 0 for s in seeds):
        raise BadInput(f"--seeds must be >= 0, got {seeds}")
    problems = [parse_case(f"{args.problem}:1")[0]] if args.problem else cfg.ablation.problems
    cases = ([parse_case(c) for c in args.cases] if args.cases
             else [(p, d) for p in problems for d in cfg.ablation.depths])
    steps = cfg.ablation.steps if args.steps is None else args.steps
    if steps <= 0:
        raise BadInput(f"--steps must be > 0, got {steps}")
    grid = parse_grid(args.grid) if args.grid else None
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    todo = grid_variants(cfg, grid) if grid else variants(cfg)
    settings = {"steps": steps, "width": cfg.width, "seeds": seeds, "init": cfg.init,
                **cfg.optimizers["stablegrad"], "mode": "grid" if grid else "one-factor-at-a-time",
                "grid": grid, "cases": [f"{p}:{d}" for p, d in cases], "lr": cfg.lr, "dtype": cfg.dtype,
                "points": {p: dataclasses.asdict(v) for p, v in cfg.points.items()}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if args.resume and out.with_suffix(".json").exists():
        old = json.loads(out.with_suffix(".json").read_text())
        # the fields a grid sets do not need to match the base setting (every run records its own)
        same = [k for k in ("steps", "width", "init", "reference", "statistic", "bias", "lr", "dtype", "mode")
                if k not in (grid or {})]
        if all(old.get("settings", {}).get(k) == settings[k] for k in same):
            done = {(r["problem"], r["depth"], r["variant"], r["seed"]): r for r in old["runs"]}
            print(f"resuming: {len(done)} runs kept from {out.with_suffix('.json')}", flush=True)
        else:
            print(f"not resuming: {out.with_suffix('.json')} was made with other settings", flush=True)
    missing = [p for p, _ in cases if p not in cfg.points]
    if missing:
        raise BadInput(f"--cases: no pinn.points entry for {missing[0]!r} in {args.params}")
    rows = list(done.values())
    total = len(cases) * len(seeds) * len(todo)
    n, t_start = 0, time.perf_counter()
    for problem, depth in cases:
        data = load_data(Path(args.data) / problem, getattr(torch, cfg.dtype), device)
        for seed in seeds:
            for name, opt, init, opts in todo:
                n += 1
                if (problem, depth, name, seed) in done:
                    continue
                # the control's own options (its lr where it sets one), this variant's init
                own = {**cfg.optimizers.get(opt, {}), **(opts if opt == "stablegrad" else {}), "init": init}
                c = dataclasses.replace(cfg, steps=steps, optimizers={opt: own})
                res = train(c, problem, depth, opt, data, seed=seed, progress=False)
                pred = predict(res.model, data)
                err = None if res.diverged or not np.isfinite(pred).all() else rel_l2(pred, data.reference)
                rows.append({"problem": problem, "depth": depth, "variant": name, "seed": seed,
                             "optimizer": opt,
                             "init": init, **{k: opts[k] for k in ("reference", "statistic", "bias")},
                             "rel_l2": err,
                             "final_loss": _finite(res.final_loss), "diverged": res.diverged,
                             "wall_time_s": round(res.wall_time_s, 2)})
                _write(out, settings, rows)
                loss = "nan" if _finite(res.final_loss) is None else f"{res.final_loss:.3e}"
                print(f"[{n}/{total} {time.perf_counter() - t_start:.0f}s] {problem} depth {depth} "
                      f"seed {seed} "
                      f"{name}: rel_l2={_fmt(err)} loss={loss} ({res.wall_time_s:.1f}s)", flush=True)
    _write(out, settings, rows)


if __name__ == "__main__":
    main()
