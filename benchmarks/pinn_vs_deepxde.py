"""Time per training iteration on Burgers: DeepXDE (PyTorch backend) vs our PINN trainer, side by side, CPU.

Same network (8 hidden layers of 50, tanh, Glorot-normal init in both), the same training points (DeepXDE's
Burgers example: 2540 domain, 80 boundary, 160 initial points, taken from DeepXDE's own sampler and fed
to ours), the same optimizer (Adam, lr 1e-3), float32. DeepXDE computes u_x, u_t, u_xx by reverse-mode
autograd (dde.grad.jacobian / hessian, cached per loss evaluation); ours propagates the value and its
derivatives forward through the MLP in one stacked pass (pinn/derivatives.py: derivative streams on the
residual points only) and backpropagates once, with torch.compile of the loss (inductor fuses the
elementwise work of the streams, forward and backward) and the hidden-layer products on PyTorch's default
(MKL sgemm) or on oneDNN's kernels (pinn/gemm.py), whichever `gemm="auto"` measured faster on this CPU for
these shapes (cached per CPU model and PyTorch version; the CPU and the choice with its reason are printed).

Control rows split the gain into its parts: ours with each product library ("ours, compiled, MKL",
"ours, compiled, oneDNN"; the trainer's "auto" is one of the two), and "DeepXDE, oneDNN", DeepXDE with its
nn.Linear layers switched to the same oneDNN products (pinn.gemm.mm_nt, differentiable to any order), so
that each library's row of ours can be compared with DeepXDE on the same products. The compile time is
printed separately (paid once per shape, cached on disk). Rounds alternate between all variants so machine
noise hits each; the median round is reported. The last line is
`speedup_vs_deepxde=<DeepXDE as shipped, s/iter, over ours (compiled, gemm="auto", as the trainer runs)>`.

    python benchmarks/pinn_vs_deepxde.py [--iters 50] [--rounds 7] [--threads 1] [--clock wall|cpu]

`--clock cpu` times with this process's CPU time instead of wall time: on a machine shared with other jobs
it does not count the time the benchmark waits for a core (1 thread only; caches and memory stay shared).
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

import numpy as np
import torch

NU = 0.01 / np.pi


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


def deepxde_data():
    import deepxde as dde

    dde.config.set_default_float("float32")
    geom = dde.geometry.Interval(-1, 1)
    geomtime = dde.geometry.GeometryXTime(geom, dde.geometry.TimeDomain(0, 0.99))

    def pde(x, y):
        dy_x = dde.grad.jacobian(y, x, i=0, j=0)
        dy_t = dde.grad.jacobian(y, x, i=0, j=1)
        dy_xx = dde.grad.hessian(y, x, i=0, j=0)
        return dy_t + y * dy_x - NU * dy_xx

    bc = dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
    return dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=2540, num_boundary=80, num_initial=160)


def deepxde_model(data, width, depth, lr, onednn=False):
    import deepxde as dde

    net = dde.nn.FNN([2] + [width] * depth + [1], "tanh", "Glorot normal")
    if onednn:  # the control: DeepXDE's layers on the same oneDNN products as ours
        from pinn.gemm import mm_nt

        for lin in net.linears:
            lin.forward = lambda x, lin=lin: mm_nt(x, lin.weight) + lin.bias
    model = dde.Model(data, net)
    model.compile("adam", lr=lr)
    return model


def our_points(data):
    """DeepXDE's points as our trainer lays them out: (x_all = domain then boundary rows, n_domain, targets g,
    rows per condition). DeepXDE's boundary rows are its [DirichletBC, IC] ones; ours are in
    burgers.CONDITIONS' order (initial condition, then x = -1, 1)."""
    n_bc, n_ic = data.num_bcs
    x_bnd = np.concatenate([data.train_x[n_bc:n_bc + n_ic], data.train_x[:n_bc]])
    x_dom = data.train_x[n_bc + n_ic:]        # the points DeepXDE's residual loss uses
    g = np.where(np.isclose(x_bnd[:, 1], 0), -np.sin(np.pi * x_bnd[:, 0]), 0.0)
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    return t(np.concatenate([x_dom, x_bnd])), len(x_dom), t(g), (n_ic, n_bc)


