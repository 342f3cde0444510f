"""Learning-rate annealing of the boundary-loss weight (Wang, Teng & Perdikaris 2021, algorithm 1, as coded)."""
from __future__ import annotations

import pytest
import torch

from pinn.loss_annealing import LossWeightAnnealing


def params_and_losses():
    """Hand-checked gradients:
    grad L_r: w1 -> [3, -4], w2 -> [0.5, 3, -1]      max |.| = 4
    grad L_b: w1 -> [2, 0.5], w2 -> [2, 2, 2]        per-tensor means 1.25 and 2, their mean 1.625
    (the mean over all five entries would be 1.7: the test tells the two apart)."""
    w1 = torch.tensor([1.0, -2.0], requires_grad=True)
    w2 = torch.tensor([[0.5, 3.0, -1.0]], requires_grad=True)
    residual = 3 * w1[0] + w1[1] ** 2 + (w2**2).sum() / 2
    boundary = w1[0] ** 2 + 0.5 * w1[1] + 2 * w2.sum()
    return [w1, w2], residual, boundary


def test_weight_follows_the_formula_every_tenth_call():
    ann = LossWeightAnnealing(alpha=0.9, every=10, initial=1.0)
    expected = 1.0
    for call in range(21):
        params, residual, boundary = params_and_losses()
        ann.update(params, residual, boundary)
        if call % 10 == 0:  # calls 0, 10, 20: lambda_hat = max|g_r| / (weight * mean|g_b|)
            lambda_hat = 4.0 / (expected * 1.625)
            assert ann.last_lambda_hat == pytest.approx(lambda_hat, rel=1e-6)
            expected = 0.9 * expected + 0.1 * lambda_hat  # 0.9 on the OLD value (the authors' code)
        assert ann.weight == pytest.approx(expected, rel=1e-6)
        assert all(p.grad is None for p in params)  # .grad untouched
        (residual + ann.weight * boundary).backward()  # the graph was retained for the caller


def test_first_update_value():
    ann = LossWeightAnnealing()
    ann.update(*params_and_losses())
    assert ann.weight == pytest.approx(0.9 + 0.1 * 4 / 1.625, rel=1e-6)  # 1.14615...


def test_nonfinite_estimate_never_replaces_the_weight():
    ann = LossWeightAnnealing(every=1, initial=2.0)
    (w1, w2), residual, _ = params_and_losses()
    ann.update([w1, w2], residual, 0.0 * (w1.sum() + w2.sum()))  # zero boundary gradient: lambda_hat = inf
    assert ann.weight == 2.0 and ann.last_lambda_hat == float("inf")
    (w1, w2), _, boundary = params_and_losses()
    ann.update([w1, w2], float("nan") * w1.sum(), boundary)  # NaN residual gradient
    assert ann.weight == 2.0
    with pytest.raises(ValueError, match="does not depend"):
        ann.update([torch.zeros(2, requires_grad=True)], *params_and_losses()[1:])


def test_state_round_trip_resumes_exactly():
    straight = LossWeightAnnealing(alpha=0.8, every=3, initial=0.5)
    for _ in range(14):
        straight.update(*params_and_losses())
    first = LossWeightAnnealing(alpha=0.8, every=3, initial=0.5)
    for _ in range(7):
        first.update(*params_and_losses())
    resumed = LossWeightAnnealing()
    resumed.load_state_dict(first.state_dict())
    for _ in range(7):
        resumed.update(*params_and_losses())
    assert resumed.state_dict() == straight.state_dict()
    assert resumed.weight == straight.weight != 0.5


@pytest.mark.parametrize("bad", [{"alpha": 1.5}, {"every": 0}, {"initial": 0.0}, {"initial": float("nan")}])
def test_bad_arguments(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        LossWeightAnnealing(**bad)
