"""StableGrad as a torch.optim.Optimizer: checkpoints, param groups, closure, schedulers, copies, AMP,
convergence, and the gradient-scale recorder (modelled on PyTorch's and timm's optimizer tests)."""
from __future__ import annotations

import copy
import itertools
import warnings

import pytest
import torch
from conftest import tiny_batch, tiny_mlp
from torch import nn

from stablegrad import GradScaleRecorder, StableGrad, rescale_

VARIANTS = [{"reference": r, "statistic": s, "bias": b, "foreach": f}
            for r, s, b, f in itertools.product(("last", "output"), ("std", "rms"), ("shared", "own", "none"),
                                                (True, False))]
IDS = ["-".join(str(v) for v in d.values()) for d in VARIANTS]


def make_model(seed: int = 0) -> nn.Module:
    return tiny_mlp(seed, d_out=1)


def batch(seed: int):
    return tiny_batch(seed, d_out=1)


def train(model, opt, steps, start=0):
    for i in range(start, start + steps):
        x, y = batch(i)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


def assert_equal(a, b):
    assert all(torch.equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize("opts", VARIANTS, ids=IDS)
def test_state_dict_round_trip_continues_bit_for_bit(opts):
    model = make_model()
    opt = StableGrad(torch.optim.AdamW(model.parameters(), lr=1e-2), model, **opts)
    train(model, opt, 3)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    assert saved_opt["stablegrad"]["options"]["bias"] == opts["bias"]
    train(model, opt, 3, start=3)

    fresh = make_model(seed=1)
    fresh.load_state_dict(saved_model)
    base = torch.optim.AdamW(fresh.parameters(), lr=1.0)
    opt2 = StableGrad(base, fresh, **opts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt2.load_state_dict(saved_opt)
    assert opt2.param_groups is base.param_groups and opt2.param_groups[0]["lr"] == 1e-2
    assert opt2.state is base.state
    assert opt2.param_groups[0]["params"][0] is next(fresh.parameters())
    train(fresh, opt2, 3, start=3)
    assert_equal(snapshot(model), snapshot(fresh))


def test_load_state_dict_warns_on_different_options():
    model = make_model()
    opt = StableGrad(torch.optim.SGD(model.parameters(), lr=0.1), model, statistic="std")
    other = StableGrad(torch.optim.SGD(model.parameters(), lr=0.1), model)  # default statistic: rms
    with pytest.warns(UserWarning, match="options differ"):
        other.load_state_dict(opt.state_dict())


def test_param_groups_with_different_lr_and_add_param_group():
    a, b = make_model(), make_model()
    groups = lambda m: [{"params": list(m[0].parameters()), "lr": 0.1},
                        {"params": list(m[2].parameters()) + list(m[4].parameters()), "lr": 0.01}]
    opt_a = torch.optim.SGD(groups(a), lr=1.0)
    opt_b = StableGrad(torch.optim.SGD(groups(b), lr=1.0), b)
    for i in range(2):
        for m in (a, b):
            x, y = batch(i)
            nn.functional.mse_loss(m(x), y).backward()
        rescale_(a)
        opt_a.step()
        opt_b.step()
        opt_a.zero_grad()
        opt_b.zero_grad()
    assert_equal(snapshot(a), snapshot(b))

    # a layer held by no param group is not rescaled until it is added
    c = make_model()
    base = torch.optim.SGD(list(c[0].parameters()) + list(c[4].parameters()), lr=0.1)
    opt = StableGrad(base, c)
    x, y = batch(0)
    nn.functional.mse_loss(c(x), y).backward()
    assert set(opt.rescale_grads_()) == {"0", "4"}
    opt.add_param_group({"params": list(c[2].parameters()), "lr": 0.5})
    assert len(opt.param_groups) == 2 and opt.param_groups is base.param_groups
    assert set(opt.rescale_grads_()) == {"0", "2", "4"}
    with pytest.raises(ValueError, match="not a parameter of the model"):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))]})


@pytest.mark.parametrize("base_cls", [torch.optim.SGD, torch.optim.Adam])
@pytest.mark.parametrize("reference", ["last", "output"])
def test_closure_runs_with_grad_and_returns_loss(base_cls, reference):
    model = make_model()
    opt = StableGrad(base_cls(model.parameters(), lr=0.1), model, reference=reference)
    x, y = batch(0)
    calls = []

    def closure():
        calls.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    before = snapshot(model)
    with torch.no_grad():  # as some trainers call it
        loss = opt.step(closure)
    assert calls and all(calls)
    assert torch.is_tensor(loss) and torch.isfinite(loss)
    torch.testing.assert_close(loss, nn.functional.mse_loss(make_model()(x), y))  # loss before the step
    assert not all(torch.equal(p, q) for p, q in zip(before, snapshot(model)))


