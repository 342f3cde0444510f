"""Train one PINN: AdamW or AdamW + StableGrad, identical settings otherwise; resumable, bit-identical."""
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pinn.config import PinnConfig
from pinn.derivatives import value_and_derivatives
from pinn.model import build_model
from pinn.problems import PROBLEMS

_SOURCES = [Path(__file__).parent, Path(__file__).parent / "problems"]


@dataclass
class PinnData:
    domain: torch.Tensor           # (N, d) collocation points
    boundary: torch.Tensor         # (M, d) boundary / initial points
    boundary_values: torch.Tensor  # (M,)
    test: torch.Tensor             # (P, d) test-grid points (row-major over the grid)
    reference: np.ndarray          # reference u on the test grid, shape (len(axes[1]), len(axes[0]))
    axes: list                     # the test grid's 1D axes


@dataclass
class RunResult:
    model: torch.nn.Module
    history: list = field(default_factory=list)   # rows (step, loss, lr)
    diverged: bool = False
    steps: int = 0
    final_loss: float = float("nan")
    wall_time_s: float = 0.0
    grad_scales: dict | None = None
    finished: bool = False


def load_data(data_dir, dtype=torch.float32, device="cpu") -> PinnData:
    d = Path(data_dir)
    pts = np.load(d / "collocation.npz")
    test = np.load(d / "test.npz")
    axes = [test[f"axis{i}"] for i in range(int(test["ndim"]))]
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)
    return PinnData(t(pts["domain"]), t(pts["boundary"]), t(pts["boundary_values"]),
                    t(test["points"]), test["u"], axes)


def grid_points(axes) -> np.ndarray:
    """All points of the grid, row-major with the first axis fastest (matches u[j, i])."""
    mesh = np.meshgrid(*axes, indexing="xy")
    return np.stack([m.ravel() for m in mesh], 1)


def rel_l2(pred, ref) -> float:
    """||pred - ref||_2 / ||ref||_2 over all grid points."""
    pred, ref = np.asarray(pred, float), np.asarray(ref, float)
    return float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def make_optimizer(cfg: PinnConfig, model, optimizer: str, recorder=None):
    base = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                             weight_decay=cfg.weight_decay)
    if optimizer == "adamw":
        return base
    from stablegrad import StableGrad

    s = cfg.stablegrad
    return StableGrad(base, model, reference=s.reference, statistic=s.statistic, bias=s.bias,
                      recorder=recorder)


def lr_lambda(cfg: PinnConfig):
    if cfg.schedule == "constant":
        return lambda step: 1.0
    f = cfg.final_lr_factor
    return lambda step: f + (1 - f) * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))


_NOT_IN_KEY = ("problems", "depths", "optimizers", "ablation", "points", "checkpoint_every", "threads", "device")


def run_key(cfg: PinnConfig, problem: str, depth: int, optimizer: str, seed: int, data: PinnData) -> str:
    """Hash of everything that determines a run: its settings, the training points, the pinn and
    stablegrad sources. A checkpoint is resumed only if its key matches."""
    settings = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_IN_KEY}
    h = hashlib.sha256(json.dumps([settings, problem, depth, optimizer, seed], sort_keys=True).encode())
    for t in (data.domain, data.boundary, data.boundary_values):
        h.update(t.detach().cpu().double().numpy().tobytes())
    import stablegrad

    for folder in _SOURCES + [Path(stablegrad.__file__).parent]:
        for f in sorted(folder.glob("*.py")):
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def pinn_loss(model, problem, x_all, n_domain, boundary_values, boundary_weight, derivs=value_and_derivatives):
    """(loss, u): loss = mean(residual^2) + w * mean((u - g)^2 on the boundary points), with one derivative
    pass over all points (domain first, then boundary; derivatives on the domain points only); u is the
    network output on all of them."""
    u, du, d2u = derivs(model, x_all, problem.SECOND, n_domain)
    res = problem.residual(x_all[:n_domain], u[:n_domain], du, d2u)
    return res.square().mean() + boundary_weight * (u[n_domain:] - boundary_values).square().mean(), u


