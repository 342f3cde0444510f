"""Time to accuracy on Burgers: seconds of training until the test-grid relative L2 error first reaches a target,
DeepXDE out of the box vs our trainer (AdamW and AdamW + StableGrad), side by side in one run, CPU.

Same problem (viscous Burgers, nu = 0.01/pi), the same training points (DeepXDE's own sampler: 2540 domain,
80 boundary, 160 initial points, fed to ours), the same network (tanh MLP, Glorot normal, zero biases), the
same optimizer (Adam(W), lr 1e-3 constant, no weight decay), float32, one thread. DeepXDE trains as shipped
(reverse-mode derivatives); ours as the pipeline does (forward-propagated derivatives, torch.compile, the
products gemm="auto" picks). Every `--eval-every` steps the training clock stops and the error on the standard
test grid (256 x 100, Cole-Hopf reference) is measured. Compile time is printed apart and not counted (it is
paid once per shape and cached on disk). Each seed (`--seeds`, the init of both sides; the points are DeepXDE's
deterministic Hammersley set) races the three methods one after the other; a method that misses the target
counts as infinitely slow. The last line is
`time_to_accuracy_vs_deepxde=<median over seeds of DeepXDE's seconds to the target / median of ours (AdamW)>`
("nan" if either median is a miss), after the per-seed ratios.

    python benchmarks/time_to_accuracy.py [--depth 8] [--width 32] [--target 0.3] [--steps 4000]
        [--eval-every 100] [--seeds 0 1 2] [--csv out.csv] [--plot paper_figures/time_to_accuracy]
        [--methods deepxde adamw stablegrad] [--raw-inputs] [--eager]

`--raw-inputs` feeds ours the raw (x, t) as DeepXDE does, instead of the trainer's affine map of the domain box
to [-1, 1]^2 (t in [0, 1] becomes 2t - 1): a diagnostic of the one input difference left between the two sides.
`--eager` runs ours without torch.compile (exact torch.tanh instead of the compiled pass's rational one).
"""
import argparse
import csv
import math
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
from pinn_vs_deepxde import N_BOUNDARY, N_DOMAIN, N_INITIAL, cpu_name, deepxde_step

from pinn.deepxde_twin import deepxde_data, deepxde_net, pinn_data
from pinn.derivatives import gemm_for
from pinn.model import build_model
from pinn.points import grid_points
from pinn.problems import burgers
from pinn.trainer import loss_function, rel_l2
from pipeline.controls import BaseSettings, make_optimizer

STABLEGRAD = {"reference": "output", "statistic": "rms", "bias": "shared"}   # params.yaml's
METHODS = {"deepxde": "DeepXDE (Adam)", "adamw": "ours, AdamW", "stablegrad": "ours, StableGrad"}


def test_grid():
    axes = burgers.grid()
    return torch.tensor(grid_points(axes), dtype=torch.float32), burgers.reference(axes)


def ours(data, width, depth, control, seed, raw_inputs=False, eager=False):
    """(step, predict, compile seconds) for our trainer's loop on DeepXDE's points (pinn.deepxde_twin)."""
    pd = pinn_data(data, "burgers", torch.float32)
    x_all, n, g, rows = torch.cat([pd.domain, pd.boundary]), len(pd.domain), pd.boundary_values, pd.condition_rows
    torch.manual_seed(seed)
    model = build_model(burgers, width, depth, "tanh", "glorot", input_map="none" if raw_inputs else "box")
    opt = make_optimizer(control, model, BaseSettings(1e-3), STABLEGRAD if control == "stablegrad" else {})
    gemm = gemm_for(model, x_all, burgers.SECOND, n).gemm
    losses = loss_function(not eager, gemm, observed=control == "stablegrad")   # as the trainer

    def step():
        opt.zero_grad(set_to_none=True)
        loss_r, loss_b, u = losses(model, burgers, x_all, n, g, rows)
        loss = loss_r + loss_b                                               # the trainer's loss
        if control == "stablegrad":
            opt.observe_output(u)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()                                   # compiles (or loads from the on-disk cache)
    compile_s = time.perf_counter() - t0

    @torch.no_grad()
    def predict(x):
        return model(x)[:, 0].numpy()

    return step, predict, compile_s


def race(name, seed, step_chunk, predict, x_test, u_ref, steps, every, target, rows):
    """Train in chunks of `every` steps; return the training seconds when rel. L2 first reaches `target`."""
    trained, reached = 0.0, None
    for done in range(every, steps + 1, every):
        t0 = time.perf_counter()
        step_chunk(every)
        trained += time.perf_counter() - t0
        err = rel_l2(predict(x_test).reshape(u_ref.shape), u_ref)
        rows.append({"method": name, "seed": seed, "step": done, "seconds": round(trained, 3), "rel_l2": err})
        if reached is None and err <= target:
            reached = trained
            print(f"seed {seed} {name:18s} reached rel. L2 {err:.3e} <= {target} after {done} steps, "
                  f"{trained:.1f} s", flush=True)
    if reached is None:
        print(f"seed {seed} {name:18s} did not reach {target} in {steps} steps ({trained:.1f} s, "
              f"last rel. L2 {err:.3e})", flush=True)
    return math.inf if reached is None else reached


