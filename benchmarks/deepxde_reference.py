"""DeepXDE out of the box on a study's PDEs, net width, point counts and step budget: the anchor every PINN
result of ours is compared with (the credible-evidence issue).

"Out of the box" = what a DeepXDE user gets: tanh FNN with its "Glorot normal" init, Adam lr 1e-3 constant,
DeepXDE's own point sampler (same counts as the params file), float32, reverse-mode derivatives; with --lbfgs,
then DeepXDE's own L-BFGS phase (`model.compile("L-BFGS")`, its shipped options but maxiter). Scored on our test
grids (pinn.points: the same grid and reference as the pipeline). One thread per run.

    python benchmarks/deepxde_reference.py --params params_cpu_study.yaml --depths 4 8 16 32 --seeds 0 1 2 \
        --lbfgs 2500 --jobs 1 --out data/cpu_study/deepxde.json

Resumable per seed: each finished seed is written at once to <out's stem>/<problem>-<depth>/seed<k>.json
(data/cpu_study/deepxde/burgers-16/seed0.json) with the key of its settings, and a seed whose file holds the
key of the settings asked for is kept, not rerun; so the runs can be made in parts (`--problems`, `--depths`,
`--seeds`), one per core beside other work. <out> is then rebuilt from every seed file of the params' problems
(per problem and depth: rel_l2 = median over seeds, rel_l2_seeds, wall seconds, and after --lbfgs the same
after DeepXDE's L-BFGS with the iterations it made; plus the settings and the CPU). Prints one line per seed.
"""
import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

os.environ["DDE_BACKEND"] = "pytorch"
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]   # the experiments run from the repository, not installed

import numpy as np
import torch
from pinn_vs_deepxde import cpu_name

from pinn.config import load
from pinn.deepxde_twin import deepxde_data, deepxde_net
from pinn.points import generate
from pinn.trainer import rel_l2
from pipeline.runs import write_json

LR = 1e-3


def one_run(problem, n_domain, n_boundary, width, depth, steps, seed, test_x, test_u, lbfgs=0) -> dict:
    """One seed: rel. L2 and loss after Adam, wall seconds; then (if lbfgs) the same after DeepXDE's own L-BFGS
    phase and the L-BFGS iterations it made (PyTorch's count; DeepXDE stops early or runs past `lbfgs`)."""
    import deepxde as dde

    dde.config.set_default_float("float32")
    dde.config.set_random_seed(seed)
    net = deepxde_net(width, depth)
    model = dde.Model(deepxde_data(problem, n_domain, n_boundary), net)
    model.compile("adam", lr=LR)
    t0 = time.perf_counter()
    _, state = model.train(iterations=steps, display_every=steps, verbose=0)
    out = {"rel_l2": rel_l2(model.predict(test_x)[:, 0].reshape(test_u.shape), test_u),
           "wall_time_s": round(time.perf_counter() - t0, 1), "loss": float(np.sum(state.loss_train))}
    if lbfgs:
        dde.optimizers.set_LBFGS_options(maxiter=lbfgs)   # its other options as shipped (history 100, strong Wolfe)
        model.compile("L-BFGS")
        t0 = time.perf_counter()
        _, state = model.train(verbose=0)
        out.update(rel_l2_lbfgs=rel_l2(model.predict(test_x)[:, 0].reshape(test_u.shape), test_u),
                   lbfgs_wall_time_s=round(time.perf_counter() - t0, 1), loss_lbfgs=float(np.sum(state.loss_train)),
                   lbfgs_iters=int(model.opt.state_dict()["state"][0]["n_iter"]))
    return out


def seed_settings(cfg, problem: str, depth: int, steps: int, seed: int, lbfgs: int) -> dict:
    """What one seed's result depends on (its key): DeepXDE's version, the net, the points, the budget."""
    import deepxde as dde

    return {"deepxde": dde.__version__, "problem": problem, "depth": depth, "seed": seed, "width": cfg.width,
            "points": vars(cfg.points[problem]), "steps": steps, "lr": LR, "lbfgs_iters": lbfgs}


def seed_file(store: Path, problem: str, depth: int, seed: int) -> Path:
    return store / f"{problem}-{depth}" / f"seed{seed}.json"


def read_seed(store: Path, settings: dict) -> dict | None:
    """The stored result of one seed if it was made with `settings`, else None."""
    f = seed_file(store, settings["problem"], settings["depth"], settings["seed"])
    if not f.is_file():
        return None
    stored = json.loads(f.read_text())
    return stored["result"] if stored.get("settings") == settings else None