def test_lr_scheduler_drives_base_lr():
    a, b = make_model(), make_model()
    base = torch.optim.SGD(b.parameters(), lr=0.2)
    opt_b = StableGrad(base, b)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        sched_b = torch.optim.lr_scheduler.StepLR(opt_b, step_size=1, gamma=0.5)
        sched_a = torch.optim.lr_scheduler.StepLR(opt_a, step_size=1, gamma=0.5)
        for i in range(3):
            for m in (a, b):
                x, y = batch(i)
                nn.functional.mse_loss(m(x), y).backward()
            rescale_(a)
            opt_a.step()
            opt_b.step()
            opt_a.zero_grad()
            opt_b.zero_grad()
            sched_a.step()
            sched_b.step()
    assert base.param_groups[0]["lr"] == pytest.approx(0.2 / 8)
    assert_equal(snapshot(a), snapshot(b))


@pytest.mark.parametrize("reference", ["last", "output"])
def test_deepcopy_is_independent_and_works(reference):
    model = make_model()
    opt = StableGrad(torch.optim.AdamW(model.parameters(), lr=1e-2), model, reference=reference)
    train(model, opt, 2)
    clone = copy.deepcopy(opt)
    assert clone.model is not model and clone.base_optimizer is not opt.base_optimizer
    assert clone.param_groups is clone.base_optimizer.param_groups
    assert clone.param_groups[0]["params"][0] is next(clone.model.parameters())
    before = snapshot(model)
    train(clone.model, clone, 2, start=2)  # the copy trains its own model (its output hook included)
    assert_equal(before, snapshot(model))
    train(model, opt, 2, start=2)  # and both end equal: same state, same data
    assert_equal(snapshot(model), snapshot(clone.model))


def test_repr_and_isinstance():
    model = make_model()
    opt = StableGrad(torch.optim.AdamW(model.parameters(), lr=1e-3), model, statistic="rms")
    text = repr(opt)
    assert isinstance(opt, torch.optim.Optimizer)
    assert text.startswith("StableGrad(") and "statistic='rms'" in text and "AdamW" in text and "lr: 0.001" in text


def test_zero_grad_sets_to_none():
    model = make_model()
    opt = StableGrad(torch.optim.SGD(model.parameters(), lr=0.1), model)
    train(model, opt, 1)
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# -- convergence ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("base", ["sgd", "adamw"])
@pytest.mark.parametrize("statistic", ["std", "rms"])
def test_converges_on_least_squares(base, statistic):
    """A two-layer linear model fitted to a linear target: the loss goes to ~0."""
    torch.manual_seed(0)
    x = torch.randn(128, 6)
    y = x @ torch.randn(6, 2)
    model = nn.Sequential(nn.Linear(6, 16), nn.Linear(16, 2))
    inner = (torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if base == "sgd"
             else torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0))
    opt = StableGrad(inner, model, statistic=statistic)
    first = None
    for _ in range(600):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-4 * first


class Rosenbrock(nn.Module):
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, x and y held by two "layers", from the classic (-1.2, 1)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Module(), nn.Module()
        self.a.weight = nn.Parameter(torch.tensor([-1.2]))
        self.b.weight = nn.Parameter(torch.tensor([1.0]))

    def forward(self):
        x, y = self.a.weight[0], self.b.weight[0]
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2


@pytest.mark.parametrize("base", ["sgd", "adamw"])
def test_converges_on_rosenbrock(base):
    """rms (the std of one number is 0, which leaves it untouched): |g_x| is set to |g_y| at every step."""
    model = Rosenbrock()
    inner = (torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9) if base == "sgd"
             else torch.optim.AdamW(model.parameters(), lr=3e-2, weight_decay=0.0))
    opt = StableGrad(inner, model, statistic="rms")
    for _ in range(5000):
        opt.zero_grad()
        loss = model()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3
    xy = torch.cat([model.a.weight, model.b.weight]).detach()
    torch.testing.assert_close(xy, torch.ones(2), atol=0.05, rtol=0)