def plot(rows, stem, target, title):
    from paper_figures.style import color, plt, save

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = {"DeepXDE (Adam)": "#7f7f7f", "ours, AdamW": color("adamw"), "ours, StableGrad": color("stablegrad")}
    for name, seed in dict.fromkeys((r["method"], r["seed"]) for r in rows):
        rs = [r for r in rows if r["method"] == name and r["seed"] == seed]
        for ax, x in zip(axes, ("seconds", "step")):
            ax.plot([r[x] for r in rs], [r["rel_l2"] for r in rs], "-", color=colors.get(name), lw=1, alpha=0.8,
                    label=name if seed == rows[0]["seed"] else None)
    for ax, xl in zip(axes, ("training wall-clock seconds (1 thread)", "steps")):
        ax.axhline(target, color="k", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel("rel. L2 error, test grid")
    axes[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save(fig, stem)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--target", type=float, default=0.3)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    ap.add_argument("--raw-inputs", action="store_true", help="ours without the input map (DeepXDE's convention)")
    ap.add_argument("--eager", action="store_true", help="ours without torch.compile (exact torch.tanh)")
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--plot", type=Path, help="figure stem: writes <stem>.png and .pdf")
    args = ap.parse_args()
    if args.steps < args.eval_every or args.eval_every < 1 or not args.seeds:
        ap.error("need --steps >= --eval-every >= 1 and at least one seed")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    import deepxde as dde

    dde.config.set_default_float("float32")
    data = deepxde_data("burgers", N_DOMAIN, N_BOUNDARY, N_INITIAL)
    x_test, u_ref = test_grid()
    print(f"CPU: {cpu_name()}; torch {torch.__version__}; Burgers {args.depth}x{args.width} tanh, Glorot, "
          f"Adam(W) 1e-3, {len(data.train_x)} points; target rel. L2 {args.target}; 1 thread; "
          f"seeds {args.seeds}")
    names = [METHODS[m] for m in args.methods]
    rows, seconds = [], {name: [] for name in names}
    for seed in args.seeds:
        if "deepxde" in args.methods:
            torch.manual_seed(seed)               # DeepXDE's FNN draws its Glorot init from torch's generator
            train, dde_m = deepxde_step(data, deepxde_net(args.width, args.depth))
            seconds[METHODS["deepxde"]].append(race(
                METHODS["deepxde"], seed, train, lambda x, m=dde_m: m.predict(x.numpy())[:, 0], x_test, u_ref,
                args.steps, args.eval_every, args.target, rows))
        for control in ("adamw", "stablegrad"):
            if control not in args.methods:
                continue
            name = METHODS[control]
            step, predict, compile_s = ours(data, args.width, args.depth, control, seed, args.raw_inputs, args.eager)
            print(f"seed {seed} {name}: compile {compile_s:.1f} s (not counted)")
            seconds[name].append(race(name, seed, lambda k, step=step: [step() for _ in range(k)], predict,
                                      x_test, u_ref, args.steps - 1, args.eval_every, args.target, rows))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if args.plot:
        plot(rows, args.plot, args.target, f"Burgers, {args.depth}x{args.width} tanh, same points, Adam(W) 1e-3: "
             f"rel. L2 vs training time and steps ({cpu_name()})")
    for name in names:
        final = [[r["rel_l2"] for r in rows if r["method"] == name and r["seed"] == s][-1] for s in args.seeds]
        print(f"{name:18s} seconds to {args.target} per seed: "
              + " / ".join(f"{s:.1f}" for s in seconds[name]) + f"; median {statistics.median(seconds[name]):.1f}"
              + "; rel. L2 at the last step: " + " / ".join(f"{e:.3g}" for e in final))
    if not {"deepxde", "adamw"} <= set(args.methods):
        print("time_to_accuracy_vs_deepxde=nan")
        return
    dde_s, our_s = seconds[METHODS["deepxde"]], seconds[METHODS["adamw"]]
    paired = [d / m for d, m in zip(dde_s, our_s) if math.isfinite(d) and math.isfinite(m)]
    print("DeepXDE / ours (AdamW), per seed where both reach it: " + " / ".join(f"{r:.2f}" for r in paired))
    dde, mine = statistics.median(dde_s), statistics.median(our_s)
    ratio = dde / mine if math.isfinite(dde) and math.isfinite(mine) else float("nan")
    print(f"time_to_accuracy_vs_deepxde={ratio:.3f}")


if __name__ == "__main__":
    main()
