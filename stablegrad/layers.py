"""Which tensors form a "layer": the unit that StableGrad gives one scale factor.

A layer is a module that directly owns trainable parameters (``module.parameters(recurse=False)``).
Its *weight* (the parameter named ``weight``, else its largest parameter) defines the layer's gradient
statistic; its other parameters (biases, ...) are handled by the ``bias`` option.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Layer:
    name: str
    module: nn.Module
    weight: nn.Parameter
    others: tuple[nn.Parameter, ...]

    @property
    def params(self) -> tuple[nn.Parameter, ...]:
        return (self.weight, *self.others)


def find_layers(model: nn.Module, params: set[int] | None = None) -> list[Layer]:
    """The layers of ``model`` in registration order.

    ``params``: if given, a set of ``id(p)``; only those parameters are kept (those a given optimizer holds).
    Frozen parameters (``requires_grad=False``) and parameters shared with an earlier module are skipped.
    """
    seen: set[int] = set()
    layers: list[Layer] = []
    for name, module in model.named_modules():
        own = []
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen or not p.requires_grad or (params is not None and id(p) not in params):
                continue
            seen.add(id(p))
            own.append((pname, p))
        if not own:
            continue
        named = dict(own)
        weight = named.get("weight", max((p for _, p in own), key=lambda p: p.numel()))
        others = tuple(p for _, p in own if p is not weight)
        layers.append(Layer(name or type(module).__name__, module, weight, others))
    return layers


def reference_index(layers: list[Layer], reference_layer: nn.Module | str | None) -> int:
    """Index of the prediction layer: by default the last layer, else the given module (or its name)."""
    if not layers:
        raise ValueError("the model has no trainable parameters, so there is nothing to rescale")
    if reference_layer is None:
        return len(layers) - 1
    for i, layer in enumerate(layers):
        if layer.module is reference_layer or layer.name == reference_layer:
            return i
    names = ", ".join(layer.name for layer in layers)
    raise ValueError(f"reference_layer {reference_layer!r} is not a layer of the model; layers are: {names}")


def check_params_in_model(model: nn.Module, param_groups: list[dict]) -> None:
    """Raise if an optimizer's param groups hold a parameter that the model does not own."""
    in_model = {id(p) for p in model.parameters()}
    for gi, group in enumerate(param_groups):
        params = group["params"]
        for pi, p in enumerate([params] if isinstance(params, torch.Tensor) else params):
            if id(p) not in in_model:
                raise ValueError(
                    f"base optimizer param_groups[{gi}]['params'][{pi}] (shape {tuple(p.shape)}) is not a "
                    "parameter of the model passed to StableGrad; pass the model that owns every parameter"
                )
