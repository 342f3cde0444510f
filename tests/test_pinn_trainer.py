"""Training: loss goes down for both optimizers, resume is bit-identical, divergence is recorded."""
import dataclasses

import numpy as np
import pytest
import torch

from pinn.config import validate
from pinn.stages.generate import generate
from pinn.trainer import PinnData, predict, rel_l2, train


def _data(problem="poisson", n_domain=128, n_boundary=32):
    d = generate(problem, n_domain, n_boundary, seed=0)
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)
    return PinnData(t(d["domain"]), t(d["boundary"]), t(d["boundary_values"]), t(d["test_points"]),
                    d["test_u"], d["axes"])


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread avoids OpenMP spin-waiting when other jobs share the cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


CFG = validate({"width": 16, "steps": 40, "log_every": 1, "checkpoint_every": 10, "init": "lsuv-jacobian",
                "grad_scale_every": 5})


@pytest.mark.parametrize("optimizer", ["adamw", "stablegrad"])
@pytest.mark.parametrize("problem", ["poisson", "burgers"])
def test_few_steps_lower_the_loss(problem, optimizer):
    res = train(CFG, problem, 4, optimizer, _data(problem), seed=0, progress=False)
    losses = [row[1] for row in res.history]
    assert res.steps == 40 and not res.diverged
    assert losses[-1] < 0.7 * losses[0]
    scales = res.grad_scales
    assert len(scales["layers"]) == 5 and scales["steps"][0] == 0 and len(scales["before"]) == 8


def test_stablegrad_output_reference_trains():
    cfg = dataclasses.replace(CFG, stablegrad=dataclasses.replace(CFG.stablegrad, reference="output"))
    res = train(cfg, "poisson", 4, "stablegrad", _data(), progress=False)
    assert res.history[-1][1] < 0.7 * res.history[0][1]


@pytest.mark.parametrize("optimizer", ["adamw", "stablegrad"])
def test_resume_equals_uninterrupted_run(tmp_path, optimizer):
    data = _data()
    full = train(CFG, "poisson", 3, optimizer, data, seed=1, progress=False)
    ckpt = tmp_path / "ckpt.pt"
    part = train(CFG, "poisson", 3, optimizer, data, seed=1, checkpoint=ckpt, stop_after=25, progress=False)
    assert part.steps == 25 and not part.finished
    resumed = train(CFG, "poisson", 3, optimizer, data, seed=1, checkpoint=ckpt, progress=False)
    assert resumed.steps == 40 and resumed.finished
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert [r[1] for r in full.history] == [r[1] for r in resumed.history]
    assert full.grad_scales == resumed.grad_scales


def test_checkpoint_of_other_settings_is_ignored(tmp_path):
    data = _data()
    ckpt = tmp_path / "ckpt.pt"
    train(CFG, "poisson", 3, "adamw", data, checkpoint=ckpt, progress=False)
    other = dataclasses.replace(CFG, lr=2e-3)
    fresh = train(other, "poisson", 3, "adamw", data, progress=False)
    again = train(other, "poisson", 3, "adamw", data, checkpoint=ckpt, progress=False)
    for a, b in zip(fresh.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)


def test_divergence_is_recorded_and_stops():
    cfg = dataclasses.replace(CFG, lr=50.0, diverge_factor=2.0, steps=200, init="gain")
    res = train(cfg, "poisson", 4, "adamw", _data(), progress=False)
    assert res.diverged and res.finished and res.steps < 200


def test_float64_training():
    cfg = dataclasses.replace(CFG, dtype="float64", steps=5)
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