def our_setup(data, width, depth, lr, compile=False, gemm="auto"):
    from pinn.model import MLP
    from pinn.problems import burgers
    from pinn.trainer import derivative_function, pinn_losses

    x_all, n, g, rows = our_points(data)
    model = MLP(2, width, depth, 1, "tanh", burgers.LOWER, burgers.UPPER)
    for layer in model.layers:
        torch.nn.init.xavier_normal_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    derivs = derivative_function(False, gemm)

    def loss_fn():
        loss_r, loss_b, _ = pinn_losses(model, burgers, x_all, n, g, derivs, rows)
        return loss_r + loss_b

    loss_fn = torch.compile(loss_fn, dynamic=False) if compile else loss_fn

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss

    return step, len(x_all)


def auto_choice(data, width, depth):
    """What gemm="auto" takes for our derivative pass on these points (pinn.derivatives.gemm_for)."""
    from pinn.derivatives import gemm_for
    from pinn.model import MLP
    from pinn.problems import burgers

    n_dom = len(data.train_x) - sum(data.num_bcs)
    x = torch.zeros(len(data.train_x), 2)
    return gemm_for(MLP(2, width, depth), x, burgers.SECOND, n_dom, "auto")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--width", type=int, default=50)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: robust against other jobs on the cores; OpenMP spin-waits otherwise)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: process CPU time, robust against other jobs time-sharing the cores (1 thread)")
    args = ap.parse_args()
    if args.clock == "cpu" and args.threads != 1:
        ap.error("--clock cpu needs --threads 1 (CPU time adds up over threads)")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = deepxde_data()
    print(f"CPU: {cpu_name()} ({platform.machine()}, {os.cpu_count()} logical CPUs, torch "
          f"{torch.__version__}, capability {torch.backends.cpu.get_cpu_capability()})")
    auto = auto_choice(data, args.width, args.depth)
    print(f"products (gemm=auto): {auto.reason}")
    dde_model = deepxde_model(data, args.width, args.depth, 1e-3)
    dde_onednn = deepxde_model(data, args.width, args.depth, 1e-3, onednn=True)
    ours, n_pts = our_setup(data, args.width, args.depth, 1e-3, gemm=auto.gemm)
    ours_c = {lib: our_setup(data, args.width, args.depth, 1e-3, compile=True, gemm=lib)[0]
              for lib in ("aten", "onednn")}
    print(f"Burgers, {args.depth}x{args.width} tanh, Adam 1e-3, float32, {n_pts} training points, "
          f"{torch.get_num_threads()} threads, {args.iters} iterations x {args.rounds} rounds, {args.clock} time")
    for m in (dde_model, dde_onednn):
        m.train(iterations=20, display_every=10**9, verbose=0)   # warm-up
    for _ in range(20):
        ours()
    for lib, step in ours_c.items():
        t0 = time.perf_counter()
        step()
        print(f"torch.compile of our loss (forward + backward, {lib}): {time.perf_counter() - t0:.1f} s "
              "(first call; cached on disk for later runs)")
    for _ in range(20):
        for step in ours_c.values():
            step()
    names = {"aten": "ours, compiled, MKL", "onednn": "ours, compiled, oneDNN"}
    variants = {
        "DeepXDE": lambda: dde_model.train(iterations=args.iters, display_every=10**9, verbose=0),
        "DeepXDE, oneDNN": lambda: dde_onednn.train(iterations=args.iters, display_every=10**9, verbose=0),
        f"ours, eager ({auto.gemm})": lambda: [ours() for _ in range(args.iters)],
        names["aten"]: lambda: [ours_c["aten"]() for _ in range(args.iters)],
        names["onednn"]: lambda: [ours_c["onednn"]() for _ in range(args.iters)],
    }
    times = {k: [] for k in variants}
    for _ in range(args.rounds):
        for key, fn in variants.items():
            t0 = clock()
            fn()
            times[key].append((clock() - t0) / args.iters)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:24s} {med[k] * 1e3:7.2f} ms/iter  x{med['DeepXDE'] / med[k]:.2f}  "
              f"(rounds: {', '.join(f'{t * 1e3:.2f}' for t in v)})")
    mine = names[auto.gemm]
    print(f"ours, compiled, auto = {mine} (what the trainer runs)")
    print(f"same products on both sides: MKL x{med['DeepXDE'] / med[names['aten']]:.2f}, "
          f"oneDNN x{med['DeepXDE, oneDNN'] / med[names['onednn']]:.2f} (DeepXDE over ours)")
    print(f"speedup_vs_deepxde={med['DeepXDE'] / med[mine]:.3f}")

if __name__ == "__main__":
    main()
