"""Train one PINN with one gradient control (AdamW, StableGrad or a baseline), identical settings otherwise;
resumable, bit-identical (the run contract of pipeline/runs.py)."""
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pinn import conditions
from pinn.config import PinnConfig
from pinn.derivatives import gemm_for, value_and_derivatives
from pinn.loss_annealing import LossWeightAnnealing
from pinn.model import build_model
from pinn.problems import PROBLEMS
from pipeline import runs
from pipeline.controls import make_optimizer, record
from stablegrad import GradScaleRecorder

# What a run executes: part of its run key, and the deps of the pinn_train stages in dvc.yaml (a test keeps
# the two the same).
SOURCES = ("pinn/stages/train.py", "pinn/config.py", "pinn/trainer.py", "pinn/model.py", "pinn/derivatives.py",
           "pinn/gemm.py", "pinn/loss_annealing.py", "pinn/problems", "pinn/conditions.py", *runs.SHARED_SOURCES)


@dataclass
class PinnData:
    domain: torch.Tensor           # (N, d) collocation points
    boundary: torch.Tensor         # (M, d) boundary / initial points, condition after condition
    boundary_values: torch.Tensor  # (M,) the conditions' targets g
    test: torch.Tensor             # (P, d) test-grid points (row-major over the grid)
    reference: np.ndarray          # reference u on the test grid, shape (len(axes[1]), len(axes[0]))
    axes: list                     # the test grid's 1D axes
    condition_rows: tuple | None = None   # boundary rows of each condition (pinn.conditions.sample's order);
                                          # None: all M rows (allowed for a problem with one condition only)


@dataclass
class RunResult:
    model: torch.nn.Module
    history: list = field(default_factory=list)   # rows (step, loss, lr, boundary_weight)
    diverged: bool = False
    steps: int = 0
    final_loss: float = float("nan")
    wall_time_s: float = 0.0
    grad_scales: dict | None = None
    finished: bool = False
    gemm: str = "aten"             # the products the derivative pass used (pinn.gemm: auto picks by measurement)
    boundary_weight: float = 1.0   # the final boundary-loss weight (changes only with the lra control)


def load_data(data_dir, dtype=torch.float32, device="cpu") -> PinnData:
    d = Path(data_dir)
    pts = np.load(d / "collocation.npz")
    test = np.load(d / "test.npz")
    axes = [test[f"axis{i}"] for i in range(int(test["ndim"]))]
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)
    rows = tuple(int(r) for r in pts["condition_rows"]) if "condition_rows" in pts.files else None
    return PinnData(t(pts["domain"]), t(pts["boundary"]), t(pts["boundary_values"]),
                    t(test["points"]), test["u"], axes, rows)


def rel_l2(pred, ref) -> float:
    """||pred - ref||_2 / ||ref||_2 over all grid points."""
    pred, ref = np.asarray(pred, float), np.asarray(ref, float)
    return float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def lr_lambda(cfg: PinnConfig, schedule: str):
    if schedule == "constant":
        return lambda step: 1.0
    f = cfg.final_lr_factor
    return lambda step: f + (1 - f) * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))


def run_key(cfg: PinnConfig, problem: str, depth: int, control: str, seed: int, data: PinnData) -> str:
    """What a checkpoint must match to be resumed: the settings the run reads (its own control's options,
    not the others'), the training points, and the sources it executes."""
    settings = {**cfg.run_settings(control), "problem": problem, "depth": depth, "seed": seed}
    return runs.run_key(settings, [t.double() for t in (data.domain, data.boundary, data.boundary_values)],
                        runs.source_files(SOURCES))


def condition_rows(problem, n_boundary: int, rows: tuple | None) -> tuple:
    """The boundary rows of each of the problem's conditions: `rows` (PinnData.condition_rows), or all
    n_boundary rows for a problem with one condition."""
    if rows is not None:
        rows = tuple(int(r) for r in rows)      # plain ints: numpy ones would be traced as tensors by torch.compile
        if len(rows) != len(problem.CONDITIONS) or sum(rows) != n_boundary or min(rows) < 1:
            raise ValueError(f"condition_rows {rows} do not fit the problem's {len(problem.CONDITIONS)} conditions "
                             f"and {n_boundary} boundary points (regenerate the points)")
        return rows
    if len(problem.CONDITIONS) != 1:
        raise ValueError(f"the boundary points do not say which rows belong to which of the problem's "
                         f"{len(problem.CONDITIONS)} conditions: pass PinnData.condition_rows (points.generate's "
                         f"'condition_rows')")
    return (n_boundary,)