# -- AMP ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reference", [
    "last",
    "output",
])
def test_grad_scaler_order_and_skipped_step(reference):
    """unscale_ -> StableGrad (inside step) -> step: the same update as without scaling; an inf is skipped."""
    a, b = make_model(), make_model()
    ref = StableGrad(torch.optim.SGD(a.parameters(), lr=0.1), a, reference=reference)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    opt = StableGrad(torch.optim.SGD(b.parameters(), lr=0.1), b, reference=reference, grad_scaler=scaler)
    x, y = batch(0)
    nn.functional.mse_loss(a(x), y).backward()
    ref.step()
    scaler.scale(nn.functional.mse_loss(b(x), y)).backward()
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
    assert_equal(snapshot(a), snapshot(b))  # powers of two: unscaling is exact
    assert scaler.get_scale() == 2.0**12

    opt.zero_grad()
    before = snapshot(b)
    scaler.scale(nn.functional.mse_loss(b(x), y)).backward()
    b[0].weight.grad[0, 0] = float("inf")  # an overflow in one layer
    scaler.unscale_(opt)
    assert torch.isfinite(b[2].weight.grad).all()
    scaler.step(opt)
    scaler.update()
    assert_equal(before, snapshot(b))
    assert scaler.get_scale() == 2.0**11


# -- recorder ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reference", ["last", "output"])
def test_recorder_before_after(reference):
    model = make_model()
    rec = GradScaleRecorder(every=2)
    opt = StableGrad(torch.optim.SGD(model.parameters(), lr=0.01), model, reference=reference, recorder=rec)
    sigmas = []
    for i in range(5):
        x, y = batch(i)
        opt.zero_grad()
        out = model(x)
        out.retain_grad()
        nn.functional.mse_loss(out, y).backward()
        rms = lambda t: t.square().mean().sqrt().item()  # the default statistic
        raw = [rms(m.weight.grad) for m in model[::2]]
        sigma = rms(out.grad) if reference == "output" else raw[-1]
        sigmas.append((raw, sigma))
        opt.step()
    d = rec.to_dict()
    assert d["layers"] == ["0", "2", "4"] and d["steps"] == [0, 2, 4]
    for row_before, row_after, step in zip(d["before"], d["after"], d["steps"]):
        raw, sigma = sigmas[step]
        assert row_before == pytest.approx(raw, rel=1e-5)
        assert row_after == pytest.approx([sigma] * 3, rel=1e-5)  # equalized to the reference

    rec2 = GradScaleRecorder()
    rec2.load_state_dict(copy.deepcopy(rec.state_dict()))
    assert rec2.to_dict() == d and rec2.every == 2
    opt.recorder = rec2
    train(model, opt, 1, start=5)  # call 5: not recorded; the counter continued
    assert rec2.to_dict()["steps"] == [0, 2, 4]
    train(model, opt, 1, start=6)
    assert rec2.to_dict()["steps"] == [0, 2, 4, 6]


def test_recorder_capture_empty_and_bad_input():
    rec = GradScaleRecorder(every=10)
    assert rec.to_dict()["before"] == [] and rec.to_dict()["steps"] == []
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for i in range(3):  # every > steps: only step 0
        x, y = batch(i)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        rec.capture(model)
        opt.step()
    d = rec.to_dict()
    assert d["steps"] == [0] and d["before"] == d["after"] and len(d["before"][0]) == 3
    with pytest.raises(ValueError, match="every"):
        GradScaleRecorder(every=0)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.a, self.b = nn.Linear(3, 8), nn.Linear(8, 1), nn.Linear(8, 1)

    def forward(self, x):
        h = torch.tanh(self.body(x))
        return self.a(h), self.b(h)


def test_output_reference_pools_only_outputs_that_receive_a_gradient():
    torch.manual_seed(0)
    model = TwoHeads()
    opt = StableGrad(torch.optim.SGD(model.parameters(), lr=0.1), model, reference="output")
    opt._output_ref._on_grad(None)                      # a hook fired without a gradient: ignored
    with pytest.raises(RuntimeError, match="saw no gradient"):
        opt._output_ref.pop("rms")
    x, y = batch(0)
    ya, _ = model(x)                                     # head b is unused: no gradient reaches it
    ya.retain_grad()
    nn.functional.mse_loss(ya, y).backward()
    sigma = opt._output_ref.pop("rms")
    torch.testing.assert_close(sigma, ya.grad.square().mean().sqrt())


