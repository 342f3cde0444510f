"""Training: the loss goes down for every gradient control, resume is bit-identical, a checkpoint from other
settings or an unreadable one is never used, divergence is recorded."""
import dataclasses

import numpy as np
import pytest
import torch

from pinn import trainer
from pinn.points import generate
from pinn.trainer import PinnData, predict, rel_l2, train
from pipeline import names

pytestmark = pytest.mark.usefixtures("one_thread")
CONTROLS = {"adamw": {}, "stablegrad": {"reference": "output", "statistic": "rms", "bias": "shared"},
            "clip": {"max_norm": 1.0}, "agc": {"clipping": 0.01, "eps": 1e-3}, "lamb": {},
            "lra": {"alpha": 0.9, "every": 2}, "muon": {"momentum": 0.95}, "soap": {"precondition_frequency": 10}}


def test_every_control_is_covered():
    assert set(CONTROLS) == set(names.CONTROLS)


def _data(problem="poisson", n_domain=128, n_boundary=32):
    d = generate(problem, n_domain, n_boundary, seed=0)
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)
    return PinnData(t(d["domain"]), t(d["boundary"]), t(d["boundary_values"]), t(d["test_points"]),
                    d["test_u"], d["axes"], tuple(d["condition_rows"]))


@pytest.fixture
def cfg(pinn_cfg):
    return pinn_cfg(width=16, steps=40, log_every=1, checkpoint_every=10, grad_scale_every=5, optimizers=CONTROLS,
                    init="glorot", gemm="aten", lr=1e-2)


@pytest.mark.parametrize("control", list(CONTROLS))
def test_few_steps_lower_the_loss(cfg, control):
    res = train(cfg, "poisson", 4, control, _data(), seed=0, progress=False)
    losses = [row[1] for row in res.history]
    assert res.steps == 40 and not res.diverged
    assert losses[-1] < 0.7 * losses[0]
    scales = res.grad_scales
    assert len(scales["layers"]) == 5 and scales["steps"][0] == 0 and len(scales["before"]) == 8
    assert scales["statistic"] == "rms"           # one statistic for every control's record


def test_loss_annealing_moves_the_boundary_weight_and_only_lra_does(cfg):
    lra = train(cfg, "burgers", 3, "lra", _data("burgers"), progress=False)
    plain = train(cfg, "burgers", 3, "adamw", _data("burgers"), progress=False)
    assert lra.boundary_weight != 1.0 and {row[3] for row in plain.history} == {1.0}
    assert len({row[3] for row in lra.history}) > 1


# soap (precondition_frequency 10) refreshes its eigenbases at steps 11, 21 and 31, across the stop at 25
@pytest.mark.parametrize("control", ["adamw", "stablegrad", "agc", "lra", "muon", "soap"])
def test_resume_equals_uninterrupted_run(tmp_path, cfg, control):
    data = _data()
    full = train(cfg, "poisson", 3, control, data, seed=1, progress=False)
    ckpt = tmp_path / "ckpt.pt"
    part = train(cfg, "poisson", 3, control, data, seed=1, checkpoint=ckpt, stop_after=25, progress=False)
    assert part.steps == 25 and not part.finished
    resumed = train(cfg, "poisson", 3, control, data, seed=1, checkpoint=ckpt, progress=False)
    assert resumed.steps == 40 and resumed.finished
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert [r[1] for r in full.history] == [r[1] for r in resumed.history]
    assert full.grad_scales == resumed.grad_scales and full.boundary_weight == resumed.boundary_weight


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))


def test_checkpoint_of_other_settings_or_code_is_ignored(tmp_path, cfg, monkeypatch):
    data = _data()
    ckpt = tmp_path / "ckpt.pt"
    train(cfg, "poisson", 3, "adamw", data, checkpoint=ckpt, progress=False)
    other = dataclasses.replace(cfg, lr=2e-3)
    assert _same_weights(train(other, "poisson", 3, "adamw", data, progress=False),
                         train(other, "poisson", 3, "adamw", data, checkpoint=ckpt, progress=False))
    key = trainer.run_key(cfg, "poisson", 3, "adamw", 0, data)
    extra = tmp_path / "edited.py"                         # a source file the run executes, edited
    extra.write_text("x = 1\n")
    monkeypatch.setattr(trainer, "SOURCES", (*trainer.SOURCES, str(extra)))
    assert trainer.run_key(cfg, "poisson", 3, "adamw", 0, data) != key


