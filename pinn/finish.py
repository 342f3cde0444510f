"""The L-BFGS finishing phase: after a run of the optimizer comparison, L-BFGS with a strong-Wolfe line search
on the same loss, from the weights the run ended with. It is what Raissi et al. and most DeepXDE users do to
reach their published accuracy, so it tells the accuracy a user can reach from each control's end point; it
is reported apart from the comparison (the comparison is of the gradient controls, and L-BFGS has none).

PyTorch's own `torch.optim.LBFGS` does the work, `chunk` iterations per call (its curvature history carries
over between calls), with the test-grid error recorded after each chunk for the curve only (nothing is chosen
by it). A chunk whose loss or weights turn non-finite is undone and the phase stops there: the weights are
those of the last finite chunk, never a NaN.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from pinn.trainer import PinnData, predict, rel_l2

HISTORY_SIZE = 50   # curvature pairs kept by default (scipy's L-BFGS-B keeps 10, DeepXDE passes 100 to PyTorch's)


@dataclass
class FinishResult:
    loss_start: float
    rel_l2_start: float | None
    loss: float = math.nan
    rel_l2: float | None = None
    iters: int = 0
    evals: int = 0
    wall_time_s: float = 0.0
    stopped: str = "iterations"      # iterations | stalled (L-BFGS made no step) | non-finite
    curve: list = field(default_factory=list)   # (iteration, loss, rel_l2) after each chunk


def _error(model, data: PinnData) -> float | None:
    pred = predict(model, data)
    return rel_l2(pred, data.reference) if np.isfinite(pred).all() else None


def lbfgs_finish(model, problem, data: PinnData, losses, boundary_weight: float, iters: int, chunk: int = 100,
                 progress: bool = False, desc: str = "lbfgs", history: int = HISTORY_SIZE,
                 trace: list | None = None) -> FinishResult:
    """Run `iters` L-BFGS iterations (in chunks of `chunk`) on residual + boundary_weight * boundary loss, with
    the loss `losses` (pinn.trainer.loss_function; compiled, the closure's loss is one graph, forward and
    backward) and `history` curvature pairs (the convention pinn.conventions.lbfgs_history). Changes `model` in
    place. `trace`: a list that receives the loss of every function evaluation L-BFGS makes (line-search trials
    included)."""
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    x_all = torch.cat([data.domain, data.boundary]).to(device=device, dtype=dtype)
    g = data.boundary_values.to(device=device, dtype=dtype)
    n_dom = data.domain.shape[0]
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=chunk, history_size=history,
                            tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
    evals, last = [0], [math.nan]

    def objective():
        loss_r, loss_b, _ = losses(model, problem, x_all, n_dom, g, data.condition_rows)
        return loss_r + boundary_weight * loss_b

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = objective()
        loss.backward()
        evals[0], last[0] = evals[0] + 1, loss.item()
        if trace is not None:
            trace.append(last[0])
        return loss

    res = FinishResult(loss_start=objective().item(), rel_l2_start=_error(model, data))
    res.loss = res.loss_start
    t0 = time.perf_counter()
    bar = tqdm(total=iters, desc=desc, disable=not progress, mininterval=2.0, leave=False)
    while res.iters < iters:
        saved = copy.deepcopy(model.state_dict())
        n = min(chunk, iters - res.iters)
        opt.param_groups[0]["max_iter"], opt.param_groups[0]["max_eval"] = n, 25 * n   # iterations bind
        try:
            opt.step(closure)
            loss = objective().item()   # at the weights L-BFGS accepted (not its last line-search trial)
        except RuntimeError:   # PyTorch's L-BFGS raises on some non-finite values (a NaN made a float)
            if math.isfinite(last[0]):
                raise
            loss = math.nan
        if not (math.isfinite(loss) and all(torch.isfinite(p).all() for p in model.parameters())):
            model.load_state_dict(saved)
            res.stopped = "non-finite"
            break
        done = opt.state[opt.param_groups[0]["params"][0]]["n_iter"]   # PyTorch's own iteration count
        stalled = done - res.iters < n or loss == res.loss   # it stopped early: no step left to take
        res.iters, res.loss, res.evals = done, loss, evals[0]
        res.curve.append((res.iters, res.loss, _error(model, data)))
        bar.update(n)
        bar.set_postfix(loss=f"{res.loss:.3e}", refresh=False)
        if stalled:   # with zero tolerances PyTorch's L-BFGS stops only on a zero step: further chunks repeat it
            res.stopped = "stalled"
            break
    bar.close()
    res.wall_time_s = time.perf_counter() - t0
    res.rel_l2 = _error(model, data)
    return res
