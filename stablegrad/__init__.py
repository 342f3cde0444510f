"""StableGrad: optimizer-level backward scale control without BatchNorm.

    from stablegrad import StableGrad, rescale_
    opt = StableGrad(torch.optim.AdamW(model.parameters(), lr=1e-3), model)   # a torch.optim.Optimizer
    ...
    loss.backward(); opt.step(); opt.zero_grad()

or, functionally, right after ``loss.backward()``:  ``rescale_(model)``.

Baselines with the same constructor (``stablegrad.baselines``): ``GlobalNormClip``, ``AdaptiveGradClip``
(AGC), and the optimizers ``lamb(params, ...)`` (LAMB), ``muon(model, ...)`` (Muon + AdamW) and
``soap(params, ...)`` (SOAP), which need the ``baselines`` extra; ``GradientTransform`` is the wrapper base class.
"""
from .baselines import AdaptiveGradClip, GlobalNormClip, lamb, muon, soap
from .init import init_activation_aware_
from .layers import Layer, find_layers
from .optimizer import StableGrad
from .options import Options
from .recorder import GradScaleRecorder
from .rescale import layer_grad_stats, rescale_
from .wrapper import GradientTransform

__all__ = [
    "AdaptiveGradClip",
    "GlobalNormClip",
    "GradScaleRecorder",
    "GradientTransform",
    "Layer",
    "Options",
    "StableGrad",
    "find_layers",
    "init_activation_aware_",
    "lamb",
    "layer_grad_stats",
    "muon",
    "rescale_",
    "soap",
]
__version__ = "0.1.0"
