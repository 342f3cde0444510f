"""K seeds trained together (one batched derivative pass over their stacked weights, one graph, one backward) vs
the same K seeds one after another, per seed and step, on the study's points (Burgers, params_cpu_study.yaml),
float32, compiled, AdamW (fused), 1 thread. pinn.derivatives.value_and_derivatives takes a list of models for
the batched pass (tests/test_pinn_derivatives.py: equal to separate passes to float64 rounding).

This decides whether the study trains its seeds together: it pays only where per-operation overhead, not the
products and the fused elementwise kernels, dominates the step (small widths, few points, GPUs). Rounds
alternate between the two; the median round counts; the CPU is printed.

    python benchmarks/seeds_together.py [--depths 4 32] [--seeds 3] [--iters 20] [--rounds 5] [--clock cpu]
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch
from pinn_vs_deepxde import cpu_name

from pinn import conditions
from pinn.config import load
from pinn.derivatives import value_and_derivatives
from pinn.model import build_model
from pinn.problems import burgers
from pinn.trainer import condition_rows, load_data, loss_function, pinn_losses
from pipeline.controls import BaseSettings, make_optimizer


def setups(cfg, data, depth, k):
    """(separate, together): functions running n steps of k seeds, each seed with its own model and AdamW."""
    x_all, g, n = torch.cat([data.domain, data.boundary]), data.boundary_values, len(data.domain)
    rows = condition_rows(burgers, len(data.boundary), data.condition_rows)
    n_first = n + conditions.first_rows(burgers, rows)

    def seeds():
        models = []
        for s in range(k):
            torch.manual_seed(s)
            models.append(build_model(burgers, cfg.width, depth, "tanh", "glorot", input_map="none"))
        return models, [make_optimizer("adamw", m, BaseSettings(lr=1e-3)) for m in models]

    one = loss_function(True, "aten")
    models_a, opts_a = seeds()

    def separate(steps):
        for _ in range(steps):
            for m, opt in zip(models_a, opts_a):
                opt.zero_grad(set_to_none=True)
                loss_r, loss_b, _ = one(m, burgers, x_all, n, g, rows)
                (loss_r + loss_b).backward()
                opt.step()

    @torch.compile(dynamic=False)
    def batched_loss(models):
        u, du, d2u = value_and_derivatives(models, x_all, burgers.SECOND, n, gemm="aten", n_first=n_first)
        total = 0
        for s in range(len(models)):
            of_seed = lambda *_, s=s, **__: (u[s], du[s], {j: v[s] for j, v in d2u.items()})
            loss_r, loss_b, _ = pinn_losses(None, burgers, x_all, n, g, of_seed, rows)
            total = total + loss_r + loss_b
        return total

    models_b, opts_b = seeds()

    def together(steps):
        for _ in range(steps):
            for opt in opts_b:
                opt.zero_grad(set_to_none=True)
            batched_loss(models_b).backward()
            for opt in opts_b:
                opt.step()
    return separate, together


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params_cpu_study.yaml")
    ap.add_argument("--depths", type=int, nargs="+", default=[4, 32])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    torch.set_num_threads(1)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    cfg = load(ROOT / args.params)
    with tempfile.TemporaryDirectory() as tmp:
        from pinn.stages.generate import main as generate

        generate(["--params", str(ROOT / args.params), "--problem", "burgers", "--out", tmp])
        data = load_data(tmp)
    print(f"CPU: {cpu_name()}, torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}); Burgers, "
          f"{len(data.domain)} + {len(data.boundary)} points, width {cfg.width}, {args.seeds} seeds, 1 thread, "
          f"{args.clock} time")
    for depth in args.depths:
        variants = dict(zip(("one after another", "together"), setups(cfg, data, depth, args.seeds)))
        for fn in variants.values():
            fn(3)                       # compile and warm up
        times = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, fn in variants.items():
                t0 = clock()
                fn(args.iters)
                times[name].append((clock() - t0) / args.iters / args.seeds)
        med = {name: statistics.median(t) for name, t in times.items()}
        for name, t in med.items():
            print(f"  depth {depth:2d}, {name:17s}: {t * 1e3:6.2f} ms per seed and step")
        print(f"depth {depth}: together / one after another = {med['together'] / med['one after another']:.2f} "
              f"(< 1: training the seeds together pays)")


if __name__ == "__main__":
    main()