def derivative_function(compile: bool):
    """value_and_derivatives, or its torch.compile'd version (forward + backward fused by inductor; cached on
    disk, so only the first run of a (depth, points, dtype) shape pays the compile time). The loss itself
    stays eager so that a hook on u (StableGrad reference="output") sees dLoss/du."""
    return torch.compile(value_and_derivatives, dynamic=False) if compile else value_and_derivatives


def train(cfg: PinnConfig, problem_name: str, depth: int, optimizer: str, data: PinnData, seed: int = 0,
          checkpoint: str | Path | None = None, stop_after: int | None = None, progress: bool = True) -> RunResult:
    """Train one run. With `checkpoint`, save every cfg.checkpoint_every steps and resume from it if its
    key matches; `stop_after` stops early (to simulate an interruption in tests)."""
    from stablegrad import GradScaleRecorder

    problem = PROBLEMS[problem_name]
    dtype = getattr(torch, cfg.dtype)
    device = data.domain.device
    torch.manual_seed(seed)
    model = build_model(problem, cfg.width, depth, cfg.activation, cfg.init, data.domain.cpu().float())
    model = model.to(device=device, dtype=dtype)
    recorder = GradScaleRecorder(every=cfg.grad_scale_every)
    opt = make_optimizer(cfg, model, optimizer, recorder)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    observe = opt.observe_output if optimizer == "stablegrad" and cfg.stablegrad.reference == "output" else None
    x_all = torch.cat([data.domain, data.boundary]).to(device=device, dtype=dtype)
    g = data.boundary_values.to(device=device, dtype=dtype)
    n_dom = data.domain.shape[0]
    derivs = derivative_function(cfg.compile)

    res = RunResult(model)
    key = run_key(cfg, problem_name, depth, optimizer, seed, data)
    start, first_loss = 0, None
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        if state["key"] == key:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            recorder.load_state_dict(state["recorder"])
            torch.set_rng_state(state["rng"])
            start, first_loss = state["step"], state["first_loss"]
            res.history, res.wall_time_s, res.diverged = state["history"], state["wall_time_s"], state["diverged"]
            res.final_loss = state["final_loss"]

    def save_checkpoint(step):
        if ckpt is None:
            return
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"key": key, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "recorder": recorder.state_dict(),
                    "rng": torch.get_rng_state(), "step": step, "first_loss": first_loss,
                    "history": res.history, "wall_time_s": res.wall_time_s, "diverged": res.diverged,
                    "final_loss": res.final_loss}, tmp)
        tmp.replace(ckpt)

    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = tqdm(range(start, end), initial=start, total=cfg.steps, disable=not progress or start >= end,
               desc=f"{problem_name}-{depth}-{optimizer}", mininterval=2.0, leave=False)
    t0 = time.perf_counter()
    done = start
    if not res.diverged:
        for step in bar:
            opt.zero_grad(set_to_none=True)
            loss, u = pinn_loss(model, problem, x_all, n_dom, g, cfg.boundary_weight, derivs)
            if observe is not None:
                observe(u)
            loss.backward()
            if optimizer == "adamw":
                recorder.capture(model)
            opt.step()
            sched.step()
            done = step + 1
            if step % cfg.log_every == 0 or step == cfg.steps - 1:
                value = loss.item()
                first_loss = value if first_loss is None else first_loss
                res.history.append((step, value, sched.get_last_lr()[0]))
                res.final_loss = value
                bar.set_postfix(loss=f"{value:.3e}", refresh=False)
                if not math.isfinite(value) or value > cfg.diverge_factor * max(first_loss, 1e-30):
                    res.diverged = True
                    break
            if done % cfg.checkpoint_every == 0:
                res.wall_time_s += time.perf_counter() - t0
                t0 = time.perf_counter()
                save_checkpoint(done)
    bar.close()
    res.wall_time_s += time.perf_counter() - t0
    res.steps = done
    res.finished = res.diverged or done >= cfg.steps
    save_checkpoint(done)
    res.grad_scales = recorder.to_dict()
    return res


@torch.no_grad()
def predict(model, data: PinnData, chunk: int = 65536) -> np.ndarray:
    x = data.test.to(device=next(model.parameters()).device, dtype=next(model.parameters()).dtype)
    out = torch.cat([model(x[i:i + chunk])[:, 0] for i in range(0, len(x), chunk)])
    return out.double().cpu().numpy().reshape(data.reference.shape)
