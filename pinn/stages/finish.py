"""The converged study's L-BFGS finish: every (problem, depth, control, seed) run of a study continued with
L-BFGS (pinn/finish.py) from the weights its Adam-family run ended with; the accuracy a user can reach,
reported apart from the optimizer comparison.

    python -m pinn.stages.finish --params params_cpu_study.yaml --study data/cpu_study \
        --iters 2500 --jobs 2     (the second half of `make cpu-study`: every control; --controls picks some)

Needs the study's points (pinn.stages.study first). A run's end weights come from the study's checkpoint
when it matches the run (pinn.trainer.run_key); otherwise (a fresh clone) the run is trained again, through
the same pinn.trainer.train, first. Writes <study>/lbfgs/: seeds/<run>/seed<k>.json (kept on a rerun when its
key matches: run key, iterations and pinn/finish.py), summary.json (the key format of data/summary.json:
rel_l2 = median after L-BFGS, rel_l2_start_* = where the run ended), table.md, verdicts.md (pinn/verdicts.py,
when <study>/deepxde.json is there); and
<study>/figures/pinn_error_vs_depth_lbfgs.{png,pdf} and pinn_lbfgs_curves_depth<D>.{png,pdf} (loss and
error per iteration, one figure per depth).
"""
from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import torch
from tqdm import tqdm

from pinn import verdicts
from pinn.config import load
from pinn.finish import lbfgs_finish
from pinn.problems import PROBLEMS
from pinn.stages.study import plan
from pinn.trainer import load_data, loss_function, resolve_device, run_key, train
from pipeline import grid, runs
from pipeline.grid import Run
from pipeline.params import exits_on_bad_input
from pipeline.validate import BadInput

CHUNK = 100
SUMMARIZED = ("rel_l2", "rel_l2_start", "loss", "loss_start", "iters_done")


def finish_key(cfg, problem, depth, control, seed, data, iters) -> str:
    return runs.run_key({"run": run_key(cfg, problem, depth, control, seed, data), "iters": iters,
                         "chunk": CHUNK, "history": cfg.conventions.lbfgs_history},
                        sources=runs.source_files(("pinn/finish.py",)))


def finish_runs(params: str, study: str, iters: int, group: list[Run]):
    """In a worker: for each seed of one run, its end weights (the study's checkpoint, or trained again), then
    L-BFGS; yields each seed's record."""
    cfg = load(params)
    torch.set_num_threads(cfg.threads)
    study, run = Path(study), group[0]
    data = load_data(study / "pinn" / run.problem, getattr(torch, cfg.dtype), resolve_device(cfg.device))
    for r in group:
        res = train(cfg, r.problem, r.depth, r.control, data, r.seed,
                    checkpoint=runs.checkpoint_path(study / "checkpoints" / r.name, r.seed), progress=False)
        record = {"seed": r.seed, "problem": r.problem, "depth": r.depth, "optimizer": r.control, "iters": iters,
                  "diverged": res.diverged}
        if res.diverged:
            record.update(rel_l2=None, rel_l2_start=None, loss=None, loss_start=None, stopped="run diverged",
                          wall_time_s=0.0, curve=[])
        else:
            out = lbfgs_finish(res.model, PROBLEMS[r.problem], data, loss_function(cfg.compile, res.gemm),
                               res.boundary_weight, iters, CHUNK, history=cfg.conventions.lbfgs_history)
            record.update(rel_l2=out.rel_l2, rel_l2_start=out.rel_l2_start, loss=out.loss,
                          loss_start=out.loss_start, evals=out.evals, stopped=out.stopped,
                          wall_time_s=round(out.wall_time_s, 2), curve=out.curve,
                          boundary_weight=res.boundary_weight)
        yield record


