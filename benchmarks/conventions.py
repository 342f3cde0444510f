"""The effect of each convention where our PINN set-up differs from DeepXDE's (pinn.conventions), on our trainer
(AdamW, the study's settings), Adam then the L-BFGS finish; DeepXDE's own runs beside.

tests/test_deepxde_parity.py shows that with all of DeepXDE's conventions our trainer IS DeepXDE (the same loss
step for step, float64). So the gap between our baseline and DeepXDE is in these conventions (and in float32
rounding, benchmarks/fast_path_drift.py): `ours` (the study's conventions before this measurement), `deepxde`
(all of DeepXDE's), and `deepxde` with one of ours at a time (`deepxde+box`, `deepxde+lhs`, `deepxde+domain`,
`deepxde+history50`). The Adam phase is shared by the variants that differ only in the L-BFGS history.
`deepxde+lhs-per-seed` is `deepxde+lhs` on a new Latin hypercube point set for every seed (point set k with training
seed k), where `deepxde+lhs` keeps point set 0: the sampler's effect over its point sets, not one set's (DeepXDE's
Hammersley set is deterministic, the same for every seed).

Resumable per seed: each (problem, depth, Adam variant, seed) is written at once to
<store, default: out's stem>/<problem>-<depth>-<variant>/seed<k>.json with the key of its settings and the source files it runs,
and kept on a rerun whose key matches; so it can run in parts, one per core beside other work. Prints one line
per seed, then the table (median [min-max] over seeds, and how many seeds end below 1e-2 after L-BFGS with Fisher's
exact test, one-sided, against the `deepxde` row of the cell; test-grid errors for the comparison with DeepXDE only:
nothing is chosen by them here — the study's conventions are chosen by held-out loss, pinn.stages.select).

    python benchmarks/conventions.py --params params_cpu_study.yaml --problems burgers helmholtz --depths 8 32 \
        --seeds 0 1 2 3 4 5 --lbfgs 3000 --jobs 1 --deepxde data/cpu_study/deepxde.json \
        --out data/cpu_study/conventions.json
"""
import argparse
import dataclasses
import json
import multiprocessing
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]   # the experiments run from the repository, not installed

import torch
from pinn_vs_deepxde import cpu_name
from scipy.stats import fisher_exact

from pinn.config import Conventions, load
from pinn.finish import lbfgs_finish
from pinn.problems import PROBLEMS
from pinn.stages.select import _points as select_points
from pinn.trainer import PinnData, loss_function, predict, rel_l2, train
from pipeline import runs
from pipeline.runs import write_json

OURS = Conventions(input_map="box", sampler="lhs", residual_points="domain", lbfgs_history=50)
DEEPXDE = Conventions(input_map="none", sampler="hammersley", residual_points="all", lbfgs_history=100)
ADAM_VARIANTS = {   # name -> (conventions of the Adam phase, {finish variant: L-BFGS history})
    "ours": (OURS, {"ours": 50}),
    "deepxde": (DEEPXDE, {"deepxde": 100, "deepxde+history50": 50}),
    "deepxde+box": (dataclasses.replace(DEEPXDE, input_map="box"), {"deepxde+box": 100}),
    "deepxde+lhs": (dataclasses.replace(DEEPXDE, sampler="lhs"), {"deepxde+lhs": 100}),
    "deepxde+domain": (dataclasses.replace(DEEPXDE, residual_points="domain"), {"deepxde+domain": 100}),
    "deepxde+lhs-per-seed": (dataclasses.replace(DEEPXDE, sampler="lhs"), {"deepxde+lhs-per-seed": 100}),
}
POINTS_PER_SEED = {"deepxde+lhs-per-seed"}   # the point set's seed is the training seed (else point set 0)
VARIANTS = [v for _, finishes in ADAM_VARIANTS.values() for v in finishes]


