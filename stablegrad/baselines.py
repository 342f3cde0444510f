"""The known ways to control gradient scale, as baselines for StableGrad (same constructor style).

- ``GlobalNormClip(base, model, max_norm)``: ``clip_grad_norm_`` of everything the base optimizer holds.
- ``AdaptiveGradClip(base, model, clipping=0.01, eps=1e-3)``: AGC (Brock, De, Smith, Simonyan 2021, NFNets),
  timm's implementation, not applied to the prediction layer.
- ``lamb(params, ...)``: LAMB (You et al. 2019) is an optimizer, not a transform: ``timm.optim.Lamb``.
- ``muon(model, ...)``: Muon (Jordan et al. 2024) on the hidden weight matrices, AdamW on the rest, in one
  optimizer: ``timm.optim.Muon``.
- ``soap(params, ...)``: SOAP (Vyas et al. 2024), Adam in the eigenbasis of Shampoo's preconditioner:
  ``pytorch_optimizer.SOAP``.

The optimizers come from maintained packages (the ``baselines`` extra: ``pip install stablegrad[baselines]``),
imported only when a baseline is built; StableGrad itself needs torch alone.

Why these packages. Muon: ``torch.optim.Muon`` refuses any parameter that is not 2D (biases, and conv weights
too), so the method's split would take two optimizers, which an LR scheduler and a checkpoint do not see as
one; timm's ``Muon`` holds both kinds in one optimizer (parameter groups with ``use_muon`` /
``use_fallback``), flattens conv weights to (out, in * kh * kw), and its AdamW fallback is torch's AdamW update
bit for bit. Left to itself timm routes by shape alone (every matrix of at least 4 x 4 to Muon, the input and
output layers included), so ``muon`` passes the groups explicitly. SOAP: ``pytorch-optimizer`` (4.1.0) over
``heavyball`` (3.2.1): a plain eager ``torch.optim.Optimizer`` with the reference algorithm's schedule and a
state dict of tensors and numbers (resumable with ``torch.load(weights_only=True)``), pure Python with only
torch and numpy as requirements; heavyball is built around ``torch.compile`` (minutes of compilation per shape
on a CPU) and its own chainable optimizer classes.

Both transforms run without host synchronisation. ``GlobalNormClip`` leaves non-finite gradients
untouched (see its docstring); AGC (timm) changes only the units it clips, so a non-finite unit cannot
reach another unit.
"""
from __future__ import annotations

import importlib

import torch
from torch import nn

from .layers import find_layers, reference_index

MUON_MOMENTUM = 0.95     # Jordan et al. 2024 and Moonlight (Liu et al. 2025): momentum 0.95, Nesterov
MUON_NS_EPS = 1e-7       # timm's (and Jordan's) floor of the norm that Newton-Schulz divides by
SOAP_PRECONDITION_FREQUENCY = 10   # Vyas et al. 2024: the eigenbases are refreshed every 10 steps
from .wrapper import GradientTransform


def _extra(module: str):
    """Import `module` from the ``baselines`` extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"this baseline needs the package {e.name!r}: "
                                  "pip install 'stablegrad[baselines]'", name=e.name) from e


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
        self._adaptive_clip_grad = _extra("timm.utils.agc").adaptive_clip_grad
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
        self._track_trainable()
        self._adaptive_clip_grad(_with_grad(self._clipped), clip_factor=self.clipping, eps=self.eps)


def lamb(params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
         weight_decay: float = 0.01, **kwargs) -> torch.optim.Optimizer:
    """LAMB as in You et al. 2019: Adam's update u (with decoupled-in-update weight decay, u += wd * W),
    scaled per parameter tensor by the trust ratio ||W|| / ||u|| (1 where either norm is 0):
    ``timm.optim.Lamb`` with ``always_adapt=True`` (the trust ratio also for tensors without weight decay,
    which timm otherwise skips) and ``max_grad_norm=None`` (timm's default clips the global norm at 1.0
    first, which would mix in the ``GlobalNormClip`` baseline). Other ``kwargs`` go to ``timm.optim.Lamb``."""
    kwargs = {"always_adapt": True, "max_grad_norm": None, **kwargs}
    return _extra("timm.optim").Lamb(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, **kwargs)


def muon(model: nn.Module, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, momentum: float = MUON_MOMENTUM, nesterov: bool = True,
         ns_steps: int = 5) -> torch.optim.Optimizer:
    """Muon as the method prescribes: the hidden weight matrices (every layer's weight of 2 or more dims
    except the first, input layer's and the last, prediction layer's; conv weights flattened to 2D) take
    Muon's orthogonalised momentum update; everything else (biases, norms, the first and last layers) takes
    AdamW's update with ``lr, betas, eps, weight_decay``. One ``timm.optim.Muon`` with two parameter groups.

    Muon's own settings, published defaults, not tuned here: momentum 0.95 with Nesterov, 5 Newton-Schulz
    steps (timm's "quintic" coefficients: for a matrix whose singular values span two decades the output's
    lie within about 0.95..1.15, where the exact polar factor U V^T has 1; Jordan 2024 documents 0.5..1.5 for
    his coefficients, the band tests/test_baselines.py checks). Its lr is the AdamW ``lr`` (one LR scheduler
    scales both groups): timm's ``adjust_lr_fn="match_rms_adamw"`` (Moonlight, Liu et al. 2025) scales each
    orthogonalised update by 0.2 * sqrt(max(rows, cols)) so that its RMS matches a typical AdamW update,
    which lets Muon reuse AdamW's lr and weight decay (decoupled, ``W *= 1 - lr * weight_decay``)."""
    layers = find_layers(model)
    hidden = {id(layer.weight) for layer in layers[1:-1] if layer.weight.dim() >= 2}
    params = [p for layer in layers for p in layer.params]
    groups = [{"params": [p for p in params if id(p) in hidden], "use_muon": True, "eps": MUON_NS_EPS,
               "nesterov": nesterov},
              {"params": [p for p in params if id(p) not in hidden], "use_fallback": True, "nesterov": False}]
    return _extra("timm.optim").Muon([g for g in groups if g["params"]], lr=lr, betas=betas, eps=eps,
                                     weight_decay=weight_decay, momentum=momentum, ns_steps=ns_steps,
                                     ns_coefficients="quintic", adjust_lr_fn="match_rms_adamw")


def soap(params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, precondition_frequency: int = SOAP_PRECONDITION_FREQUENCY,
         **kwargs) -> torch.optim.Optimizer:
    """SOAP (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam"): Adam run in the
    eigenbasis of Shampoo's two Kronecker factors (per dimension of a weight up to 10000; 1D tensors are
    plain Adam), the eigenbases refreshed every ``precondition_frequency`` steps (one power iteration + QR)
    and held fixed between; the first step only sets the preconditioner up and does not move the
    weights, as in the authors' code. ``pytorch_optimizer.SOAP``; the shampoo statistics decay with
    ``betas[1]`` (the authors' default); decoupled weight decay. Other ``kwargs`` go to ``SOAP``."""
    return _extra("pytorch_optimizer").SOAP(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                            precondition_frequency=precondition_frequency, **kwargs)
