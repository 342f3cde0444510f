"""Where our AdamW baseline stands against DeepXDE out of the box, and what moves it: our trainer (pinn.trainer.
train, the converged study's settings) against the same trainer with one DeepXDE difference at a time:

- `study`: the study's settings as committed (lr 3e-3 cosine to 3e-5, Latin hypercube points);
- `adam-1e-3`: DeepXDE's optimizer setting (Adam 1e-3 constant), the study's points;
- `halton`: the study's settings on a low-discrepancy point set (scrambled Halton; DeepXDE's default is the
  Hammersley set, of the same family), and `halton+adam-1e-3`: with DeepXDE's optimizer setting too;
- `halton+adam-1e-3+boundary-residual`: and, as DeepXDE's PDE data does, the boundary / initial points in the
  residual set too (DeepXDE's setup but for its exact point set);
- `eager`, `adam-1e-3+eager`: the eager derivative pass (exact `torch.tanh`) in place of the compiled one
  (whose tanh is a rational approximation), for Adam and for the L-BFGS finish;
- `boundary-weight-2`, `adam-1e-3+boundary-weight-2`: boundary weight 2, which was DeepXDE's weighting here
  while our Burgers loss took one mean over all 200 boundary + initial points; DeepXDE sums the boundary and
  the initial condition as two means over 100 points each. The trainer's loss now does the same (each
  problem's conditions, pinn.conditions), so today these variants weight DeepXDE's sum twice; the committed
  data/cpu_study/baseline_gap*.json were measured with the single mean (commit 4e4e4fd).

Every variant is run on the same seeds, then (with --lbfgs N) continued by the L-BFGS finish of pinn/finish.py;
the test-grid error is printed for the comparison with DeepXDE only (nothing here is chosen by it). With
`--deepxde` (a deepxde_reference.py output) DeepXDE's per-seed errors are printed beside.

    python benchmarks/baseline_gap.py --params params_cpu_study.yaml --problems burgers --depth 4 --seeds 0 1 2 \
        --lbfgs 2500 --jobs 2 --deepxde data/cpu_study/deepxde.json --out data/cpu_study/baseline_gap.json
"""
import argparse
import dataclasses
import json
import multiprocessing
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]   # the experiments run from the repository, not installed

import numpy as np
import torch
from pinn_vs_deepxde import cpu_name
from scipy.stats import qmc

from pinn import conditions
from pinn.config import load
from pinn.finish import lbfgs_finish
from pinn.points import generate
from pinn.problems import PROBLEMS
from pinn.trainer import PinnData, derivative_function, predict, rel_l2, train
from pipeline.runs import write_json

VARIANTS = ("study", "adam-1e-3", "halton", "halton+adam-1e-3", "halton+adam-1e-3+boundary-residual", "eager",
            "adam-1e-3+eager", "boundary-weight-2", "adam-1e-3+boundary-weight-2")


def halton_points(problem_name: str, n_domain: int, n_boundary: int, seed: int = 0) -> dict:
    """pinn.points.generate with a scrambled Halton set in place of the Latin hypercube."""
    problem, rng = PROBLEMS[problem_name], np.random.default_rng(seed)
    lower, upper = np.array(problem.LOWER), np.array(problem.UPPER)
    domain = qmc.scale(qmc.Halton(len(lower), seed=rng).random(n_domain), lower, upper)
    boundary, values, rows = conditions.sample(problem, n_boundary, lambda m: qmc.Halton(1, seed=rng).random(m)[:, 0])
    return {**generate(problem_name, 1, 4), "domain": domain, "boundary": boundary, "boundary_values": values,
            "condition_rows": np.array(rows)}


def variant_data(variant: str, problem: str, n_domain: int, n_boundary: int) -> PinnData:
    d = (halton_points if variant.startswith("halton") else generate)(problem, n_domain, n_boundary)
    domain = d["domain"]
    if variant.endswith("+boundary-residual"):
        domain = np.concatenate([domain, d["boundary"]])
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)
    return PinnData(t(domain), t(d["boundary"]), t(d["boundary_values"]), t(d["test_points"]), d["test_u"],
                    d["axes"], tuple(d["condition_rows"]))


def one(params: str, variant: str, problem: str, depth: int, seed: int, lbfgs: int) -> tuple:
    torch.set_num_threads(1)
    cfg = load(params)
    if "adam-1e-3" in variant:
        cfg = dataclasses.replace(cfg, lr=1e-3, schedule="constant")
    if "eager" in variant:
        cfg = dataclasses.replace(cfg, compile=False)
    if "boundary-weight-2" in variant:
        cfg = dataclasses.replace(cfg, boundary_weight=2.0)
    pts = cfg.points[problem]
    data = variant_data(variant, problem, pts.domain, pts.boundary)
    res = train(cfg, problem, depth, "adamw", data, seed, progress=False)
    err = rel_l2(predict(res.model, data), data.reference)
    after = None
    if lbfgs:
        after = lbfgs_finish(res.model, PROBLEMS[problem], data, derivative_function(cfg.compile, res.gemm),
                             res.boundary_weight, lbfgs).rel_l2
    print(f"{variant:>36} {problem} depth {depth} seed {seed}: rel_l2 {err:.3f}, final loss {res.final_loss:.2e}"
          + (f"; after L-BFGS {after:.2e}" if lbfgs else ""), flush=True)
    return variant, problem, seed, err, after


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params_cpu_study.yaml")
    ap.add_argument("--problems", nargs="+", default=["burgers", "helmholtz"])
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--lbfgs", type=int, default=0, metavar="ITERS", help="then ITERS L-BFGS iterations")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--deepxde", type=Path, default=None, help="a deepxde_reference.py output to print beside")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    print(f"CPU: {cpu_name()}; AdamW, {args.params}, depth {args.depth}, seeds {args.seeds}", flush=True)
    jobs = [(args.params, v, p, args.depth, s, args.lbfgs) for p in args.problems for v in args.variants
            for s in args.seeds]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        done = pool.starmap(one, jobs)
    table = {}
    for v, p, s, err, after in done:
        table.setdefault(p, {}).setdefault(v, {"adam": {}, "lbfgs": {}})
        table[p][v]["adam"][str(s)], table[p][v]["lbfgs"][str(s)] = err, after
    reference = json.loads(args.deepxde.read_text())["deepxde"] if args.deepxde else {}

    def cell(errs: dict) -> str:
        e = [x for x in errs.values() if x is not None]
        return f"{statistics.median(e):.3g} [{min(e):.3g}-{max(e):.3g}]" if e else "-"

    print(f"\n| problem | variant | rel. L2 after Adam | after L-BFGS ({args.lbfgs} it.) |\n|---|---|---|---|")
    for p, by_variant in table.items():
        rows = dict(by_variant)
        dx = reference.get(p, {}).get(str(args.depth))
        if dx:
            rows["DeepXDE out of the box"] = {
                "adam": dict(zip(map(str, dx["seeds"]), dx["rel_l2_seeds"])),
                "lbfgs": dict(zip(map(str, dx["seeds"]), dx.get("rel_l2_lbfgs_seeds", [None] * len(dx["seeds"]))))}
        for v, errs in rows.items():
            print(f"| {p} | {v} | {cell(errs['adam'])} | {cell(errs['lbfgs'])} |")
    if args.out:
        write_json(args.out, {"settings": {"params": args.params, "depth": args.depth, "seeds": args.seeds,
                                           "lbfgs_iters": args.lbfgs, "cpu": cpu_name(), "control": "adamw"},
                              "rel_l2": table})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