def seed_settings(cfg, problem, depth, variant, seed, lbfgs) -> dict:
    conv = ADAM_VARIANTS[variant][0]
    points = {"points_seed": seed} if variant in POINTS_PER_SEED else {}   # the other variants' keys stay as they were
    return {"problem": problem, "depth": depth, "variant": variant, "seed": seed, "lbfgs_iters": lbfgs, **points,
            **dataclasses.replace(cfg, conventions=conv).run_settings("adamw")}


def seed_file(store: Path, problem, depth, variant, seed) -> Path:
    return store / f"{problem}-{depth}-{variant}" / f"seed{seed}.json"


def key_of(settings: dict) -> str:
    """The settings' hash. Not the source files (unlike a pipeline run's key): trainer changes that keep its
    numbers (tests/test_deepxde_parity.py, the equality tests) must not throw hours of runs away; each seed file
    records the commit it ran on."""
    return runs.run_key(settings)


def read_seed(store, settings) -> dict | None:
    f = seed_file(store, settings["problem"], settings["depth"], settings["variant"], settings["seed"])
    if not f.is_file():
        return None
    stored = json.loads(f.read_text())
    return stored["result"] if stored.get("key") == key_of(settings) else None


def study_data(cfg, problem: str, conv: Conventions, points_seed: int = 0) -> PinnData:
    """The params' point counts for `problem`, sampled and assembled by the conventions `conv`, in float32 (with seed
    0, the points pinn/stages/generate.py writes, as the trainer loads them; the held-out selection's own loader)."""
    pts = cfg.points[problem]
    return select_points(problem, pts.domain, pts.boundary, points_seed, conv.sampler, conv.residual_points)


def one(params, problem, depth, variant, seed, lbfgs, store):
    """One seed of one Adam variant, then its L-BFGS finishes; written to its seed file."""
    torch.set_num_threads(1)
    base = load(params)
    settings = seed_settings(base, problem, depth, variant, seed, lbfgs)
    conv, finishes = ADAM_VARIANTS[variant]
    cfg = dataclasses.replace(base, conventions=conv, optimizers={"adamw": base.optimizers["adamw"]})
    data = study_data(cfg, problem, conv, settings.get("points_seed", 0))
    res = train(cfg, problem, depth, "adamw", data, seed, progress=False)
    state = {k: v.clone() for k, v in res.model.state_dict().items()}
    out = {"adam": {"rel_l2": rel_l2(predict(res.model, data), data.reference), "loss": res.final_loss,
                    "wall_time_s": round(res.wall_time_s, 1), "diverged": res.diverged}, "lbfgs": {}}
    for name, history in finishes.items():
        res.model.load_state_dict(state)
        fin = lbfgs_finish(res.model, PROBLEMS[problem], data, loss_function(cfg.compile, res.gemm),
                           res.boundary_weight, lbfgs, history=history)
        out["lbfgs"][name] = {"rel_l2": fin.rel_l2, "loss": fin.loss, "iters": fin.iters, "stopped": fin.stopped,
                              "wall_time_s": round(fin.wall_time_s, 1)}
    out["cpu"], out["commit"] = cpu_name(), commit()
    write_json(seed_file(store, problem, depth, variant, seed), {"key": key_of(settings), "settings": settings,
                                                                "result": out})
    after = ", ".join(f"{k} {v['rel_l2']:.2e}" for k, v in out["lbfgs"].items())
    print(f"{problem} depth {depth} {variant:>15} seed {seed}: Adam {out['adam']['rel_l2']:.3f}; L-BFGS {after}",
          flush=True)


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                          cwd=HERE).stdout.strip()


def _one(job):
    return one(*job)


def cell(values) -> str:
    v = [x for x in values if x is not None]
    return f"{statistics.median(v):.3g} [{min(v):.3g}-{max(v):.3g}] ({len(v)})" if v else "-"


GOOD = 1e-2   # the rel. L2 after L-BFGS that the two Burgers basins straddle (about 3e-3 or 0.2-0.8)


