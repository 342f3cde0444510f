"""The differential test against DeepXDE, step for step: our trainer, given DeepXDE's conventions (its points,
its initial weights, raw inputs, its loss with the residual on every training point, Adam with its settings,
float64, the eager pass), reproduces DeepXDE's training loss at each of the first 200 Adam steps, and then
every function evaluation of the first 20 iterations of its L-BFGS phase, on Burgers, Poisson and Helmholtz at
depth 8. Any convention left different (the input map, the boundary rows of the residual, a loss reduction,
the optimizer's settings) moves the losses far beyond the tolerance (test_a_convention_left_different_is_seen)."""
from __future__ import annotations

import pytest
import torch

dde = pytest.importorskip("deepxde")

from pinn.deepxde_twin import deepxde_data, deepxde_net, our_state_dict, pinn_data, record_losses
from pinn.finish import lbfgs_finish
from pinn.problems import PROBLEMS
from pinn.trainer import loss_function, train

DEPTH, WIDTH, ADAM_STEPS, LBFGS_ITERS = 8, 16, 200, 20
POINTS = {"burgers": (160, 40), "poisson": (120, 32), "helmholtz": (120, 32)}   # (domain, boundary)
TOL = 1e-6


@pytest.fixture
def float64_deepxde():
    """DeepXDE in float64 (it sets torch's default dtype); restored afterwards for the other tests."""
    dtype = torch.get_default_dtype()
    dde.config.set_default_float("float64")
    yield
    dde.config.set_default_float("float32")
    torch.set_default_dtype(dtype)


def deepxde_run(problem: str, seed: int = 0):
    """DeepXDE out of the box (Adam lr 1e-3 for ADAM_STEPS, then L-BFGS for LBFGS_ITERS), recording every loss;
    returns (data, initial weights in our names, Adam losses, L-BFGS evaluations)."""
    dde.config.set_random_seed(seed)
    net = deepxde_net(WIDTH, DEPTH)
    data = deepxde_data(problem, *POINTS[problem])
    init = our_state_dict(net)
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    adam = []
    record_losses(model, adam)
    model.train(iterations=ADAM_STEPS, display_every=10 * ADAM_STEPS, verbose=0)
    # DeepXDE's L-BFGS runs `iter_per_step` iterations per optimizer call, set once at import (1000);
    # set_LBFGS_options(maxiter=...) does not change it, so set the call to the iterations compared.
    dde.optimizers.set_LBFGS_options(maxiter=LBFGS_ITERS)
    dde.optimizers.config.LBFGS_options.update(iter_per_step=LBFGS_ITERS, fun_per_step=25 * LBFGS_ITERS)
    model.compile("L-BFGS")
    lbfgs = []
    record_losses(model, lbfgs)
    model.train(verbose=0)
    assert model.opt.state_dict()["state"][0]["n_iter"] == LBFGS_ITERS
    return data, init, adam, lbfgs


def our_run(pinn_cfg, problem: str, data, init: dict, input_map: str = "none"):
    cfg = pinn_cfg(dtype="float64", compile=False, gemm="aten", steps=ADAM_STEPS, log_every=1, lr=1e-3,
                   schedule="constant", eps=1e-8, betas=[0.9, 0.999], weight_decay=0.0, boundary_weight=1.0,
                   width=WIDTH, optimizers={"adamw": {}}, diverge_factor=1e30,
                   conventions={"input_map": input_map, "sampler": "hammersley", "residual_points": "all",
                                "lbfgs_history": 100})
    res = train(cfg, problem, DEPTH, "adamw", pinn_data(data, problem), init_state=init, progress=False)
    lbfgs = []
    lbfgs_finish(res.model, PROBLEMS[problem], pinn_data(data, problem), loss_function(False, "aten"), 1.0,
                 LBFGS_ITERS, chunk=LBFGS_ITERS, history=cfg.conventions.lbfgs_history, trace=lbfgs)
    return [row[1] for row in res.history], lbfgs


def rel_diff(ours, theirs) -> float:
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    a, b = torch.tensor(ours, dtype=torch.float64), torch.tensor(theirs, dtype=torch.float64)
    return ((a - b).abs() / b.abs()).max().item()


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["burgers", "poisson", "helmholtz"])
def test_trainer_reproduces_deepxde_step_for_step(problem, pinn_cfg, float64_deepxde, one_thread):
    data, init, adam, lbfgs = deepxde_run(problem)
    ours_adam, ours_lbfgs = our_run(pinn_cfg, problem, data, init)
    assert len(adam) == ADAM_STEPS and adam[-1] < 0.9 * adam[0]       # it trains: the comparison is not idle
    assert rel_diff(ours_adam, adam) <= TOL
    assert rel_diff(ours_lbfgs, lbfgs) <= TOL


@pytest.mark.slow
def test_a_convention_left_different_is_seen(pinn_cfg, float64_deepxde, one_thread):
    """Our input map (Poisson's [0, 1]^2 -> [-1, 1]^2) in place of DeepXDE's raw inputs: the first loss is
    another network's, and the losses differ far beyond the tolerance."""
    data, init, adam, _ = deepxde_run("poisson")
    ours_adam, _ = our_run(pinn_cfg, "poisson", data, init, input_map="box")
    assert rel_diff(ours_adam, adam) > 1e3 * TOL
