"""The gradient-scale baselines: each does what its paper says on a small case, and each (StableGrad too)
is a well-behaved ``torch.optim.Optimizer``: checkpoints resume bit for bit, closures, DDP."""
from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import tiny_batch, tiny_mlp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from stablegrad import AdaptiveGradClip, GlobalNormClip, GradientTransform, StableGrad, lamb


def make_model(seed: int = 0) -> nn.Module:
    return tiny_mlp(seed, d_out=2)


def batch(seed: int):
    return tiny_batch(seed, d_out=2)


def loss_of(model, seed: int):
    x, y = batch(seed)
    return nn.functional.mse_loss(model(x), y)


def train(model, opt, steps, start=0):
    for i in range(start, start + steps):
        opt.zero_grad()
        loss_of(model, i).backward()
        opt.step()


def snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


CONTROLS = {
    "stablegrad": lambda m: StableGrad(torch.optim.AdamW(m.parameters(), lr=1e-2), m),
    "global_clip": lambda m: GlobalNormClip(torch.optim.AdamW(m.parameters(), lr=1e-2), m, max_norm=0.05),
    "agc": lambda m: AdaptiveGradClip(torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), m, clipping=0.01),
    "lamb": lambda m: lamb(m.parameters(), lr=1e-2),
}


# -- AGC (Brock et al. 2021) ----------------------------------------------------------------------------
def unit_norms(t: torch.Tensor) -> torch.Tensor:
    return t.norm() if t.dim() <= 1 else t.flatten(1).norm(dim=1)


def test_agc_clips_exactly_the_units_above_the_ratio():
    model = make_model()
    opt = AdaptiveGradClip(torch.optim.SGD(model.parameters(), lr=1.0), model, clipping=0.05, eps=1e-3)
    loss_of(model, 0).backward()
    with torch.no_grad():
        model[2].weight[3].zero_()  # a unit with ||W_i|| = 0: max(||W_i||, eps) = eps
        for p in model.parameters():
            p.grad.mul_(torch.linspace(0.01, 3, p.shape[0]).view(-1, *[1] * (p.dim() - 1)))  # ratios spread
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert opt.last_layer_name == "4"
    opt.transform_grads_()
    n_clipped = n_kept = 0
    for name, p in model.named_parameters():
        g0, g1 = before[name], p.grad
        if name.startswith("4."):  # the prediction layer: never clipped
            assert torch.equal(g1, g0)
            assert (unit_norms(g0) / unit_norms(weights[name]).clamp_min(1e-3) > 0.05).any()  # it would be
            continue
        ratio = unit_norms(g0) / unit_norms(weights[name]).clamp_min(1e-3)
        for i, r in enumerate(ratio.reshape(-1)):
            u0, u1 = (g0, g1) if g0.dim() <= 1 else (g0[i], g1[i])
            if r > 0.05:
                torch.testing.assert_close(u1, u0 * (0.05 / r), rtol=1e-5, atol=0)  # ratio is now 0.05
                n_clipped += 1
            else:
                assert torch.equal(u1, u0)
                n_kept += 1
    assert n_clipped > 3 and n_kept > 3  # the case is not vacuous
    opt.step()  # SGD(lr=1): the update is the clipped gradient
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), weights[name] - p.grad)


