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
`--seeds` replaces pinn.seeds; `--steps` replaces pinn.ablation.steps. Runs go case -> seed -> variant through
the grid runner (pipeline/grid.py; `--jobs` at once) and both outputs are rewritten after every run. Each run's
result is kept in <out>.seeds/<run>/seed<k>.json with its run key (its checkpoint beside it), and a rerun keeps
every result whose key matches: a study is extended by naming more cases or seeds (`--resume` is accepted for
old command lines; resuming is always on).

Writes <out>.json ({"settings", "runs": one row per (case, variant, seed), "variants": per (case, variant)
rel_l2 / final_loss as {"median", "min", "max", "seeds"} over the non-diverged seeds, "n_seeds",
"diverged_seeds"}) and <out>.md (median and min-max over seeds of the rel. L2 per variant).
"""
import argparse
import dataclasses
import functools
import itertools
from pathlib import Path

import torch

from pinn.config import load, parse_case
from pinn.scoring import rel_l2_unless_diverged
from pinn.trainer import load_data, resolve_device, run_key, train
from pipeline import grid, runs
from pipeline.grid import Run
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
            **{k: spread(runs.summarize_seeds(rs, (k,)), k) for k in ("rel_l2", "final_loss")},
            "wall_time_s": round(sum(r["wall_time_s"] for r in rs), 2),
        })
    return out


def spread(summary: dict, key: str) -> dict:
    """runs.summarize_seeds' `key`, `key`_min, `key`_max, `key`_seeds as {"median", "min", "max", "seeds"}."""
    return {"median": summary[key], "min": summary[f"{key}_min"], "max": summary[f"{key}_max"],
            "seeds": summary[f"{key}_seeds"]}


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


def variant_run(problem, depth, seed, steps, optimizer, init, options) -> Run:
    """One variant's run: its init and the ablation's steps; StableGrad's options where it is StableGrad."""
    sg = {k: options[k] for k in ("reference", "statistic", "bias")} if optimizer == "stablegrad" else {}
    return Run.of(problem, depth, optimizer, seed, init=init, steps=steps, **sg)


def train_variants(params: str, data_dir: str, out: str, group: list[Run]):
    """In a worker: train each run of the group; yields its test-grid error and final loss."""
    base = load(params)
    torch.set_num_threads(base.threads)
    data = load_data(Path(data_dir) / group[0].problem, getattr(torch, base.dtype), resolve_device(base.device))
    for run in group:
        res = train(grid.configure(base, run), run.problem, run.depth, run.control, data, seed=run.seed,
                    checkpoint=grid.seed_file(f"{out}.seeds", run).with_suffix(".pt"), progress=False)
        _, err = rel_l2_unless_diverged(res, data)
        yield {"rel_l2": err, "final_loss": runs.finite_or_none(res.final_loss), "diverged": res.diverged,
               "wall_time_s": round(res.wall_time_s, 2)}


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
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (each with pinn.threads threads)")
    ap.add_argument("--resume", action="store_true", help="accepted for old command lines: results whose run key "
                    "matches are always kept")
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
    if args.jobs < 1:
        raise BadInput(f"--jobs must be >= 1, got {args.jobs}")
    product = parse_grid(args.grid) if args.grid else None
    todo = grid_variants(cfg, product) if product else variants(cfg)
    settings = {"steps": steps, "width": cfg.width, "seeds": seeds, "init": cfg.init,
                **cfg.optimizers["stablegrad"], "mode": "grid" if product else "one-factor-at-a-time",
                "grid": product, "cases": [f"{p}:{d}" for p, d in cases], "lr": cfg.lr, "dtype": cfg.dtype,
                "points": {p: dataclasses.asdict(v) for p, v in cfg.points.items()}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    missing = [p for p, _ in cases if p not in cfg.points]
    if missing:
        raise BadInput(f"--cases: no pinn.points entry for {missing[0]!r} in {args.params}")
    plan = [(problem, depth, seed, name, opt, init, opts, variant_run(problem, depth, seed, steps, opt, init, opts))
            for problem, depth in cases for seed in seeds for name, opt, init, opts in todo]
    data = {p: load_data(Path(args.data) / p) for p in dict.fromkeys(p for p, _ in cases)}
    keys = {}
    for *_, run in plan:
        keys[run] = run_key(grid.configure(cfg, run), run.problem, run.depth, run.control, run.seed, data[run.problem])
    path_of = functools.partial(grid.seed_file, f"{out}.seeds")
    records, groups = grid.split([p[-1] for p in plan], keys, path_of)
    print(f"{len(records)} runs kept, {sum(map(len, groups))} to run ({args.jobs} at once)", flush=True)
    tick = grid.counter(sum(map(len, groups)))

    def rows():
        return [{"problem": problem, "depth": depth, "variant": name, "seed": seed, "optimizer": opt, "init": init,
                 **{k: opts[k] for k in ("reference", "statistic", "bias")},
                 **{k: records[run][k] for k in ("rel_l2", "final_loss", "diverged", "wall_time_s")}}
                for problem, depth, seed, name, opt, init, opts, run in plan if run in records]

    def done(group, result):
        _write(out, settings, rows())
        for run, r in zip(group, result):
            loss = "nan" if r["final_loss"] is None else f"{r['final_loss']:.3e}"
            tick(f"{run.name} seed {run.seed}: rel_l2={_fmt(r['rel_l2'])} loss={loss} ({r['wall_time_s']:.1f}s)")
    grid.execute(groups, keys, path_of, functools.partial(train_variants, args.params, args.data, str(out)),
                 args.jobs, records, done)
    _write(out, settings, rows())


if __name__ == "__main__":
    main()