def below(values: list, reference: list) -> str:
    """'k of n' below GOOD, and Fisher's exact one-sided p that `reference` has more seeds below than `values`."""
    n, k = len(values), sum(v < GOOD for v in values)
    if not n or not reference or values is reference:
        return f"{k} of {n}" if n else "-"
    kr = sum(v < GOOD for v in reference)
    p = fisher_exact([[kr, len(reference) - kr], [k, n - k]], alternative="greater")[1]
    return f"{k} of {n} (p = {p:.2g})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params_cpu_study.yaml")
    ap.add_argument("--problems", nargs="+", default=["burgers", "helmholtz"])
    ap.add_argument("--depths", nargs="+", type=int, default=[8, 32])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--variants", nargs="+", choices=list(ADAM_VARIANTS), default=list(ADAM_VARIANTS),
                    help="Adam-phase variants (each with its L-BFGS finishes)")
    ap.add_argument("--lbfgs", type=int, default=3000, metavar="ITERS")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--deepxde", type=Path, default=None, help="a deepxde_reference.py output, printed beside")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--store", type=Path, default=None, help="the seed files' folder (default: --out's stem)")
    args = ap.parse_args()
    cfg = load(args.params)
    store = args.store or args.out.with_suffix("")
    todo = [(args.params, p, d, v, s, args.lbfgs, store) for d in args.depths for p in args.problems
            for s in args.seeds for v in args.variants
            if read_seed(store, seed_settings(cfg, p, d, v, s, args.lbfgs)) is None]
    print(f"CPU: {cpu_name()}; AdamW on {args.params}, then {args.lbfgs} L-BFGS iterations; "
          f"{len(todo)} seeds to run, the others kept", flush=True)
    with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        for _ in pool.imap_unordered(_one, todo):
            pass
    deepxde_runs = json.loads(args.deepxde.read_text())["deepxde"] if args.deepxde else {}
    header = (f"| problem | depth | variant | rel. L2 after Adam | after L-BFGS | below {GOOD:g} after L-BFGS "
              "| L-BFGS iterations |")
    table, lines = {}, [header, "|---|---|---|---|---|---|---|"]
    for p in args.problems:
        for d in args.depths:
            rows = table.setdefault(p, {}).setdefault(str(d), {})
            for v, (_, finishes) in ADAM_VARIANTS.items():
                got = [read_seed(store, seed_settings(cfg, p, d, v, s, args.lbfgs)) for s in args.seeds]
                got = [r for r in got if r is not None]
                for name in finishes:
                    rows[name] = {"adam": [r["adam"]["rel_l2"] for r in got],
                                  "lbfgs": [r["lbfgs"][name]["rel_l2"] for r in got],
                                  "iters": [r["lbfgs"][name]["iters"] for r in got]}
            for name, row in rows.items():
                lines.append(f"| {p} | {d} | {name} | {cell(row['adam'])} | {cell(row['lbfgs'])} | "
                             f"{below(row['lbfgs'], rows['deepxde']['lbfgs'])} | "
                             f"{min(row['iters'], default='-')}-{max(row['iters'], default='-')} |")
            dx = deepxde_runs.get(p, {}).get(str(d))
            if dx:
                lines.append(f"| {p} | {d} | DeepXDE out of the box | {cell(dx['rel_l2_seeds'])} | "
                             f"{cell(dx.get('rel_l2_lbfgs_seeds', []))} | "
                             f"{below(dx.get('rel_l2_lbfgs_seeds', []), [])} | {dx.get('lbfgs_iters', '-')} |")
    print("\n".join(lines))
    write_json(args.out, {"settings": {"params": args.params, "lbfgs_iters": args.lbfgs, "cpu": cpu_name(),
                                       "control": "adamw", "seed_files": str(store),
                                       "seeds": args.seeds}, "rel_l2": table})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