def test_agc_last_layer_by_name_and_bad_options():
    model = make_model()
    opt = AdaptiveGradClip(torch.optim.SGD(model.parameters(), lr=0.1), model, last_layer="2")
    assert opt.last_layer_name == "2"
    for bad in ({"clipping": 0}, {"eps": -1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            AdaptiveGradClip(torch.optim.SGD(model.parameters(), lr=0.1), model, **bad)


# -- global norm clipping ---------------------------------------------------------------------------------
def total_norm(model) -> float:
    return math.sqrt(sum(p.grad.double().square().sum().item() for p in model.parameters()))


def test_global_clip_sets_the_norm_to_max_norm_when_above():
    model = make_model()
    opt = GlobalNormClip(torch.optim.SGD(model.parameters(), lr=1.0), model, max_norm=0.05)
    loss_of(model, 0).backward()
    raw = [p.grad.clone() for p in model.parameters()]
    assert total_norm(model) > 0.05
    opt.transform_grads_()
    assert total_norm(model) == pytest.approx(0.05, rel=1e-4)
    scale = model[0].weight.grad[0, 0] / raw[0][0, 0]
    for p, g in zip(model.parameters(), raw):  # one common factor: directions kept
        torch.testing.assert_close(p.grad, g * scale)
    loose = GlobalNormClip(torch.optim.SGD(model.parameters(), lr=1.0), model, max_norm=10.0)
    kept = [p.grad.clone() for p in model.parameters()]
    loose.transform_grads_()
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), kept))  # below: untouched
    with pytest.raises(ValueError, match="max_norm"):
        GlobalNormClip(torch.optim.SGD(model.parameters(), lr=1.0), model, max_norm=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_global_clip_leaves_nonfinite_gradients_untouched(bad):
    """Plain clip_grad_norm_ would make every gradient NaN; here the finite ones are kept as they are."""
    model = make_model()
    opt = GlobalNormClip(torch.optim.SGD(model.parameters(), lr=1.0), model, max_norm=0.05)
    loss_of(model, 0).backward()
    model[2].weight.grad[0, 0] = bad
    before = [p.grad.clone() for p in model.parameters()]
    opt.transform_grads_()
    assert not torch.isfinite(opt.last_norm)
    for p, g in zip(model.parameters(), before):
        assert torch.equal(p.grad.isfinite(), g.isfinite())
        assert torch.equal(p.grad[g.isfinite()], g[g.isfinite()])
    # and with a GradScaler (unscale_, then step) the step is skipped whole
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    opt.zero_grad()
    scaler.scale(loss_of(model, 0)).backward()
    model[2].weight.grad[0, 0] = bad
    params = snapshot(model)
    scaler.unscale_(opt)
    scaler.step(opt)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params))


# -- LAMB (You et al. 2019) -------------------------------------------------------------------------------
def test_lamb_one_step_is_adam_update_times_trust_ratio():
    """Step 1 from zero moments: m_hat = g, v_hat = g^2, u = m_hat / (sqrt(v_hat) + eps) + wd W, and each
    tensor moves by lr * (||W|| / ||u||) * u, i.e. ||delta W|| / (lr ||u||) is the trust ratio."""
    model = make_model()
    lr, wd, eps = 0.01, 0.1, 1e-6
    opt = lamb(model.parameters(), lr=lr, weight_decay=wd, eps=eps)
    loss_of(model, 0).backward()
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    opt.step()
    for name, p in model.named_parameters():
        w, g = w0[name], grads[name]
        u = g / (g.abs() + eps) + wd * w
        trust = w.norm() / u.norm()
        torch.testing.assert_close(p.detach(), w - lr * trust * u, rtol=1e-5, atol=1e-7)
        delta = (p.detach() - w).norm()
        assert (delta / (lr * u.norm())).item() == pytest.approx(trust.item(), rel=1e-4)
        assert delta.item() == pytest.approx(lr * w.norm().item(), rel=1e-4)  # the layer moves by lr * ||W||


