"""Each gradient control's init and learning rate, chosen without the test grid (a study, not a DVC stage).

    python -m pinn.stages.select --params params.yaml --out docs/selection/quick \
        --cases burgers:4 burgers:16 poisson:4 poisson:16 helmholtz:4 helmholtz:16 \
        --inits glorot lsuv-jacobian --lrs 3e-4 1e-3 3e-3 --seeds 0 --jobs 2 --resume
    python -m pinn.stages.select --params params.yaml --out docs/selection/agc_clipping --cases ... \
        --controls agc --inits glorot --lrs 3e-3 --option agc.clipping=0.01,0.04,0.16 --jobs 2

For every case (problem:depth), control of pinn.optimizers, init, lr and seed: one run with the settings of
params.yaml otherwise, on the pipeline's own training points (seed 0, pinn.conventions). Each run is scored by its
loss on HELD-OUT points (fresh Latin hypercube collocation and boundary points of the same counts, seed 1; residual + boundary
weight x boundary error): the choice never reads the test grid. The test-grid error is recorded beside it,
for information only.

`--option CONTROL.KEY=V1,V2,..` adds one of a control's options to its grid (e.g. AGC's clipping lambda);
`--schedules constant cosine` adds the lr schedule to the grid (default: params' pinn.schedule only).
Choice per control: the (init, lr, schedule, option) with the lowest mean over cases of log10(held-out loss, median over
seeds). Writes <out>.json (settings, one row per run, the scores and the choice) and <out>.md, rewritten after
every run. Runs go through the grid runner (pipeline/grid.py): each run's result is kept in
<out>.seeds/<run>/seed<k>.json with its run key (with its checkpoint beside it), and a rerun keeps every result
whose key matches (`--resume` is accepted for old command lines; resuming is always on).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import statistics
from pathlib import Path

import torch

from pinn.config import PER_CONTROL, SCHEDULES, load, parse_case
from pinn.points import generate
from pinn.problems import PROBLEMS
from pinn.scoring import rel_l2_unless_diverged
from pinn.trainer import PinnData, derivative_function, pinn_losses, run_key, train
from pipeline import grid, runs
from pipeline.grid import Run
from pipeline.params import exits_on_bad_input
from pipeline.validate import BadInput
from stablegrad.init import SCHEMES


@functools.cache
def _points(problem: str, n_domain: int, n_boundary: int, seed: int, sampler: str = "lhs",
            residual_points: str = "domain"):
    d = generate(problem, n_domain, n_boundary, seed, sampler, residual_points)
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)
    return PinnData(t(d["domain"]), t(d["boundary"]), t(d["boundary_values"]), t(d["test_points"]),
                    d["test_u"], d["axes"], tuple(d["condition_rows"]))


def heldout_loss(cfg, model, problem: str, data: PinnData) -> float:
    """The training loss (residual + boundary_weight x boundary) of `model` on the points of `data`."""
    x = torch.cat([data.domain, data.boundary]).to(next(model.parameters()).dtype)
    derivs = derivative_function(False, "aten")
    loss_r, loss_b, _ = pinn_losses(model, PROBLEMS[problem], x, len(data.domain), data.boundary_values, derivs,
                                    data.condition_rows)
    return float((loss_r + cfg.boundary_weight * loss_b).detach())


def training(cfg, run: Run):
    """(settings, training points, held-out points) of a run: the pipeline's points (seed 0, its conventions)
    and fresh Latin hypercube points of the same counts (seed 1), the same held-out set for every convention."""
    pts, conv = cfg.points[run.problem], cfg.conventions
    return (grid.configure(cfg, run), _points(run.problem, pts.domain, pts.boundary, 0, conv.sampler,
                                              conv.residual_points),
            _points(run.problem, pts.domain, pts.boundary, 1))


def one_run(params: str, out: str, group: list[Run]):
    """In a worker: train each run of the group on the training points; yields its row (held-out loss, the
    test-grid error for information)."""
    torch.set_num_threads(1)
    base = load(params)
    for run in group:
        cfg, train_data, held_out = training(base, run)
        option = {k: x for k, x in run.overrides if k not in ("init", "lr", "schedule")}
        res = train(cfg, run.problem, run.depth, run.control, train_data, seed=run.seed, progress=False,
                    checkpoint=grid.seed_file(f"{out}.seeds", run).with_suffix(".pt"))
        _, err = rel_l2_unless_diverged(res, train_data)
        yield {"problem": run.problem, "depth": run.depth, "control": run.control, "init": cfg.init, "lr": cfg.lr,
               "schedule": cfg.schedule, "seed": run.seed, "option": option,
               "heldout_loss": heldout_loss(cfg, res.model, run.problem, held_out) if err is not None else None,
               "final_loss": runs.finite_or_none(res.final_loss), "rel_l2": err, "diverged": res.diverged,
               "wall_time_s": round(res.wall_time_s, 2)}


def choose(rows: list[dict]) -> dict:
    """{control: {"init", "lr", "schedule", "option", "score", "table": [{init, lr, schedule, option, score,
    rel_l2_median}]}}: score = mean over cases of log10(median over seeds of the held-out loss); a diverged or
    missing case scores +inf. (Rows without a schedule, from before it was in the grid: schedule None.)"""
    key = lambda r: (r["init"], r["lr"], r.get("schedule"), json.dumps(r.get("option", {}), sort_keys=True))
    cases = sorted({(r["problem"], r["depth"]) for r in rows})
    out = {}
    for control in dict.fromkeys(r["control"] for r in rows):
        table = []
        for init, lr, schedule, option in dict.fromkeys(key(r) for r in rows if r["control"] == control):
            logs, errs = [], []
            for case in cases:
                rs = [r for r in rows if (r["problem"], r["depth"]) == case and r["control"] == control
                      and key(r) == (init, lr, schedule, option)]
                held = [r["heldout_loss"] for r in rs if r["heldout_loss"] is not None]
                logs.append(math.log10(statistics.median(held)) if held and len(held) == len(rs) else math.inf)
                errs += [r["rel_l2"] for r in rs if r["rel_l2"] is not None]
            table.append({"init": init, "lr": lr, "schedule": schedule, "option": json.loads(option),
                          "score": sum(logs) / len(logs),
                          "rel_l2_median": statistics.median(errs) if errs else None})
        best = min(table, key=lambda t: t["score"])
        out[control] = {"init": best["init"], "lr": best["lr"], "schedule": best["schedule"],
                        "option": best["option"], "score": best["score"], "table": table}
    return out


def markdown(settings: dict, chosen: dict) -> str:
    lines = [(f"Init and lr per control, chosen by the held-out loss (never the test grid): {settings['steps']} "
             f"steps, width {settings['width']}, cases {', '.join(settings['cases'])}, seeds "
             f"{', '.join(map(str, settings['seeds']))}. score = mean over cases of log10(held-out loss, median "
             "over seeds); lower is better. The test-grid rel. L2 (median over cases and seeds) is shown for "
             "information only."), "",
             "| control | init | lr | schedule | option | score | test rel. L2 (info) | chosen |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for control, c in chosen.items():
        for t in sorted(c["table"], key=lambda t: t["score"]):
            err = "—" if t["rel_l2_median"] is None else f"{t['rel_l2_median']:.3e}"
            mark = "**yes**" if all(t[k] == c[k] for k in ("init", "lr", "schedule", "option")) else ""
            opt = ", ".join(f"{k}={x:g}" for k, x in t["option"].items()) or "—"
            sched = t["schedule"] or settings["schedule"]
            lines.append(f"| {control} | {t['init']} | {t['lr']:g} | {sched} | {opt} | {t['score']:.3f} | {err} | {mark} |")
    return "\n".join(lines) + "\n"


def _write(out: Path, settings: dict, rows: list[dict]) -> None:
    chosen = choose(rows)
    runs.write_study(out, {"settings": settings, "runs": rows, "chosen": chosen}, markdown(settings, chosen))


def parse_option(text: str, cfg) -> tuple[str, str, list[float]]:
    """'agc.clipping=0.01,0.04' -> ('agc', 'clipping', [0.01, 0.04]), checked against pinn.optimizers."""
    try:
        name, values = text.split("=", 1)
        control, key = name.split(".", 1)
        numbers = [float(x) for x in values.split(",")]
    except ValueError:
        raise BadInput(f"--option {text!r}: expected CONTROL.KEY=V1,V2,.. with numbers") from None
    if control not in cfg.optimizers or key not in cfg.optimizers[control]:
        raise BadInput(f"--option {text!r}: {name} is not an option set in pinn.optimizers")
    if not all(math.isfinite(x) for x in numbers):
        raise BadInput(f"--option {text!r}: values must be finite numbers")
    return control, key, numbers


@exits_on_bad_input
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", required=True, help="output stem: writes <out>.json and <out>.md")
    ap.add_argument("--cases", nargs="+", required=True, metavar="PROBLEM:DEPTH")
    ap.add_argument("--inits", nargs="+", default=list(SCHEMES))
    ap.add_argument("--lrs", nargs="+", type=float, default=[3e-4, 1e-3, 3e-3])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--controls", nargs="+", default=None, help="keys of pinn.optimizers (default: all)")
    ap.add_argument("--option", default=None, metavar="CONTROL.KEY=V1,V2,..",
                    help="one control option added to that control's grid (numbers)")
    ap.add_argument("--schedules", nargs="+", default=None, help=f"lr schedules in the grid ({' | '.join(SCHEDULES)}; "
                    "default: params' pinn.schedule)")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (one thread each)")
    ap.add_argument("--resume", action="store_true", help="accepted for old command lines: results whose run key "
                    "matches are always kept")
    args = ap.parse_args(argv)
    cfg = load(args.params)
    cases = [parse_case(c) for c in args.cases]
    bad = [i for i in args.inits if i not in SCHEMES]
    if bad or any(not (lr > 0 and math.isfinite(lr)) for lr in args.lrs) or args.jobs < 1:
        raise BadInput(f"--inits must be among {', '.join(SCHEMES)}, --lrs finite and > 0, --jobs >= 1")
    schedules = args.schedules or [cfg.schedule]
    if any(s not in SCHEDULES for s in schedules):
        raise BadInput(f"--schedules must be among {', '.join(SCHEDULES)}")
    controls = args.controls or list(cfg.optimizers)
    if any(c not in cfg.optimizers for c in controls):
        raise BadInput(f"--controls must be keys of pinn.optimizers ({', '.join(cfg.optimizers)})")
    options = {c: [None] for c in controls}
    if args.option is not None:
        control, key, values = parse_option(args.option, cfg)
        if control not in controls:
            raise BadInput(f"--option {args.option}: {control} is not among --controls")
        options[control] = [{key: x} for x in values]
    settings = {"steps": cfg.steps, "width": cfg.width, "cases": args.cases, "inits": args.inits, "lrs": args.lrs,
                "seeds": args.seeds, "option": args.option, "schedules": schedules,
                "controls": {c: {k: x for k, x in o.items() if k not in PER_CONTROL} for c, o in cfg.optimizers.items()
                             if c in controls}, "schedule": cfg.schedule,
                "points": {p: dataclasses.asdict(v) for p, v in cfg.points.items()}, "params": args.params}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plan = [Run.of(p, d, c, s, init=i, lr=lr, schedule=sc, **(o or {})) for p, d in cases for c in controls for i in args.inits
            for lr in args.lrs for s in args.seeds for o in options[c] for sc in schedules]
    keys = {}
    for run in plan:
        c, data, _ = training(cfg, run)
        keys[run] = run_key(c, run.problem, run.depth, run.control, run.seed, data)
    path_of = functools.partial(grid.seed_file, f"{out}.seeds")
    records, todo = grid.split(plan, keys, path_of)
    print(f"{len(records)} runs kept, {sum(map(len, todo))} to run ({args.jobs} at once)", flush=True)
    rows = lambda: [{k: x for k, x in records[r].items() if k != "key"} for r in plan if r in records]
    tick = grid.counter(sum(map(len, todo)))

    def done(group, result):
        _write(out, settings, rows())
        for r in result:
            tick(f"{r['problem']}:{r['depth']} {r['control']} init={r['init']} lr={r['lr']:g} {r['schedule']} "
                 f"{r['option'] or ''} seed {r['seed']}: held-out loss {r['heldout_loss']} ({r['wall_time_s']:.0f}s)")
    grid.execute(todo, keys, path_of, functools.partial(one_run, args.params, str(out)), args.jobs, records, done)
    _write(out, settings, rows())
    for control, c in choose(rows()).items():
        print(f"{control}: init={c['init']} lr={c['lr']:g} {c['schedule']} {c['option'] or ''} (score {c['score']:.3f})")


if __name__ == "__main__":
    main()
