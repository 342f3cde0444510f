"""Activation-aware initialization: the forward scale survives 64 layers (tanh and ReLU MLPs, width 128)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from stablegrad import init_activation_aware_

DEPTH, WIDTH = 64, 128
ACTS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(activation: str) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(8, WIDTH), ACTS[activation]()]
    for _ in range(DEPTH - 2):
        layers += [nn.Linear(WIDTH, WIDTH), ACTS[activation]()]
    return nn.Sequential(*layers, nn.Linear(WIDTH, 1))


def preactivation_stds(model: nn.Module, x: torch.Tensor) -> list[float]:
    """std of every hidden Linear's output (the prediction layer excluded)."""
    out: list[float] = []
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    handles = [m.register_forward_hook(lambda m, i, o: out.append(o.std().item())) for m in linears]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return out


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_lsuv_keeps_unit_scale_across_64_layers(activation):
    torch.manual_seed(0)
    model = init_activation_aware_(mlp(activation), activation, "lsuv", sample=torch.randn(256, 8))
    stds = preactivation_stds(model, torch.randn(256, 8))  # a fresh batch, not the calibration one
    assert len(stds) == DEPTH - 1
    assert all(0.8 <= s <= 1.25 for s in stds), stds
    assert 0.8 <= stds[-1] / stds[0] <= 1.25


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_gain_keeps_scale_within_a_finite_width_random_walk(activation):
    """With the activation's gain the *expected* scale is kept (tanh: it settles at a fixed point, ~0.65x
    of the first layer's for unit-variance input; ReLU: preserved exactly). At finite width the log of the
    scale does a random walk with per-layer variance ~ c / width, so over 64 layers of width 128 the std
    drifts by up to about exp(sqrt(64 * 2.5 / 128) / 2) ~ 1.75x either way: bound [1/3, 3], i.e. no
    vanishing (0.01x) or explosion (100x) as with a wrong gain."""
    ratios = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = init_activation_aware_(mlp(activation), activation, "gain")
        stds = preactivation_stds(model, torch.randn(512, 8))
        ratios.append(stds[-1] / stds[0])
    assert all(1 / 3 <= r <= 3 for r in ratios), ratios
    # and a wrong gain does vanish: the bound above is meaningful
    torch.manual_seed(0)
    wrong = mlp(activation)
    for m in wrong:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.5 / math.sqrt(m.in_features))
    stds = preactivation_stds(wrong, torch.randn(512, 8))
    assert stds[-1] / stds[0] < 1 / 3


def test_lsuv_jacobian_keeps_field_and_derivative_scale():
    torch.manual_seed(0)
    model = init_activation_aware_(mlp("tanh"), "tanh", "lsuv-jacobian", sample=torch.rand(256, 8) * 2 - 1)
    stds = preactivation_stds(model, torch.rand(256, 8) * 2 - 1)
    assert 0.1 <= stds[-1] <= 10 and math.isfinite(sum(stds))


def test_init_bad_input():
    with pytest.raises(ValueError, match="scheme"):
        init_activation_aware_(mlp("tanh"), "tanh", "xavier")
    with pytest.raises(ValueError, match="sample"):
        init_activation_aware_(mlp("tanh"), "tanh", "lsuv")
    with pytest.raises(ValueError, match="no Linear/Conv"):
        init_activation_aware_(nn.Sequential(nn.Tanh()), "tanh")


def test_glorot_normal_every_layer_and_zero_biases():
    """DeepXDE's "Glorot normal": std sqrt(2 / (fan_in + fan_out)) for every layer, the last included."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 200), nn.Tanh(), nn.Linear(200, 400), nn.Tanh(), nn.Linear(400, 100),
                          nn.Conv2d(8, 16, 3))
    for m in model:
        if hasattr(m, "bias"):
            nn.init.constant_(m.bias, 1.0)
    assert init_activation_aware_(model, "tanh", "glorot") is model
    for m in (model[0], model[2], model[4], model[5]):
        fan_in, fan_out = m.weight[0].numel(), m.weight.shape[0] * m.weight[0, 0].numel()
        expected = math.sqrt(2 / (fan_in + fan_out))
        n = m.weight.numel()
        assert abs(m.weight.std().item() / expected - 1) < 5 / math.sqrt(2 * n)  # 5 sigma of the sample std
        assert abs(m.weight.mean().item()) < 5 * expected / math.sqrt(n)
        assert torch.equal(m.bias, torch.zeros_like(m.bias))