# -- every control: checkpoints, closures ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CONTROLS))
def test_resume_from_checkpoint_is_bit_identical(name):
    straight = make_model()
    opt = CONTROLS[name](straight)
    train(straight, opt, 6)

    first = make_model()
    opt1 = CONTROLS[name](first)
    train(first, opt1, 3)
    saved_model, saved_opt = copy.deepcopy(first.state_dict()), copy.deepcopy(opt1.state_dict())
    fresh = make_model(seed=1)
    fresh.load_state_dict(saved_model)
    opt2 = CONTROLS[name](fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt2.load_state_dict(saved_opt)
    assert opt2.state_dict().keys() == saved_opt.keys()
    train(fresh, opt2, 3, start=3)
    assert all(torch.equal(p, q) for p, q in zip(straight.parameters(), fresh.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(straight.parameters(), make_model().parameters()))


def test_checkpoint_carries_the_options():
    model = make_model()
    opt = GlobalNormClip(torch.optim.SGD(model.parameters(), lr=0.1), model, max_norm=1.0)
    assert opt.state_dict()["global_norm_clip"] == {"options": {"max_norm": 1.0, "norm_type": 2.0}}
    other = GlobalNormClip(torch.optim.SGD(model.parameters(), lr=0.1), model, max_norm=2.0)
    with pytest.warns(UserWarning, match="GlobalNormClip options differ"):
        other.load_state_dict(opt.state_dict())
    agc = AdaptiveGradClip(torch.optim.SGD(model.parameters(), lr=0.1), model)
    assert agc.state_dict()["adaptive_grad_clip"]["options"] == {"clipping": 0.01, "eps": 1e-3, "last_layer": "4"}
    assert repr(agc).startswith("AdaptiveGradClip(clipping=0.01") and "SGD" in repr(agc)


@pytest.mark.parametrize("name", list(CONTROLS))
def test_closure_runs_with_grad_and_returns_loss(name):
    model = make_model()
    opt = CONTROLS[name](model)
    calls = []

    def closure():
        calls.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = loss_of(model, 0)
        loss.backward()
        return loss

    before = snapshot(model)
    with torch.no_grad():
        loss = opt.step(closure)
    assert calls and all(calls)
    torch.testing.assert_close(loss, loss_of(make_model(), 0))
    assert not all(torch.equal(p, q) for p, q in zip(before, model.parameters()))


def test_closure_gradients_are_transformed_before_use():
    """L-BFGS and DeepXDE hand the step a closure: the clip applies to the gradients it leaves."""
    model = make_model()
    opt = GlobalNormClip(torch.optim.SGD(model.parameters(), lr=1.0), model, max_norm=0.05)

    def closure():
        opt.zero_grad()
        loss = loss_of(model, 0)
        loss.backward()
        return loss

    before = snapshot(model)
    opt.step(closure)
    moved = math.sqrt(sum((p.detach() - q).square().sum().item() for p, q in zip(model.parameters(), before)))
    assert moved == pytest.approx(0.05, rel=1e-4)
    lbfgs = GlobalNormClip(torch.optim.LBFGS(model.parameters(), lr=0.1, max_iter=3), model, max_norm=0.05)
    assert torch.isfinite(lbfgs.step(closure))


def test_gradient_transform_shares_the_base_containers():
    model = make_model()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    opt = GlobalNormClip(base, model, max_norm=1.0)
    assert opt.param_groups is base.param_groups and opt.state is base.state and opt.defaults is base.defaults
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    train(model, opt, 1)
    sched.step()
    assert base.param_groups[0]["lr"] == pytest.approx(0.05)
    opt.load_state_dict(opt.state_dict())
    assert opt.param_groups is base.param_groups
    with pytest.raises(NotImplementedError):
        GradientTransform(torch.optim.SGD(model.parameters(), lr=0.1), model).step()
    with pytest.raises(ValueError, match="not a parameter of the model"):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))]})


# -- DDP: 2 processes (gloo, CPU) equal a single process on the same global batch ------------------------
DDP_CONTROLS = {
    "global_clip": lambda m: GlobalNormClip(torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9), m, max_norm=0.05),
    "agc": lambda m: AdaptiveGradClip(torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9), m, clipping=0.01),
}


def ddp_run(model, opt, rank: int = 0, world: int = 1):
    for step in range(3):
        x, y = batch(100 + step)
        x, y = x.chunk(world)[rank], y.chunk(world)[rank]  # mean loss over the local batch (DDP convention)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def _worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results = {}
        for name, factory in DDP_CONTROLS.items():
            model = DDP(make_model())
            ddp_run(model, factory(model), rank, world)
            params = [p.detach().clone() for p in model.module.parameters()]
            gathered = [None] * world
            dist.all_gather_object(gathered, params)
            results[name] = gathered
        if rank == 0:
            torch.save(results, out_file)
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_match_single_process(tmp_path):
    out = tmp_path / "params.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    results = torch.load(out)
    for name, factory in DDP_CONTROLS.items():
        rank0, rank1 = results[name]
        single = make_model()
        ddp_run(single, factory(single))
        for p, q, r in zip(rank0, rank1, single.parameters()):
            assert torch.equal(p, q)  # every rank applies the same update
            torch.testing.assert_close(p, r.detach(), rtol=1e-6, atol=1e-6)