def run_job(params, problem, depth, steps, seed, lbfgs, store):
    """One seed in a worker process (one thread): the params file's width and point counts, our test grid;
    written to its seed file as soon as it is done."""
    torch.set_num_threads(1)
    cfg = load(params)
    pts = cfg.points[problem]
    ref = generate(problem, 1, 4)   # only the test grid and its reference (the same as the pipeline's)
    result = one_run(problem, pts.domain, pts.boundary, cfg.width, depth, steps, seed,
                     ref["test_points"], ref["test_u"], lbfgs)
    result["cpu"] = cpu_name()
    write_json(seed_file(store, problem, depth, seed),
               {"settings": seed_settings(cfg, problem, depth, steps, seed, lbfgs), "result": result})
    then = f", after L-BFGS {result['rel_l2_lbfgs']:.3e} ({result['lbfgs_iters']} it.)" if lbfgs else ""
    print(f"deepxde {problem} depth {depth} seed {seed}: rel_l2 {result['rel_l2']:.3e} "
          f"({result['wall_time_s']:.0f} s){then}", flush=True)


def summary(store: Path, cfg, problems, steps: int, lbfgs: int) -> dict:
    """Per problem and depth, every stored seed of these settings: medians and per-seed values."""
    results = {}
    for problem in problems:
        for d in sorted(store.glob(f"{problem}-*"), key=lambda p: int(p.name.rsplit("-", 1)[1])):
            depth = int(d.name.rsplit("-", 1)[1])
            seeds = sorted(int(f.stem[4:]) for f in d.glob("seed*.json"))
            done = {s: read_seed(store, seed_settings(cfg, problem, depth, steps, s, lbfgs)) for s in seeds}
            done = {s: r for s, r in done.items() if r is not None}
            if not done:
                continue
            rows = list(done.values())
            entry = {"rel_l2": statistics.median(r["rel_l2"] for r in rows),
                     "rel_l2_seeds": [r["rel_l2"] for r in rows], "seeds": list(done),
                     "wall_time_s": [r["wall_time_s"] for r in rows]}
            if lbfgs:
                entry.update(rel_l2_lbfgs=statistics.median(r["rel_l2_lbfgs"] for r in rows),
                             rel_l2_lbfgs_seeds=[r["rel_l2_lbfgs"] for r in rows],
                             lbfgs_iters=[r.get("lbfgs_iters") for r in rows])
            results.setdefault(problem, {})[str(depth)] = entry
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params_cpu_study.yaml")
    ap.add_argument("--problems", nargs="+", default=None, help="default: pinn.problems of the params")
    ap.add_argument("--depths", nargs="+", type=int, default=[4, 8])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=None, help="default: pinn.steps of the params")
    ap.add_argument("--lbfgs", type=int, default=0, metavar="ITERS",
                    help="then DeepXDE's L-BFGS phase for ITERS iterations (what its users do; pinn.stages.finish)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, one thread each")
    ap.add_argument("--out", type=Path, required=True, help="the summary JSON; seeds go to the folder of its stem")
    args = ap.parse_args()
    cfg = load(args.params)
    steps = args.steps or cfg.steps
    problems = args.problems or cfg.problems
    store = args.out.with_suffix("")
    print(f"CPU: {cpu_name()}; DeepXDE out of the box (Glorot normal, Adam lr {LR:g} constant), width {cfg.width}, "
          f"{steps} steps, point counts of {args.params}; seeds in {store}/", flush=True)
    jobs = [(args.params, p, d, steps, s, args.lbfgs, store) for d in sorted(args.depths) for p in problems
            for s in args.seeds
            if read_seed(store, seed_settings(cfg, p, d, steps, s, args.lbfgs)) is None]
    print(f"{len(jobs)} seeds to run, the others kept", flush=True)
    with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:   # one thread each
        for _ in pool.imap_unordered(_star_run_job, jobs):
            pass
    write_json(args.out, {"settings": {"params": args.params, "width": cfg.width, "steps": steps, "lr": LR,
                                       "schedule": "constant", "init": "Glorot normal", "cpu": cpu_name(),
                                       "lbfgs_iters": args.lbfgs, "seed_files": str(store),
                                       "points": {p: vars(cfg.points[p]) for p in cfg.problems}},
                          "deepxde": summary(store, cfg, cfg.problems, steps, args.lbfgs)})
    print(f"wrote {args.out}")


def _star_run_job(job):
    return run_job(*job)


if __name__ == "__main__":
    main()
