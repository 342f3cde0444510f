"""The converged CPU study: the PINN stages over a second params file, in parallel, resuming what is done.

    python -m pinn.stages.study --params params_cpu_study.yaml --out data/cpu_study --ends-only agc lra --jobs 2

(`make cpu-study`.) The same stages as dvc.yaml's, run as DVC runs them (`pinn.stages.generate`, then
`pinn.stages.train`'s run per problem x depth x control, every seed of pinn.seeds in it), on `--jobs` cores at
once through the grid runner (pipeline/grid.py; DVC runs one stage at a time), then `pipeline.aggregate` and
the PINN figures:

    <out>/pinn/<problem>/            training points and test grid
    <out>/runs/<problem>-<depth>-<control>/   the run layout of pipeline/runs.py; each seed's metrics.json
                                     holds its run key
    <out>/summary.json               the key format of data/summary.json
    <out>/tables/, <out>/figures/    table_pinn_errors.{md,tex,csv}; pinn_error_vs_depth (with DeepXDE out of the box as
                                     its own line where <out>/deepxde.json exists), pinn_training_curves
    <out>/study.json                 the command's settings; per run "trained" (now) or "kept", and its
                                     training seconds summed over seeds (from its metrics.json)
    <out>/logs/<run>.log             each trained run's output

Resuming (pipeline/grid.py): a run whose seeds' metrics.json hold their run keys as they are now (settings,
training points and source files: pinn/trainer.py `run_key`; runs from before this rule: its run_keys.json)
is kept, even without checkpoints (a fresh clone); any other run is trained, resuming from its checkpoints in
<out>/checkpoints/ where they match. Controls named in `--ends-only` run at the shallowest and the deepest of
pinn.depths only. `--controls` trains a part of the study (those controls' runs; their run keys are the whole
study's, so a later run of the whole keeps them).
"""
from __future__ import annotations

import argparse
import functools
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from tqdm import tqdm

from pinn.config import load
from pinn.stages import train
from pinn.trainer import load_data, run_key
from pipeline import grid, runs
from pipeline.grid import Run
from pipeline.params import exits_on_bad_input
from pipeline.validate import BadInput

LEGACY_KEYS = "run_keys.json"   # the per-seed run keys of runs trained before the grid runner


def plan(cfg, ends_only=(), controls=None) -> list[tuple[str, int, str]]:
    """(problem, depth, control) of every run of `controls` (default: every key of pinn.optimizers), the deepest
    first (the longest runs start first)."""
    ends = {min(cfg.depths), max(cfg.depths)}
    todo = [(p, d, c) for p in cfg.problems for d in cfg.depths for c in cfg.optimizers
            if (c not in ends_only or d in ends) and (controls is None or c in controls)]
    return sorted(todo, key=lambda r: -r[1])


def study_runs(cfg, ends_only=(), controls=None) -> list[Run]:
    return [Run(p, d, c, s) for p, d, c in plan(cfg, ends_only, controls) for s in cfg.seeds]


def seed_metrics(out: Path, run: Run) -> Path:
    """A seed's result file: its metrics.json in the run layout."""
    return runs.seed_dir(out / "runs" / run.name, run.seed) / "metrics.json"


def read_seed(path: Path) -> dict | None:
    """A seed's metrics with its run key: its own, or (a run from before the grid runner) its run_keys.json's."""
    record = grid.read_record(path)
    if record is not None and "key" not in record:
        legacy = grid.read_record(path.parents[2] / LEGACY_KEYS) or {}
        record = {**record, "key": legacy.get(str(record.get("seed")))}
    return record


