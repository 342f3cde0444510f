"""Activation-aware initialization: a well-scaled *forward* pass (StableGrad controls only the backward).

Schemes (the "weighted" layers are the modules with a weight of 2 or more dimensions: Linear, Conv):

- ``"glorot"``: ``nn.init.xavier_normal_`` with gain 1 for every weighted layer, the last included,
  ``W ~ N(0, 2 / (fan_in + fan_out))``; biases zero. DeepXDE's "Glorot normal", the standard PINN init
  (Raissi et al.'s Xavier); ``activation`` is ignored.

- ``"gain"``: ``W ~ N(0, gain^2 / fan_in)``, ``gain = nn.init.calculate_gain(activation)`` (tanh 5/3, relu
  sqrt 2, ...); the last layer gets gain 1; biases zero.
- ``"lsuv"``: orthogonal weights, then layer by layer (in forward order, on a data ``sample``, all in one
  forward pass, see ``_lsuv_pass``) each hidden layer's weight is scaled so that its output (the
  pre-activation) has unit standard deviation (Mishkin & Matas 2016). The last layer keeps its gain-1
  initialization.
- ``"lsuv-jacobian"``: as ``"lsuv"``, but each layer is scaled so that the geometric mean of the std of its
  output and of the std of the output's directional input derivative (forward-mode AD) is 1: a PINN needs
  both the field and its input derivatives well scaled.
"""
from __future__ import annotations

import math

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor, nn

SCHEMES = ("glorot", "gain", "lsuv", "lsuv-jacobian")


def _weighted(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(getattr(m, "weight", None), Tensor) and m.weight.dim() >= 2]


def _forward_order(model: nn.Module, layers: list[nn.Module], sample: Tensor) -> list[nn.Module]:
    order: list[nn.Module] = []
    handles = [m.register_forward_hook(lambda mod, i, o: order.append(mod) if mod not in order else None)
               for m in layers]
    with torch.no_grad():
        model(sample)
    for h in handles:
        h.remove()
    return order


def _lsuv_pass(model: nn.Module, layers: list[nn.Module], sample: Tensor, jacobian: bool, tol: float) -> bool:
    """One forward pass on ``sample`` in which each of ``layers`` (in forward order, at its first call) gets
    its weight divided by the std of its output (for ``jacobian``: the geometric mean of the std of the output
    and of its directional input derivative) unless that is within ``tol`` of 1. The hook passes the rescaled
    output on, which is exact because the biases are zero (the output is linear in the weight), so the next
    layers see the final inputs: one pass normalizes every layer. Returns whether any layer changed."""
    seen: set[int] = set()
    changed = False

    def hook(mod, inputs, output):
        nonlocal changed
        if id(mod) in seen:
            return None
        seen.add(id(mod))
        if jacobian:
            primal, tangent = fwAD.unpack_dual(output)
            s = math.sqrt(primal.std().item() * tangent.std().item())
        else:
            s = output.std().item()
        if not math.isfinite(s) or s == 0 or abs(s - 1.0) < tol:
            return None
        mod.weight.div_(s)
        changed = True
        return output / s

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        if jacobian:
            gen = torch.Generator(device=sample.device).manual_seed(0)
            v = torch.randn(sample.shape, generator=gen, device=sample.device, dtype=sample.dtype)
            with fwAD.dual_level():
                model(fwAD.make_dual(sample, v / math.sqrt(sample[0].numel())))
        else:
            model(sample)
    finally:
        for h in handles:
            h.remove()
    return changed


@torch.no_grad()
def init_activation_aware_(
    model: nn.Module,
    activation: str = "tanh",
    scheme: str = "gain",
    sample: Tensor | None = None,
    tol: float = 0.02,
    max_iter: int = 10,
) -> nn.Module:
    """Initialize ``model`` in place for a forward pass that keeps its scale across depth; returns it."""
    if scheme not in SCHEMES:
        raise ValueError(f"init scheme {scheme!r} is not one of {SCHEMES}")
    layers = _weighted(model)
    if not layers:
        raise ValueError("the model has no Linear/Conv-like layer to initialize")
    if scheme == "glorot":
        for m in layers:
            nn.init.xavier_normal_(m.weight, gain=1.0)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        return model
    gain = nn.init.calculate_gain(activation)
    if scheme == "gain":
        for i, m in enumerate(layers):
            fan_in = m.weight[0].numel()
            g = 1.0 if i == len(layers) - 1 else gain
            nn.init.normal_(m.weight, 0.0, g / math.sqrt(fan_in))
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        return model
    if sample is None:
        raise ValueError(f"init scheme {scheme!r} is data-driven: pass sample= a batch of model inputs")
    for m in layers:
        nn.init.orthogonal_(m.weight.view(m.weight.shape[0], -1))
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
    order = _forward_order(model, layers, sample)
    last = order[-1]
    nn.init.normal_(last.weight, 0.0, 1.0 / math.sqrt(last.weight[0].numel()))
    for _ in range(max_iter):  # one pass normalizes all layers; the next one checks (and corrects rounding)
        if not _lsuv_pass(model, order[:-1], sample, scheme == "lsuv-jacobian", tol):
            break
    return model
