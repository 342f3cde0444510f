"""Time to accuracy on Burgers: seconds of training until the test-grid relative L2 error first reaches a target,
DeepXDE out of the box vs our trainer (AdamW and AdamW + StableGrad), side by side in one run, CPU.

Same problem (viscous Burgers, nu = 0.01/pi), the same training points (DeepXDE's own sampler: 2540 domain,
80 boundary, 160 initial points, fed to ours), the same network (tanh MLP, Glorot normal, zero biases), the
same optimizer (Adam(W), lr 1e-3 constant, no weight decay), float32, one thread. DeepXDE trains as shipped
(reverse-mode derivatives); ours as the pipeline does (forward-propagated derivatives, torch.compile, the
products gemm="auto" picks). Every `--eval-every` steps the training clock stops and the error on the standard
test grid (256 x 100, Cole-Hopf reference) is measured. Compile time is printed apart and not counted (it is
paid once per shape and cached on disk). The last line is
`time_to_accuracy_vs_deepxde=<DeepXDE's seconds to the target / ours (AdamW)>` ("nan" if either misses it).

    python benchmarks/time_to_accuracy.py [--depth 8] [--width 32] [--target 0.3] [--steps 4000]
        [--eval-every 100] [--csv out.csv] [--plot paper_figures/time_to_accuracy]
"""
import argparse
import csv
import os
import sys
import time
from pathlib import Path

os.environ["DDE_BACKEND"] = "pytorch"
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]   # the experiments run from the repository, not installed

import numpy as np
import torch
from pinn_vs_deepxde import cpu_name, deepxde_data, deepxde_model

from pinn.derivatives import gemm_for
from pinn.model import MLP
from pinn.points import grid_points
from pinn.problems import burgers
from pinn.trainer import derivative_function, rel_l2
from pipeline.controls import BaseSettings, make_optimizer
from stablegrad import init_activation_aware_

STABLEGRAD = {"reference": "output", "statistic": "rms", "bias": "shared"}   # params.yaml's


def test_grid():
    axes = burgers.grid()
    return torch.tensor(grid_points(axes), dtype=torch.float32), burgers.reference(axes)


def ours(data, width, depth, control):
    """(step, predict, compile seconds) for our trainer's loop on DeepXDE's points."""
    n_bc = sum(data.num_bcs)
    x_bc, x_dom = data.train_x[:n_bc], data.train_x[n_bc:]
    g = torch.tensor(np.where(np.isclose(x_bc[:, 1], 0), -np.sin(np.pi * x_bc[:, 0]), 0.0), dtype=torch.float32)
    x_all = torch.tensor(np.concatenate([x_dom, x_bc]), dtype=torch.float32)
    n = len(x_dom)
    torch.manual_seed(0)
    model = MLP(2, width, depth, 1, "tanh", burgers.LOWER, burgers.UPPER)
    init_activation_aware_(model, activation="tanh", scheme="glorot")
    opt = make_optimizer(control, model, BaseSettings(1e-3), STABLEGRAD if control == "stablegrad" else {})
    gemm = gemm_for(model, x_all, burgers.SECOND, n).gemm
    derivs = derivative_function(True, gemm)

    def step():
        opt.zero_grad(set_to_none=True)
        u, du, d2u = derivs(model, x_all, burgers.SECOND, n)
        loss = (burgers.residual(x_all[:n], u[:n], du, d2u).square().mean()
                + burgers.boundary_loss(x_all[n:], (u[n:] - g).square()))   # the trainer's loss
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


def race(name, step_chunk, predict, x_test, u_ref, steps, every, target, rows):
    """Train in chunks of `every` steps; return the training seconds when rel. L2 first reaches `target`."""
    trained, reached = 0.0, None
    for done in range(every, steps + 1, every):
        t0 = time.perf_counter()
        step_chunk(every)
        trained += time.perf_counter() - t0
        err = rel_l2(predict(x_test).reshape(u_ref.shape), u_ref)
        rows.append({"method": name, "step": done, "seconds": round(trained, 3), "rel_l2": err})
        if reached is None and err <= target:
            reached = trained
            print(f"{name:26s} reached rel. L2 {err:.3e} <= {target} after {done} steps, {trained:.1f} s", flush=True)
    if reached is None:
        print(f"{name:26s} did not reach {target} in {steps} steps ({trained:.1f} s, last rel. L2 {err:.3e})")
    return reached


def plot(rows, stem, target, title):
    from paper_figures.style import color, plt, save

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = {"DeepXDE (Adam)": "#7f7f7f", "ours, AdamW": color("adamw"), "ours, StableGrad": color("stablegrad")}
    for name in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == name]
        for ax, x in zip(axes, ("seconds", "step")):
            ax.plot([r[x] for r in rs], [r["rel_l2"] for r in rs], "-", color=colors.get(name), label=name)
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
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--plot", type=Path, help="figure stem: writes <stem>.png and .pdf")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    data = deepxde_data()
    x_test, u_ref = test_grid()
    print(f"CPU: {cpu_name()}; torch {torch.__version__}; Burgers {args.depth}x{args.width} tanh, Glorot, "
          f"Adam(W) 1e-3, {len(data.train_x)} points; target rel. L2 {args.target}; 1 thread")
    rows, seconds = [], {}
    dde_m = deepxde_model(data, args.width, args.depth, 1e-3)
    seconds["DeepXDE (Adam)"] = race(
        "DeepXDE (Adam)", lambda k: dde_m.train(iterations=k, display_every=10**9, verbose=0),
        lambda x: dde_m.predict(x.numpy())[:, 0], x_test, u_ref, args.steps, args.eval_every, args.target, rows)
    for control, name in (("adamw", "ours, AdamW"), ("stablegrad", "ours, StableGrad")):
        step, predict, compile_s = ours(data, args.width, args.depth, control)
        print(f"{name}: compile {compile_s:.1f} s (not counted)")
        seconds[name] = race(name, lambda k, step=step: [step() for _ in range(k)], predict, x_test, u_ref,
                             args.steps - 1, args.eval_every, args.target, rows)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if args.plot:
        plot(rows, args.plot, args.target, f"Burgers, {args.depth}x{args.width} tanh, same points, Adam(W) 1e-3: "
             f"rel. L2 vs training time and steps ({cpu_name()})")
    dde, mine = seconds["DeepXDE (Adam)"], seconds["ours, AdamW"]
    ratio = dde / mine if dde and mine else float("nan")
    print(f"time_to_accuracy_vs_deepxde={ratio:.3f}")


if __name__ == "__main__":
    main()