def pinn_losses(model, problem, x_all, n_domain, boundary_values, derivs=value_and_derivatives, rows=None):
    """(residual loss, boundary loss, u): mean(residual^2) on the domain points and the sum over the problem's
    conditions of the mean squared condition residual on its boundary rows (`rows`, see condition_rows; one
    mean per condition, as DeepXDE), with one derivative pass over all points (domain first, then boundary;
    second derivatives on the domain points, first derivatives there and on the conditions that read them);
    u is the network output on all of them. The training loss is residual + boundary_weight * boundary."""
    rows = condition_rows(problem, len(x_all) - n_domain, rows)
    n_first = n_domain + conditions.first_rows(problem, rows)
    u, du, d2u = derivs(model, x_all, problem.SECOND, n_domain, n_first=n_first)
    x_dom, x_bnd = x_all.split([n_domain, len(x_all) - n_domain])
    u_dom, u_bnd = u.split([n_domain, len(u) - n_domain])
    du_dom, du_bnd = du.split([n_domain, n_first - n_domain])
    res = problem.residual(x_dom, u_dom, du_dom, d2u)
    return res.square().mean(), conditions.boundary_loss(problem, rows, x_bnd, u_bnd, du_bnd, boundary_values), u


def derivative_function(compile: bool, gemm: str):
    """value_and_derivatives with the products `gemm`, or its torch.compile'd version (forward + backward fused
    by inductor; cached on disk, so only the first run of a (depth, points, dtype) shape pays the compile
    time)."""
    def derivs(model, x, second, n_deriv, n_first=None):
        return value_and_derivatives(model, x, second, n_deriv, gemm=gemm, n_first=n_first)
    return torch.compile(derivs, dynamic=False) if compile else derivs


def loss_function(compile: bool, gemm: str, observed: bool = False):
    """losses(model, problem, x_all, n_domain, boundary_values, rows) -> pinn_losses' (residual, boundary, u),
    with the products `gemm`. Compiled: the whole loss is one torch.compile'd graph (forward and backward), unless
    `observed` (a hook will be put on u, as StableGrad's reference="output" does: it must see dLoss/du, so u
    has to leave the graph; then the derivative pass is compiled and the loss stays eager)."""
    derivs = derivative_function(compile and observed, gemm)

    def losses(model, problem, x_all, n_domain, boundary_values, rows=None):
        return pinn_losses(model, problem, x_all, n_domain, boundary_values, derivs, rows)
    return torch.compile(losses, dynamic=False) if compile and not observed else losses


