"""Time per training step on Burgers: DeepXDE (PyTorch backend) vs our PINN trainer, side by side, CPU, per depth.

Same points (DeepXDE's Burgers example: 2540 domain, 80 boundary, 160 initial points from DeepXDE's own sampler,
the residual on all 2780 of them, as DeepXDE does; pinn.deepxde_twin turns them into our PinnData), the same
network (tanh, DeepXDE's Glorot-normal weights copied into ours, raw inputs), Adam(W) lr 1e-3, float32, 1 thread
by default. DeepXDE differentiates by nested reverse mode; ours propagates value and derivatives forward in one
stacked pass (pinn/derivatives.py) and backpropagates once. "ours, compiled" is the trainer's own step for the
adamw control (pinn.trainer.loss_function: the whole loss one torch.compile'd graph; the optimizer from
pipeline.controls: fused AdamW), "ours, eager" the same uncompiled.

"products alone" times only the matrix products that our step cannot avoid (three per hidden layer of the
stacked pass, forward and backward, on the library the trainer chose): a floor for this CPU, and the ratio
DeepXDE / floor is the most any leaner step could reach here.

Rounds alternate between the variants so that machine noise hits each; the median round counts. Prints the
CPU (lscpu model name and PyTorch's capability, e.g. AVX2 or AVX512), one ratio per depth, and as its last line
`speedup_vs_deepxde=<DeepXDE over ours, compiled, at the first --depth>`.

    python benchmarks/pinn_vs_deepxde.py [--depth 8 32] [--width 32] [--iters 30] [--rounds 5] [--clock cpu]

`--clock cpu` times with this process's CPU time: on a machine shared with other jobs it does not count the
time the benchmark waits for a core (1 thread only; caches and memory bandwidth stay shared).
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ["DDE_BACKEND"] = "pytorch"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # pinn/ is run from the repository, not installed

import torch

N_DOMAIN, N_BOUNDARY, N_INITIAL = 2540, 160, 160   # DeepXDE's Burgers example (80 points on each of x = -1, 1)


def cpu_name() -> str:
    """lscpu's model name, else /proc/cpuinfo's or platform's (pinn.gemm.cpu_model)."""
    try:
        out = subprocess.run(["lscpu"], check=False, capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from pinn.gemm import cpu_model

    return cpu_model()


def deepxde_step(data, net):
    """(a function running n of its training iterations, the model): DeepXDE's model, compiled with Adam 1e-3."""
    import deepxde as dde

    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    return (lambda n: model.train(iterations=n, display_every=10**9, verbose=0)), model


def our_step(data, net, depth, width, compile):
    """The trainer's step for the adamw control (pinn/trainer.py's loop body), from DeepXDE's initial weights;
    with the product library it takes and the rows of its stacked pass."""
    from pinn.deepxde_twin import our_state_dict, pinn_data
    from pinn.derivatives import gemm_for, stacked_rows
    from pinn.model import build_model
    from pinn.problems import burgers
    from pinn.trainer import condition_rows, loss_function
    from pipeline.controls import BaseSettings, make_optimizer

    pd = pinn_data(data, "burgers", torch.float32)
    model = build_model(burgers, width, depth, "tanh", "glorot", input_map="none")
    model.load_state_dict({**model.state_dict(), **our_state_dict(net)})
    opt = make_optimizer("adamw", model, BaseSettings(lr=1e-3))
    x_all, g, n = torch.cat([pd.domain, pd.boundary]), pd.boundary_values, len(pd.domain)
    rows = condition_rows(burgers, len(pd.boundary), pd.condition_rows)
    choice = gemm_for(model, x_all, burgers.SECOND, n, "auto", n_first=n)
    losses = loss_function(compile, choice.gemm)

    def steps(k):
        for _ in range(k):
            opt.zero_grad(set_to_none=True)
            loss_r, loss_b, _ = losses(model, burgers, x_all, n, g, rows)
            (loss_r + loss_b).backward()
            opt.step()
    return steps, choice, stacked_rows(len(x_all), 2, len(burgers.SECOND), n, n)


def products_alone(depth, width, n_rows, gemm):
    """The three products per hidden layer of the stacked pass (forward x W^T, backward g W and g^T x), alone."""
    from pinn.gemm import mm_nn, mm_nt

    gen = torch.Generator().manual_seed(0)
    x, g = (torch.randn(n_rows, width, generator=gen) for _ in range(2))
    w = torch.randn(width, width, generator=gen)
    if gemm == "onednn":
        three = lambda: (mm_nt(x, w), mm_nn(g, w), mm_nn(g.t().contiguous(), x))
    else:
        three = lambda: (x @ w.t(), g @ w, g.t() @ x)

    def steps(k):
        with torch.no_grad():
            for _ in range(k * (depth - 1)):
                three()
    return steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, nargs="+", default=[8, 32], help="hidden layers (one comparison each)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    if args.clock == "cpu" and args.threads != 1:
        ap.error("--clock cpu needs --threads 1 (CPU time adds up over threads)")
    if min(args.depth) < 2 or args.width < 1 or args.iters < 1 or args.rounds < 1:
        ap.error("--depth >= 2, --width, --iters and --rounds >= 1")
    import deepxde as dde

    from pinn.deepxde_twin import deepxde_data, deepxde_net

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    dde.config.set_default_float("float32")
    print(f"CPU: {cpu_name()} ({platform.machine()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"capability {torch.backends.cpu.get_cpu_capability()}); {args.threads} thread(s), {args.clock} time")
    ratios = {}
    for depth in args.depth:
        torch.manual_seed(0)
        data = deepxde_data("burgers", N_DOMAIN, N_BOUNDARY, N_INITIAL)
        net = deepxde_net(args.width, depth)
        compiled, choice, n_rows = our_step(data, net, depth, args.width, compile=True)
        eager = our_step(data, net, depth, args.width, compile=False)[0]
        n_pts = len(data.train_x_all) + sum(data.num_bcs)
        variants = {"DeepXDE": deepxde_step(data, net)[0], "ours, eager": eager, "ours, compiled": compiled,
                    "products alone": products_alone(depth, args.width, n_rows, choice.gemm)}
        t0 = time.perf_counter()
        compiled(1)
        print(f"\nBurgers {depth} x {args.width}: {n_pts} points, {n_rows} stacked rows; products: {choice.reason}; "
              f"compile {time.perf_counter() - t0:.1f} s (first call, cached on disk)")
        for fn in variants.values():   # warm-up
            fn(5)
        times = {k: [] for k in variants}
        for _ in range(args.rounds):
            for key, fn in variants.items():
                t0 = clock()
                fn(args.iters)
                times[key].append((clock() - t0) / args.iters)
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"  {k:16s} {med[k] * 1e3:8.2f} ms/step  DeepXDE / this = {med['DeepXDE'] / med[k]:5.2f}  "
                  f"(rounds: {', '.join(f'{t * 1e3:.2f}' for t in v)})")
        ratios[depth] = med["DeepXDE"] / med["ours, compiled"]
        print(f"  depth {depth}: ours {ratios[depth]:.2f}x faster than DeepXDE; the products alone cap it at "
              f"{med['DeepXDE'] / med['products alone']:.2f}x on this CPU")
    print("\n" + ", ".join(f"depth {d} x {args.width}: {r:.2f}x" for d, r in ratios.items()))
    print(f"speedup_vs_deepxde={ratios[args.depth[0]]:.3f}")


if __name__ == "__main__":
    main()
