"""The known ways to control gradient scale, as baselines for StableGrad (same constructor style).

- ``GlobalNormClip(base, model, max_norm)``: ``clip_grad_norm_`` of everything the base optimizer holds.
- ``AdaptiveGradClip(base, model, clipping=0.01, eps=1e-3)``: AGC (Brock, De, Smith, Simonyan 2021, NFNets),
  timm's implementation, not applied to the prediction layer.
- ``lamb(params, ...)``: LAMB (You et al. 2019) is an optimizer, not a transform: ``timm.optim.Lamb``.

Both transforms run without host synchronisation. ``GlobalNormClip`` leaves non-finite gradients
untouched (see its docstring); AGC (timm) changes only the units it clips, so a non-finite unit cannot
reach another unit.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import find_layers, reference_index
from .wrapper import GradientTransform


def _with_grad(params: list[nn.Parameter]) -> list[nn.Parameter]:
    return [p for p in params if p.grad is not None]


class GlobalNormClip(GradientTransform):
    """g <- g * min(1, max_norm / (||g||_2 + 1e-6)), the norm over every gradient the base optimizer holds
    (``torch.nn.utils.clip_grad_norm_``, split into its two halves, ``get_total_norm`` and
    ``clip_grads_with_norm_``).

    Non-finite total norm (an inf or NaN anywhere): the gradients are **left untouched**, not scaled by
    NaN or by 0 (plain ``clip_grad_norm_`` makes every gradient NaN). The step then sees the same non-finite
    gradients as without clipping: a ``GradScaler`` still finds them and skips the step (the same rule as
    StableGrad's). ``last_norm`` holds the total norm of the last step (a 0-dim tensor, for logging)."""

    state_key = "global_norm_clip"

    def __init__(self, base_optimizer: torch.optim.Optimizer, model: nn.Module, max_norm: float,
                 norm_type: float = 2.0, foreach: bool | None = None):
        if not isinstance(max_norm, (int, float)) or not max_norm > 0:
            raise ValueError(f"GlobalNormClip: max_norm={max_norm!r} must be a number > 0")
        super().__init__(base_optimizer, model)
        self.max_norm, self.norm_type, self.foreach = float(max_norm), float(norm_type), foreach
        self.last_norm: torch.Tensor | None = None

    def options_dict(self) -> dict:
        return {"max_norm": self.max_norm, "norm_type": self.norm_type}

    @torch.no_grad()
    def transform_grads_(self) -> torch.Tensor | None:
        params = _with_grad(self.held_params())
        if not params:
            return None
        grads = [p.grad for p in params]
        norm = torch.nn.utils.get_total_norm(grads, self.norm_type, foreach=self.foreach)
        safe = torch.where(torch.isfinite(norm), norm, torch.zeros_like(norm))  # 0: coefficient clamps to 1
        torch.nn.utils.clip_grads_with_norm_(params, self.max_norm, safe, foreach=self.foreach)
        self.last_norm = norm
        return norm


class AdaptiveGradClip(GradientTransform):
    """Adaptive gradient clipping, unit-wise: for each output unit i of a weight (row of a Linear, filter
    of a Conv; a vector parameter is one unit),

        G_i <- G_i * clipping * max(||W_i||, eps) / ||G_i||    where ||G_i|| / max(||W_i||, eps) > clipping

    and G_i unchanged elsewhere (``timm.utils.agc.adaptive_clip_grad``). As in the paper, the final
    (prediction) layer is not clipped: the last layer of ``stablegrad.layers.find_layers``, or
    ``last_layer`` (a module or its name). Parameters the base optimizer does not hold are left alone."""

    state_key = "adaptive_grad_clip"

    def __init__(self, base_optimizer: torch.optim.Optimizer, model: nn.Module, clipping: float = 0.01,
                 eps: float = 1e-3, *, last_layer: nn.Module | str | None = None):
        for name, value in (("clipping", clipping), ("eps", eps)):
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"AdaptiveGradClip: {name}={value!r} must be a number > 0")
        super().__init__(base_optimizer, model)
        self.clipping, self.eps = float(clipping), float(eps)
        self._last_layer = last_layer
        self._param_groups_changed()
        self._track_trainable()

    def _param_groups_changed(self) -> None:
        layers = find_layers(self.model, {id(p) for p in self.held_params()})
        last = layers.pop(reference_index(layers, self._last_layer))
        self.last_layer_name = last.name
        self._clipped = [p for layer in layers for p in layer.params]

    def options_dict(self) -> dict:
        return {"clipping": self.clipping, "eps": self.eps, "last_layer": self.last_layer_name}

    @torch.no_grad()
    def transform_grads_(self) -> None:
        from timm.utils.agc import adaptive_clip_grad

        self._track_trainable()
        adaptive_clip_grad(_with_grad(self._clipped), clip_factor=self.clipping, eps=self.eps)


def lamb(params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
         weight_decay: float = 0.01, **kwargs) -> torch.optim.Optimizer:
    """LAMB as in You et al. 2019: Adam's update u (with decoupled-in-update weight decay, u += wd * W),
    scaled per parameter tensor by the trust ratio ||W|| / ||u|| (1 where either norm is 0):
    ``timm.optim.Lamb`` with ``always_adapt=True`` (the trust ratio also for tensors without weight decay,
    which timm otherwise skips) and ``max_grad_norm=None`` (timm's default clips the global norm at 1.0
    first, which would mix in the ``GlobalNormClip`` baseline). Other ``kwargs`` go to ``timm.optim.Lamb``."""
    from timm.optim import Lamb

    kwargs = {"always_adapt": True, "max_grad_norm": None, **kwargs}
    return Lamb(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, **kwargs)