def test_a_run_key_ignores_the_other_controls_options(cfg):
    data = _data()
    key = trainer.run_key(cfg, "poisson", 3, "adamw", 0, data)
    edited = dataclasses.replace(cfg, optimizers={**cfg.optimizers, "stablegrad": {**CONTROLS["stablegrad"],
                                                                                  "statistic": "std"}})
    assert trainer.run_key(edited, "poisson", 3, "adamw", 0, data) == key
    assert trainer.run_key(edited, "poisson", 3, "stablegrad", 0, data) != \
        trainer.run_key(cfg, "poisson", 3, "stablegrad", 0, data)


@pytest.mark.parametrize("content", [b"", b"\x80\x02truncated", b"PK\x03\x04 not a zip"])
def test_unreadable_checkpoint_is_named_set_aside_and_the_run_starts_afresh(tmp_path, cfg, content, capsys):
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(content)
    res = train(cfg, "poisson", 2, "adamw", _data(), checkpoint=ckpt, progress=False)
    assert res.steps == 40 and res.finished
    assert str(ckpt) in capsys.readouterr().out
    assert (tmp_path / "ckpt.pt.unreadable").read_bytes() == content
    assert torch.load(ckpt, weights_only=True)["step"] == 40        # a fresh, valid checkpoint


class Planted:
    """Any class in a pickle: loading it means importing and running code named by the file."""


def test_checkpoint_holding_code_is_refused(tmp_path, cfg, capsys):
    """A planted pickle that would run code on load is refused by weights_only=True and set aside."""
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"key": "x", "payload": Planted()}, ckpt)
    res = train(cfg, "poisson", 2, "adamw", _data(), checkpoint=ckpt, progress=False)
    assert res.finished and (tmp_path / "ckpt.pt.unreadable").exists()
    out = capsys.readouterr().out
    assert "unreadable" in out
    assert "weights_only" not in out and "can still be loaded" not in out   # torch's advice: run the payload


@pytest.mark.parametrize("damage", ["missing key", "wrong shape"])
def test_a_checkpoint_whose_contents_do_not_fit_is_set_aside_and_the_run_starts_afresh(tmp_path, cfg, damage,
                                                                                        capsys):
    """Issue 22, defect 5: a checkpoint with the right run key that loads but holds the wrong contents crashed
    every rerun (KeyError, size mismatch) and was never set aside."""
    data, ckpt = _data(), tmp_path / "ckpt.pt"
    train(cfg, "poisson", 3, "stablegrad", data, checkpoint=ckpt, stop_after=20, progress=False)
    state = torch.load(ckpt, weights_only=True)
    if damage == "missing key":
        del state["history"]
    else:
        name = next(k for k in state["model"] if k.endswith("weight"))
        state["model"][name] = torch.zeros(3, 3)
    torch.save(state, ckpt)
    res = train(cfg, "poisson", 3, "stablegrad", data, checkpoint=ckpt, progress=False)
    out = capsys.readouterr().out
    assert str(ckpt) in out and "does not fit" in out and "Traceback" not in out
    assert (tmp_path / "ckpt.pt.unreadable").is_file() and torch.load(ckpt, weights_only=True)["step"] == 40
    fresh = train(cfg, "poisson", 3, "stablegrad", data, progress=False)
    assert res.steps == 40 and _same_weights(res, fresh) and res.history == fresh.history


def test_divergence_is_recorded_and_stops(cfg):
    cfg = dataclasses.replace(cfg, lr=50.0, diverge_factor=2.0, steps=200, init="gain")
    res = train(cfg, "poisson", 4, "adamw", _data(), progress=False)
    assert res.diverged and res.finished and res.steps < 200


def test_float64_training(cfg):
    cfg = dataclasses.replace(cfg, dtype="float64", steps=5)
    data = _data()
    data = dataclasses.replace(data, domain=data.domain.double(), boundary=data.boundary.double(),
                               boundary_values=data.boundary_values.double(), test=data.test.double())
    res = train(cfg, "poisson", 2, "stablegrad", data, progress=False)
    assert next(res.model.parameters()).dtype == torch.float64
    assert predict(res.model, data).shape == data.reference.shape


def test_rel_l2_on_known_inputs():
    ref = np.array([[3.0, 0.0], [0.0, 4.0]])
    assert rel_l2(ref, ref) == 0.0
    assert rel_l2(np.zeros_like(ref), ref) == pytest.approx(1.0)
    assert rel_l2(ref + np.array([[1.0, 0.0], [0.0, 0.0]]), ref) == pytest.approx(1 / 5)
    assert rel_l2(2 * ref, ref) == pytest.approx(1.0)