def train(cfg: PinnConfig, problem_name: str, depth: int, control: str, data: PinnData, seed: int = 0,
          checkpoint: str | Path | None = None, stop_after: int | None = None, progress: bool = True,
          init_state: dict | None = None) -> RunResult:
    """Train one run with the gradient control `control` (a key of cfg.optimizers). With `checkpoint`, save
    every cfg.checkpoint_every steps and resume from it if its run key matches; `stop_after` stops early (to
    simulate an interruption in tests). `init_state`: initial weights (part of a state dict of the model) in place
    of cfg.init's, e.g. another implementation's for a differential test (not part of the run key: no checkpoint
    with it)."""
    problem = PROBLEMS[problem_name]
    dtype = getattr(torch, cfg.dtype)
    device = data.domain.device
    init, base, options = cfg.control(control)
    torch.manual_seed(seed)
    model = build_model(problem, cfg.width, depth, cfg.activation, init, data.domain.cpu().float(),
                        cfg.conventions.input_map)
    if init_state is not None:
        if checkpoint is not None:
            raise ValueError("init_state is not part of the run key: train without a checkpoint")
        model.load_state_dict({**model.state_dict(), **init_state})   # its weights; the input map stays ours
    model = model.to(device=device, dtype=dtype)
    recorder = GradScaleRecorder(every=cfg.grad_scale_every)
    opt = make_optimizer(control, model, base, options, recorder)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, cfg.schedule_of(control)))
    hooks = record(control)   # the control's trainer hooks (pipeline/controls.py)
    capture = None if hooks.records_itself else recorder
    observe = hooks.output_hook(opt, options) if hooks.output_hook else None
    annealing = (LossWeightAnnealing(options["alpha"], options["every"], initial=cfg.boundary_weight)
                 if hooks.anneals_boundary_weight else None)
    x_all = torch.cat([data.domain, data.boundary]).to(device=device, dtype=dtype)
    g = data.boundary_values.to(device=device, dtype=dtype)
    n_dom = data.domain.shape[0]
    rows = condition_rows(problem, len(data.boundary), data.condition_rows)
    gemm, why, _ = gemm_for(model, x_all, problem.SECOND, n_dom, cfg.gemm,
                            n_first=n_dom + conditions.first_rows(problem, rows))
    if progress:
        tqdm.write(f"{problem_name}-{depth}-{control} seed {seed}: products {why}")
    losses = loss_function(cfg.compile, gemm, observed=observe is not None)

    res = RunResult(model, gemm=gemm, boundary_weight=cfg.boundary_weight)
    key = run_key(cfg, problem_name, depth, control, seed, data)
    start, first_loss = 0, None
    parts = [model, opt, sched, recorder] + ([annealing] if annealing is not None else [])

    def restore(state):
        nonlocal start, first_loss
        history = [tuple(row) for row in state["history"]]
        done = (state["step"], state["first_loss"], state["wall_time_s"], state["diverged"], state["final_loss"])
        for part, name in zip(parts, ("model", "optimizer", "scheduler", "recorder", "annealing")):
            part.load_state_dict(state[name])
        torch.set_rng_state(state["rng"])
        start, first_loss, res.wall_time_s, res.diverged, res.final_loss = done
        res.history = history

    runs.resume(checkpoint, key, restore, parts, map_location=device)

    def save(step):
        runs.save_checkpoint(checkpoint, key, {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "recorder": recorder.state_dict(), "rng": torch.get_rng_state(), "step": step,
            "first_loss": first_loss, "history": [list(row) for row in res.history],
            "wall_time_s": res.wall_time_s, "diverged": res.diverged, "final_loss": res.final_loss,
            "annealing": annealing.state_dict() if annealing is not None else None})

    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = tqdm(range(start, end), initial=start, total=cfg.steps, disable=not progress or start >= end,
               desc=f"{problem_name}-{depth}-{control}", mininterval=2.0, leave=False)
    t0 = time.perf_counter()
    done = start
    if not res.diverged:
        for step in bar:
            opt.zero_grad(set_to_none=True)
            loss_r, loss_b, u = losses(model, problem, x_all, n_dom, g, rows)
            if annealing is not None:
                annealing.update([layer.weight for layer in model.layers], loss_r, loss_b)  # as the authors
            weight = cfg.boundary_weight if annealing is None else annealing.weight
            loss = loss_r + weight * loss_b
            if observe is not None:
                observe(u)
            loss.backward()
            if capture is not None:
                capture.capture(model)
            opt.step()
            sched.step()
            done = step + 1
            if step % cfg.log_every == 0 or step == cfg.steps - 1:
                value = loss.item()
                first_loss = value if first_loss is None else first_loss
                res.history.append((step, value, sched.get_last_lr()[0], float(weight)))
                res.final_loss = value
                bar.set_postfix(loss=f"{value:.3e}", refresh=False)
                if not math.isfinite(value) or value > cfg.diverge_factor * max(first_loss, 1e-30):
                    res.diverged = True
                    break
            if done % cfg.checkpoint_every == 0:
                res.wall_time_s += time.perf_counter() - t0
                t0 = time.perf_counter()
                save(done)
    bar.close()
    res.wall_time_s += time.perf_counter() - t0
    res.steps = done
    res.finished = res.diverged or done >= cfg.steps
    res.boundary_weight = cfg.boundary_weight if annealing is None else annealing.weight
    save(done)
    res.grad_scales = recorder.to_dict()
    return res


@torch.no_grad()
def predict(model, data: PinnData, chunk: int = 65536) -> np.ndarray:
    x = data.test.to(device=next(model.parameters()).device, dtype=next(model.parameters()).dtype)
    out = torch.cat([model(x[i:i + chunk])[:, 0] for i in range(0, len(x), chunk)])
    return out.double().cpu().numpy().reshape(data.reference.shape)
