"""Any torchvision classification model (ResNet-50 and EfficientNetV2-S in the paper), with and without BatchNorm.

Each is built exactly as torchvision builds it (weights=None); the BN-free model then has every BatchNorm
module replaced by `nn.Identity` and nothing else changed (the `norm_layer` argument does not work for this:
EfficientNet's builder passes its own, and ResNet's `zero_init_residual` needs a BN weight). An optional
small-image stem ("cifar", ResNets and EfficientNets) is applied before BN removal, identically for every
variant. Adding a model takes no code: put its torchvision builder name in `cnn.archs`.
"""
from __future__ import annotations

import functools

import torch
import torchvision
from torch import nn


@functools.cache
def available_archs() -> tuple[str, ...]:
    """The names of torchvision's classification model builders (resnet50, efficientnet_v2_s, ...)."""
    return tuple(torchvision.models.list_models(module=torchvision.models))


def remove_batchnorm_(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm module of `model` by `nn.Identity`, in place; return the model."""
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, nn.Identity())
        else:
            remove_batchnorm_(child)
    return model


def _cifar_stem_(model: nn.Module, arch: str) -> None:
    """Small-image stem: ResNet 3x3/stride-1 first conv and no max-pool; EfficientNet first conv stride 1."""
    if arch.startswith(("resnet", "resnext", "wide_resnet")):
        old = model.conv1
        model.conv1 = nn.Conv2d(3, old.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    elif arch.startswith("efficientnet"):
        model.features[0][0].stride = (1, 1)
    else:
        raise ValueError(f"stem 'cifar' is defined for ResNets and EfficientNets only, not {arch!r}; "
                         "use stem 'imagenet' (torchvision's own)")


def build_model(arch: str, num_classes: int, batchnorm: bool = True, stem: str = "imagenet") -> nn.Module:
    """The standard torchvision model (random init); BN-free if `batchnorm` is False."""
    if arch not in available_archs():
        raise ValueError(f"unknown architecture {arch!r}; allowed: a torchvision classification model builder "
                         "(torchvision.models.list_models(module=torchvision.models))")
    if stem not in ("imagenet", "cifar"):
        raise ValueError(f"unknown stem {stem!r}; allowed: imagenet | cifar")
    model = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
    if stem == "cifar":
        _cifar_stem_(model, arch)
    if not batchnorm:
        remove_batchnorm_(model)
    return model


@functools.cache
def why_not_trainable(arch: str, num_classes: int, image_size: int, stem: str, batch: int) -> str | None:
    """None if `arch` builds with BatchNorm, and with it and without it maps a (batch, 3, S, S) training batch
    to (batch, num_classes) logits; else why not, in a few words. Shapes only: built and run on the meta
    device (no memory, no arithmetic), so the params check can afford it."""
    x = torch.empty(batch, 3, image_size, image_size, device="meta")
    try:
        with torch.device("meta"):
            model = build_model(arch, num_classes, batchnorm=True, stem=stem).train()
            if not batchnorm_params(model):
                return "has no BatchNorm layer to remove (the stress test compares it with and without)"
            shapes = [tuple(model(x).shape), tuple(remove_batchnorm_(model)(x).shape)]
    except Exception as err:  # noqa: BLE001 -- any failure of the model on this input: report it in one line
        return f"does not run on {image_size} px images, batch {batch} ({(str(err).splitlines() or [''])[0][:120]})"
    if shapes != [(batch, num_classes)] * 2:
        return f"gives outputs of shape {shapes[0]}, not (batch, classes)"
    return None


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def batchnorm_params(model: nn.Module) -> int:
    return sum(p.numel() for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
               for p in m.parameters(recurse=False))
