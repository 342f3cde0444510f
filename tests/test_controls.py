"""One record per gradient control (pipeline/controls.py): every table is derived from the records, every
control of each wing builds from the committed paper settings, steps, follows an LR scheduler and resumes bit
for bit through a checkpoint file, and a bad option is named."""
import io

import pytest
import torch
from conftest import ROOT, committed, tiny_batch, tiny_mlp
from torch import nn

from cnn.config import validate as validate_cnn
from cnn.trainer import make_optimizer as make_cnn_optimizer
from paper_figures import style
from pinn.config import load as load_pinn
from pinn.config import validate as validate_pinn
from pipeline import controls, names
from pipeline.validate import BadInput

PAPER = load_pinn(ROOT / "params_paper.yaml")
PAPER_CNN = validate_cnn(committed("params_paper.yaml")["cnn"])


def test_every_table_is_derived_from_the_records():
    pinn = [c.name for c in controls.RECORDS if "pinn" in c.wings]
    cnn = [c.name for c in controls.RECORDS if "cnn" in c.wings]
    assert list(names.CONTROLS) == pinn and list(names.CNN_CONTROLS) == cnn
    assert {"muon", "soap"} <= set(pinn) & set(cnn) and "lra" not in cnn
    assert set(names.CNN_VARIANTS) == {f"{bn}-{c}" for bn in ("bn", "nobn") for c in cnn}
    for c in controls.RECORDS:
        assert names.LABELS[c.name] == style.label(c.name) == c.label
        assert style.color(c.name) == c.color
        if "cnn" in c.wings:
            assert style.color(f"nobn-{c.name}") == c.color
        assert controls.OPTIONS[c.name] is c.options
    colours = {style.color(c.name) for c in controls.RECORDS} | {style.BN_REFERENCE_COLOR}
    assert len(colours) == len(controls.RECORDS) + 1
    with pytest.raises(ValueError, match="unknown gradient control 'sgd'.*muon"):
        controls.record("sgd")


def test_the_paper_settings_list_every_control_of_each_wing():
    assert set(PAPER.optimizers) == set(names.CONTROLS)
    assert {names.parse_variant(v)[1] for v in PAPER_CNN.variants} == set(names.CNN_CONTROLS)


def _train(model, opt, sched, steps, start=0):
    for i in range(start, start + steps):
        x, y = tiny_batch(i)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()


def _pinn_optimizer(name, model):
    _, base, options = PAPER.control(name)
    opt = controls.make_optimizer(name, model, base, options)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 ** (s // 5))


@pytest.mark.parametrize("name", names.CONTROLS)
def test_every_control_resumes_bit_identically_through_a_checkpoint_file(name):
    """8 steps straight == 4 steps, torch.save / torch.load(weights_only=True) of model, optimizer and
    scheduler (as pipeline/runs.py checkpoints), 4 more steps; the schedule reaches every param group."""
    straight = tiny_mlp(0)
    opt, sched = _pinn_optimizer(name, straight)
    _train(straight, opt, sched, 8)
    assert all(g["lr"] == pytest.approx(0.5 * g["initial_lr"]) for g in opt.param_groups)

    first = tiny_mlp(0)
    opt1, sched1 = _pinn_optimizer(name, first)
    _train(first, opt1, sched1, 4)
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt1.state_dict(), "sched": sched1.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    resumed = tiny_mlp(1)
    resumed.load_state_dict(state["model"])
    opt2, sched2 = _pinn_optimizer(name, resumed)
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    _train(resumed, opt2, sched2, 4, start=4)
    assert all(torch.equal(p, q) for p, q in zip(straight.parameters(), resumed.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(straight.parameters(), tiny_mlp(0).parameters()))


@pytest.mark.parametrize("name", names.CNN_CONTROLS)
def test_every_cnn_control_steps_a_convolutional_network(name):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 4))
    opt = make_cnn_optimizer(model, f"nobn-{name}", PAPER_CNN)
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(2):   # SOAP's first step only sets its preconditioner up
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert all(not torch.equal(p, q) for p, q in zip(before, model.parameters()))


@pytest.mark.parametrize("name, options, key", [
    ("muon", {"momentum": 1.0}, "pinn.optimizers.muon.momentum"),
    ("muon", {}, "pinn.optimizers.muon.momentum"),
    ("soap", {"precondition_frequency": 0}, "pinn.optimizers.soap.precondition_frequency"),
    ("soap", {"precondition_frequency": 10, "beta": 0.9}, "pinn.optimizers.soap.beta"),
])
def test_a_bad_option_is_named(name, options, key):
    section = {**committed()["pinn"], "optimizers": {"adamw": {}, name: options}}
    with pytest.raises(BadInput, match=key.replace(".", r"\.")):
        validate_pinn(section)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adamw_is_the_fused_kernel_and_updates_as_the_loop(dtype):
    # Every AdamW-based control takes torch's fused AdamW on CPU (one kernel per step): the same update as
    # the for-loop implementation, to rounding, over a few steps with weight decay.
    torch.manual_seed(0)
    base = controls.BaseSettings(lr=1e-2, weight_decay=0.1)
    a, b = tiny_mlp().to(dtype), tiny_mlp().to(dtype)
    b.load_state_dict(a.state_dict())
    fused = controls.make_optimizer("adamw", a, base)
    loop = torch.optim.AdamW(b.parameters(), **base.kwargs(), foreach=False)
    assert fused.defaults["fused"] is True
    x = torch.randn(16, next(a.parameters()).shape[1], dtype=dtype)
    for _ in range(5):
        for model, opt in ((a, fused), (b, loop)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-7)
    assert not controls.fusable([torch.zeros(2, dtype=torch.int64)])