def train_runs(params: str, out: str, group: list[Run]):
    """In a worker: every seed of one run (pinn.stages.train), its output in <out>/logs/<run>.log; yields each
    seed's metrics."""
    out, run = Path(out), group[0]
    cfg = load(params)
    folder = out / "runs" / run.name
    (folder / LEGACY_KEYS).unlink(missing_ok=True)
    log = out / "logs" / f"{run.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f, redirect_stdout(f), redirect_stderr(f):
        try:
            train.run(cfg, run.problem, run.depth, run.control, out / "pinn" / run.problem, folder,
                      out / "checkpoints" / run.name, progress=False)
        except Exception:  # noqa: BLE001 -- re-raised, its traceback in the log
            traceback.print_exc()
            raise RuntimeError(f"see {log}") from None
    for r in group:
        yield grid.read_record(seed_metrics(out, r))


@exits_on_bad_input
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", required=True, help="a params file with a `pinn:` section (params_cpu_study.yaml)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--ends-only", nargs="*", default=[], metavar="CONTROL",
                    help="controls run at the shallowest and the deepest depth only")
    ap.add_argument("--controls", nargs="+", default=None, metavar="CONTROL",
                    help="train only these keys of pinn.optimizers (default: all; a part of a study: its run keys "
                         "are those of the whole, so the whole study keeps these runs)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (each with pinn.threads threads)")
    args = ap.parse_args(argv)
    cfg = load(args.params)
    for flag, names in (("--ends-only", args.ends_only), ("--controls", args.controls or [])):
        unknown = [c for c in names if c not in cfg.optimizers]
        if unknown:
            raise BadInput(f"{flag} {' '.join(unknown)}: not a key of pinn.optimizers ({', '.join(cfg.optimizers)})")
    if args.jobs < 1:
        raise BadInput(f"--jobs must be >= 1, got {args.jobs}")
    out, params = args.out.resolve(), Path(args.params).resolve()
    for p in cfg.problems:
        grid.python_module("pinn.stages.generate", "--problem", p, "--params", params, "--out", out / "pinn" / p)
    data = {p: load_data(out / "pinn" / p) for p in cfg.problems}

    todo_runs = study_runs(cfg, args.ends_only, args.controls)
    keys = {r: run_key(cfg, r.problem, r.depth, r.control, r.seed, data[r.problem]) for r in todo_runs}
    path_of = functools.partial(seed_metrics, out)
    _, todo = grid.split(todo_runs, keys, path_of, read=read_seed, whole_groups=True)
    names = list(dict.fromkeys(r.name for r in todo_runs))
    status = {n: "kept" for n in names}
    print(f"{len(names) - len(todo)} runs kept, {len(todo)} to train ({args.jobs} at once; logs in "
          f"{out / 'logs'})", flush=True)

    with tqdm(total=len(todo), desc="cpu study", unit="run") as bar:
        def done(group, records):
            status[group[0].name] = "trained"
            bar.set_postfix_str(f"{group[0].name}: rel_l2 {[r.get('rel_l2') for r in records]}")
            bar.update()
        grid.execute(todo, keys, path_of, functools.partial(train_runs, str(params), str(out)), args.jobs,
                     on_done=done)
    wall = lambda n: (runs.read_metrics(out / "runs" / n) or {}).get("wall_time_s")
    runs.write_json(out / "study.json", {"params": args.params, "ends_only": args.ends_only,
                                         "controls": args.controls or list(cfg.optimizers), "jobs": args.jobs,
                                         "runs": {n: {"status": status[n], "wall_time_s": wall(n)}
                                                  for n in sorted(names)}})
    grid.python_module("pipeline.aggregate", "--params", params, "--pinn-runs", out / "runs", "--summary",
                       out / "summary.json", "--tables", out / "tables")
    deepxde = ("--deepxde", out / "deepxde.json") if (out / "deepxde.json").is_file() else ()   # its own line
    grid.python_module("paper_figures.pinn_error_vs_depth", "--summary", out / "summary.json",
                       "--out", out / "figures" / "pinn_error_vs_depth", *deepxde)
    grid.python_module("paper_figures.pinn_training_curves", "--summary", out / "summary.json", "--runs",
                       out / "runs", "--out", out / "figures" / "pinn_training_curves")


if __name__ == "__main__":
    main()
