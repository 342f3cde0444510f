"""The converged CPU study: the PINN stages over a second params file, in parallel, resuming what is done.

    python -m pinn.stages.study --params params_cpu_study.yaml --out data/cpu_study --ends-only agc lra --jobs 2

(`make cpu-study`.) The same stages as dvc.yaml's, run as DVC runs them (`pinn.stages.generate`, then one
`pinn.stages.train` per problem x depth x control, every seed of pinn.seeds in it), on `--jobs` cores at once
(DVC runs one stage at a time), then `pipeline.aggregate` and the PINN figures:

    <out>/pinn/<problem>/            training points and test grid
    <out>/runs/<problem>-<depth>-<control>/   the run layout of pipeline/runs.py (+ run_keys.json)
    <out>/summary.json               the key format of data/summary.json
    <out>/tables/, <out>/figures/    table_pinn_errors.{md,tex,csv}; pinn_error_vs_depth, pinn_training_curves
    <out>/study.json                 the command's settings; per run "trained" (now) or "kept", and its
                                     training seconds summed over seeds (from its metrics.json)

Resuming: a run whose run_keys.json holds the run keys of its seeds as they are now (settings, training points
and source files: pinn/trainer.py `run_key`) is kept, even without checkpoints (a fresh clone); any other run
is trained, resuming from its checkpoints in <out>/checkpoints/ where they match. Controls named in
`--ends-only` run at the shallowest and the deepest of pinn.depths only.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from pinn.config import load
from pinn.trainer import load_data, run_key
from pipeline import runs
from pipeline.names import run_name
from pipeline.params import exits_on_bad_input
from pipeline.validate import BadInput

KEYS_FILE = "run_keys.json"
REPO = Path(__file__).resolve().parents[2]   # the stages run from the repository root, as under DVC


def plan(cfg, ends_only=()) -> list[tuple[str, int, str]]:
    """(problem, depth, control) of every run, the deepest first (the longest runs start first)."""
    ends = {min(cfg.depths), max(cfg.depths)}
    todo = [(p, d, c) for p in cfg.problems for d in cfg.depths for c in cfg.optimizers
            if c not in ends_only or d in ends]
    return sorted(todo, key=lambda r: -r[1])


def seed_keys(cfg, problem: str, depth: int, control: str, data) -> dict[str, str]:
    return {str(s): run_key(cfg, problem, depth, control, s, data) for s in cfg.seeds}


def is_done(run: Path, keys: dict[str, str]) -> bool:
    f = run / KEYS_FILE
    return runs.read_metrics(run) is not None and f.is_file() and json.loads(f.read_text()) == keys


def _python(module: str, *args, log: Path | None = None) -> None:
    """`python -m module args` from the repository root (paths in args are absolute); output to `log`."""
    cmd = [sys.executable, "-m", module, *map(str, args)]
    if log is None:
        subprocess.run(cmd, check=True, cwd=REPO)
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        if subprocess.run(cmd, check=False, stdout=f, stderr=subprocess.STDOUT, cwd=REPO).returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed; see {log}")


def _wall(run: Path) -> float | None:
    m = runs.read_metrics(run)
    return None if m is None else m.get("wall_time_s")


@exits_on_bad_input
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", required=True, help="a params file with a `pinn:` section (params_cpu_study.yaml)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--ends-only", nargs="*", default=[], metavar="CONTROL",
                    help="controls run at the shallowest and the deepest depth only")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (each with pinn.threads threads)")
    args = ap.parse_args(argv)
    cfg = load(args.params)
    unknown = [c for c in args.ends_only if c not in cfg.optimizers]
    if unknown:
        raise BadInput(f"--ends-only {' '.join(unknown)}: not a key of pinn.optimizers ({', '.join(cfg.optimizers)})")
    if args.jobs < 1:
        raise BadInput(f"--jobs must be >= 1, got {args.jobs}")
    out, params = args.out.resolve(), Path(args.params).resolve()
    for p in cfg.problems:
        _python("pinn.stages.generate", "--problem", p, "--params", params, "--out", out / "pinn" / p)
    data = {p: load_data(out / "pinn" / p) for p in cfg.problems}

    todo, record = [], {}
    for p, d, c in plan(cfg, args.ends_only):
        name, keys = run_name(p, d, c), seed_keys(cfg, p, d, c, data[p])
        if is_done(out / "runs" / name, keys):
            record[name] = "kept"
        else:
            todo.append((name, p, d, c, keys))
    print(f"{len(record)} runs kept, {len(todo)} to train ({args.jobs} at once; logs in {out / 'logs'})", flush=True)

    def train(name, p, d, c, keys):
        run = out / "runs" / name
        _python("pinn.stages.train", "--problem", p, "--depth", d, "--optimizer", c, "--params", params,
                "--data", out / "pinn" / p, "--out", run, "--ckpt", out / "checkpoints" / name,
                log=out / "logs" / f"{name}.log")
        (run / KEYS_FILE).write_text(json.dumps(keys, indent=1) + "\n")
        return name

    failed = []
    with ThreadPoolExecutor(args.jobs) as pool, tqdm(total=len(todo), desc="cpu study", unit="run") as bar:
        futures = {pool.submit(train, *job): job[0] for job in todo}
        for fut in as_completed(futures):
            try:
                name = fut.result()
                record[name] = "trained"
                m = runs.read_metrics(out / "runs" / name)
                bar.set_postfix_str(f"{name}: rel_l2 {m.get('rel_l2')}")
            except RuntimeError as err:
                failed.append(futures[fut])
                tqdm.write(f"error: {err}")
            bar.update()
    runs.write_json(out / "study.json", {"params": args.params, "ends_only": args.ends_only, "jobs": args.jobs,
                                         "runs": {n: {"status": record[n], "wall_time_s": _wall(out / "runs" / n)}
                                                  for n in sorted(record)}})
    if failed:
        raise SystemExit(f"{len(failed)} runs failed: {', '.join(failed)}")
    _python("pipeline.aggregate", "--params", params, "--pinn-runs", out / "runs", "--summary",
            out / "summary.json", "--tables", out / "tables")
    _python("paper_figures.pinn_error_vs_depth", "--summary", out / "summary.json",
            "--out", out / "figures" / "pinn_error_vs_depth")
    _python("paper_figures.pinn_training_curves", "--summary", out / "summary.json", "--runs", out / "runs",
            "--out", out / "figures" / "pinn_training_curves")


if __name__ == "__main__":
    main()