@pytest.mark.parametrize("rec_stat", ["rms", "std"])
@pytest.mark.parametrize("sg_stat", ["rms", "std"])
def test_recorder_logs_its_own_statistic(rec_stat, sg_stat):
    """Whatever StableGrad rescales by, the recorder logs its own statistic: "before" equals what
    ``capture`` (the AdamW baseline's path) records for the same gradients, and "after" is that statistic
    of the rescaled gradients."""
    a, b = make_model(), make_model()
    rec_plain, rec_sg = GradScaleRecorder(statistic=rec_stat), GradScaleRecorder(statistic=rec_stat)
    opt = StableGrad(torch.optim.SGD(b.parameters(), lr=0.0), b, statistic=sg_stat, recorder=rec_sg)
    x, y = batch(0)
    for m in (a, b):
        nn.functional.mse_loss(m(x), y).backward()
    rec_plain.capture(a)
    opt.step()
    plain, sg = rec_plain.to_dict(), rec_sg.to_dict()
    assert plain["statistic"] == sg["statistic"] == rec_stat and plain["layers"] == sg["layers"]
    assert plain["before"] == sg["before"]
    stat = (lambda t: t.std(unbiased=False)) if rec_stat == "std" else (lambda t: t.square().mean().sqrt())
    assert sg["after"][0] == pytest.approx([stat(m.weight.grad).item() for m in b[::2]], rel=1e-5)


def test_recorder_default_and_bad_statistic():
    assert GradScaleRecorder().statistic == "rms"  # the library default
    with pytest.raises(ValueError, match="statistic='var'"):
        GradScaleRecorder(statistic="var")
    rec = GradScaleRecorder()
    with pytest.raises(ValueError, match="statistic"):
        rec.load_state_dict({**rec.state_dict(), "statistic": "variance"})


# -- issue 22, defects 6, 7 and 8 -------------------------------------------------------------------------------
def _mse_backward(model, seed=0):
    x, y = tiny_batch(seed)
    nn.functional.mse_loss(model(x), y).backward()


def test_a_layer_unfrozen_after_construction_is_rescaled():
    """Gradual unfreezing: layer 0 frozen when the optimizer is built, unfrozen later. AdamW updates it, so
    StableGrad must rescale it as it does a layer that was never frozen."""
    model, twin = tiny_mlp(), tiny_mlp()
    model[0].requires_grad_(False)
    opt = StableGrad(torch.optim.AdamW(model.parameters(), lr=1e-3), model)
    ref = StableGrad(torch.optim.AdamW(twin.parameters(), lr=1e-3), twin)
    _mse_backward(model)
    assert set(opt.rescale_grads_()) == {"2", "4"}
    opt.zero_grad()
    model[0].requires_grad_(True)
    _mse_backward(model)
    _mse_backward(twin)
    assert set(opt.rescale_grads_()) == {"0", "2", "4"}
    ref.rescale_grads_()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0)


def test_agc_clips_a_layer_unfrozen_after_construction():
    from stablegrad import AdaptiveGradClip

    model = tiny_mlp()
    model[0].requires_grad_(False)
    opt = AdaptiveGradClip(torch.optim.SGD(model.parameters(), lr=0.1), model, clipping=1e-6)
    model[0].requires_grad_(True)
    _mse_backward(model)
    raw = model[0].weight.grad.clone()
    opt.transform_grads_()
    assert model[0].weight.grad.norm() < 1e-3 * raw.norm()


def test_lbfgs_is_refused_with_a_clear_error():
    """Each closure evaluation rescaled differently breaks L-BFGS's curvature pairs: wrapped, it ended at losses
    up to 1e5 where plain L-BFGS reaches 1e-7 (one set of factors per step does not fix it: the pairs span
    steps). StableGrad refuses it instead of returning a wrong result."""
    model = tiny_mlp()
    with pytest.raises(TypeError, match=r"StableGrad cannot wrap torch\.optim\.LBFGS.*curvature pairs"):
        StableGrad(torch.optim.LBFGS(model.parameters()), model)


def test_load_state_dict_from_another_model_is_refused_at_load():
    """Same number of tensors, other shapes: loaded silently before, then step() failed with a shape error."""
    a = tiny_mlp()
    b = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 1))
    opt_a = StableGrad(torch.optim.AdamW(a.parameters(), lr=1e-3), a)
    _mse_backward(a)
    opt_a.step()
    opt_b = StableGrad(torch.optim.AdamW(b.parameters(), lr=1e-3), b)
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[0\].*\(12, 3\).*\(5, 3\)"):
        opt_b.load_state_dict(opt_a.state_dict())
    c = tiny_mlp(1)
    StableGrad(torch.optim.AdamW(c.parameters(), lr=1e-3), c).load_state_dict(opt_a.state_dict())  # same shapes