def _num(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def _fmt(m: dict, key: str) -> str:
    if m[key] is None:
        return "diverged"
    return f"{m[key]:.3g} [{m[key + '_min']:.3g}-{m[key + '_max']:.3g}]"


def table(summary: dict) -> str:
    lines = ["| problem | depth | control | rel. L2 at the run's end | after L-BFGS |", "|---|---|---|---|---|"]
    for p, by_depth in summary["pinn"].items():
        for d, by_control in sorted(by_depth.items(), key=lambda kv: int(kv[0])):
            for c, m in by_control.items():
                lines.append(f"| {p} | {d} | {c} | {_fmt(m, 'rel_l2_start')} | {_fmt(m, 'rel_l2')} |")
    return "\n".join(lines) + "\n"


@exits_on_bad_input
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", required=True, help="the study's params file (params_cpu_study.yaml)")
    ap.add_argument("--study", required=True, type=Path, help="the study's folder (data/cpu_study)")
    ap.add_argument("--controls", nargs="+", default=None, help="keys of pinn.optimizers (default: all)")
    ap.add_argument("--iters", type=int, default=2500, help="L-BFGS iterations per run")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (each with pinn.threads threads)")
    args = ap.parse_args(argv)
    cfg = load(args.params)
    controls = args.controls or list(cfg.optimizers)
    unknown = [c for c in controls if c not in cfg.optimizers]
    if unknown:
        raise BadInput(f"--controls {' '.join(unknown)}: not a key of pinn.optimizers ({', '.join(cfg.optimizers)})")
    if args.iters < 1:
        raise BadInput(f"--iters must be >= 1, got {args.iters}")
    if args.jobs < 1:
        raise BadInput(f"--jobs must be >= 1, got {args.jobs}")
    study = args.study.resolve()
    missing = [p for p in cfg.problems if not (study / "pinn" / p).is_dir()]
    if missing or not (study / "study.json").is_file():
        raise BadInput(f"--study {args.study}: no finished study there (missing "
                       f"{', '.join(missing) or 'study.json'}); run the study first (make cpu-study)")
    ends_only = json.loads((study / "study.json").read_text())["ends_only"]
    todo = plan(cfg, ends_only, controls)
    data = {p: load_data(study / "pinn" / p) for p in cfg.problems}
    seeds = [Run(p, d, c, s) for p, d, c in todo for s in cfg.seeds]
    keys = {r: finish_key(cfg, r.problem, r.depth, r.control, r.seed, data[r.problem], args.iters) for r in seeds}
    path_of = functools.partial(grid.seed_file, study / "lbfgs" / "seeds")
    records, groups = grid.split(seeds, keys, path_of)
    print(f"{len(records)} seeds kept, {sum(map(len, groups))} to finish with L-BFGS "
          f"({args.jobs} runs at once)", flush=True)
    with tqdm(total=len(groups), desc="l-bfgs", unit="run") as bar:
        def done(group, result):
            bar.set_postfix_str(f"{group[0].name}: " + ", ".join(
                f"{_num(r['rel_l2_start'])}->{_num(r['rel_l2'])}" for r in result))
            bar.update()
        grid.execute(groups, keys, path_of, functools.partial(finish_runs, str(Path(args.params).resolve()),
                                                              str(study), args.iters), args.jobs, records, done)

    summary = {"settings": {"pinn": {"problems": cfg.problems, "depths": cfg.depths, "optimizers": controls},
                            "lbfgs": {"iters": args.iters, "chunk": CHUNK, "history_size": cfg.conventions.lbfgs_history,
                                      "line_search": "strong_wolfe", "params": args.params}},
               "pinn": {}}
    for p, d, c in sorted(todo, key=lambda r: (cfg.problems.index(r[0]), r[1], controls.index(r[2]))):
        per_seed = [{k: v for k, v in records[Run(p, d, c, s)].items() if k not in ("curve", "key")}
                    for s in cfg.seeds]
        for m in per_seed:
            curve = records[Run(p, d, c, m["seed"])]["curve"]
            m["iters_done"] = curve[-1][0] if curve else 0
        m = runs.summarize_seeds(per_seed, SUMMARIZED)
        m["stopped_seeds"] = [r["stopped"] for r in per_seed]
        summary["pinn"].setdefault(p, {}).setdefault(str(d), {})[c] = m
    runs.write_json(study / "lbfgs" / "summary.json", summary)
    (study / "lbfgs" / "table.md").write_text(table(summary))
    deepxde = ()
    if (study / "deepxde.json").is_file():   # issue 21's rule: a verdict only with a full-strength baseline
        rows = verdicts.derive(summary, json.loads((study / "deepxde.json").read_text()))
        (study / "lbfgs" / "verdicts.md").write_text(verdicts.table(rows))
        deepxde = ("--deepxde", study / "deepxde.json", "--after-lbfgs")    # its own line in the figure
    grid.python_module("paper_figures.pinn_error_vs_depth", "--summary", study / "lbfgs" / "summary.json",
                       "--out", study / "figures" / "pinn_error_vs_depth_lbfgs", *deepxde)
    for d in sorted(set(cfg.depths)):   # one figure per depth: where a target is missed, its curve says why
        grid.python_module("paper_figures.pinn_lbfgs_curves", "--summary", study / "lbfgs" / "summary.json",
                           "--seeds", study / "lbfgs" / "seeds", "--depth", d,
                           "--out", study / "figures" / f"pinn_lbfgs_curves_depth{d}")
    print(table(summary))


if __name__ == "__main__":
    main()
