"""The gradient-scale baselines: each does what its paper says on a small case, and each (StableGrad too)
is a well-behaved ``torch.optim.Optimizer``: checkpoints resume bit for bit, closures, DDP."""
from __future__ import annotations

import copy
import itertools
import math
import sys
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import tiny_batch, tiny_mlp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from stablegrad import AdaptiveGradClip, GlobalNormClip, GradientTransform, StableGrad, lamb, muon, soap


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
    "muon": lambda m: muon(m, lr=1e-2, weight_decay=0.01),
    "soap": lambda m: soap(m.parameters(), lr=1e-2, weight_decay=0.01, precondition_frequency=2),  # refreshes
}                                                                  # cross the interruptions of the tests below


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


# -- Muon (Jordan et al. 2024): hidden matrices orthogonalised, AdamW on the rest --------------------------
def _set_grads(model, seed: int) -> None:
    """Random gradients; each matrix (a conv weight as out x in*kh*kw) with singular values 0.01..1: far from
    orthogonal (condition number 100)."""
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        if p.dim() == 1:
            p.grad = torch.randn(p.shape, generator=gen)
            continue
        rows, cols = p.flatten(1).shape
        k = min(rows, cols)
        u, v = (torch.linalg.qr(torch.randn(n, k, generator=gen))[0] for n in (rows, cols))
        p.grad = (u * torch.logspace(-2, 0, k) @ v.T).view_as(p).contiguous()


def _muon_case():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 16), nn.Tanh(),
                         nn.Linear(16, 2))


def test_muon_orthogonalises_each_hidden_matrix_and_gives_the_rest_adamw_updates_exactly():
    """From zero state the momentum is a multiple of the gradient G, so the hidden matrix moves by
    -lr * 0.2 sqrt(max(rows, cols)) * NS(G), NS(G) ~ U V^T (G = U S V^T): singular values near-equal, within
    Jordan's documented 0.5..1.5 band for 5 Newton-Schulz steps; every other tensor (the first and last
    layers, all biases) takes torch's AdamW update bit for bit, over several steps."""
    model, lr = _muon_case(), 1e-2
    ref = copy.deepcopy(model)
    opt = muon(model, lr=lr, weight_decay=0.01)
    adamw = torch.optim.AdamW(ref.parameters(), lr=lr, weight_decay=0.01)
    hidden = {id(model[2].weight), id(model[4].weight)}
    assert [len(g["params"]) for g in opt.param_groups] == [2, 6]
    for step in range(3):
        before = [p.detach().clone() for p in model.parameters()]
        _set_grads(model, step)
        _set_grads(ref, step)
        grads = [p.grad.clone() for p in model.parameters()]
        opt.step()
        adamw.step()
        for p, q, w, g in zip(model.parameters(), ref.parameters(), before, grads):
            if id(p) not in hidden:
                assert torch.equal(p, q)
            elif step == 0:
                delta = (w * (1 - lr * 0.01) - p.detach()) / (lr * 0.2 * max(p.shape) ** 0.5)
                sv = torch.linalg.svdvals(delta)
                assert sv.min() > 0.5 and sv.max() < 1.5, sv
                raw = torch.linalg.svdvals(g)
                assert raw.max() / raw.min() > 50            # the gradient itself is far from orthogonal
                u, _, vh = torch.linalg.svd(g, full_matrices=False)
                cos = (delta * (u @ vh)).sum() / (delta.norm() * (u @ vh).norm())
                assert cos > 0.98                              # and the update is its polar factor U V^T


def test_muon_flattens_hidden_convolutions_and_keeps_the_stem_and_classifier_on_adamw():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(16, 10))
    opt = muon(model, lr=1e-2)
    assert [p is model[2].weight for p in opt.param_groups[0]["params"]] == [True]
    _set_grads(model, 0)
    w = model[2].weight.detach().clone()
    opt.step()
    sv = torch.linalg.svdvals((w - model[2].weight.detach()).flatten(1) / (1e-2 * 0.2 * 72 ** 0.5))
    assert sv.min() > 0.5 and sv.max() < 1.5, sv


# -- SOAP (Vyas et al. 2024): the eigenbases are refreshed on their schedule --------------------------------
def test_soap_refreshes_its_eigenbases_every_precondition_frequency_steps_and_not_between():
    """Call 1 sets the preconditioner up (no move); from call 2 on, the Kronecker statistics GG grow every
    step, and the eigenbases Q change exactly at calls k with (k - 1) % frequency == 0."""
    model = make_model()
    opt = soap(model.parameters(), lr=1e-2, precondition_frequency=3)
    w = model[2].weight
    start = w.detach().clone()
    bases, stats = [], []
    for k in range(1, 11):
        opt.zero_grad()
        loss_of(model, k).backward()
        opt.step()
        if k == 1:
            assert torch.equal(w, start)
        bases.append([q.clone() for q in opt.state[w]["Q"]])
        stats.append([m.clone() for m in opt.state[w]["GG"]])
    changed = [k for k, (old, new) in enumerate(itertools.pairwise(bases), start=2)
               if not all(torch.equal(a, b) for a, b in zip(old, new))]
    assert changed == [4, 7, 10]
    assert all(not torch.equal(a[0], b[0]) for a, b in itertools.pairwise(stats))   # statistics move every step
    for q in bases[-1]:
        torch.testing.assert_close(q.T @ q, torch.eye(len(q)), atol=1e-5, rtol=0)   # an orthonormal basis
    assert not torch.equal(w, start)


@pytest.mark.parametrize("name", ["muon", "soap"])
def test_an_lr_scheduler_reaches_every_group(name):
    """The scheduler holds the optimizer's own param_groups; lr 0 from step 3 on freezes every tensor."""
    model = make_model()
    opt = CONTROLS[name](model)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 if s < 3 else 0.0)
    assert sched.optimizer.param_groups is opt.param_groups
    start = snapshot(model)
    for i in range(3):
        train(model, opt, 1, start=i)
        sched.step()
    moved = snapshot(model)
    assert all(not torch.equal(p, q) for p, q in zip(start, moved))
    assert all(g["lr"] == 0.0 for g in opt.param_groups)
    train(model, opt, 2, start=3)
    assert all(torch.equal(p, q) for p, q in zip(moved, model.parameters()))


@pytest.mark.parametrize("module, build", [("timm", lambda m: lamb(m.parameters())), ("timm", muon),
                                           ("pytorch_optimizer", lambda m: soap(m.parameters()))])
def test_a_missing_baseline_package_names_the_extra(monkeypatch, module, build):
    for name in [n for n in list(sys.modules) if n == module or n.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)   # what an environment without it shows
    with pytest.raises(ModuleNotFoundError, match=r"stablegrad\[baselines\]"):
        build(make_model())


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
        if name == "soap":   # SOAP's first step only sets its preconditioner up; its second one moves
            assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
            opt.step(closure)
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
