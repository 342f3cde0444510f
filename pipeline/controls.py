"""The gradient controls compared in this project, in one registry used by the PINN and CNN trainers.

    name        what it does to plain AdamW                                      its options (params.yaml)
    adamw       nothing (the baseline)                                           -
    stablegrad  rescales every layer's gradient to one reference scale          reference, statistic, bias
    clip        global gradient-norm clipping (torch's clip_grad_norm_)          max_norm
    agc         adaptive gradient clipping, unit-wise (Brock et al. 2021; timm)  clipping, eps
    lamb        LAMB instead of AdamW: layer-wise trust ratio (You et al. 2019; timm's Lamb)  -
    lra         AdamW; the PINN trainer anneals the boundary-loss weight (Wang et al. 2021)   alpha, every

Every control uses the same base settings (lr, betas, eps, weight decay); only the control differs.
`OPTIONS[name]` declares each control's options for the params validation (pipeline/validate.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline import validate as v
from pipeline.names import CONTROLS
from stablegrad import AdaptiveGradClip, GlobalNormClip, GradScaleRecorder, StableGrad, lamb
from stablegrad.options import BIAS_MODES, REFERENCES, STATISTICS

OPTIONS: dict[str, dict[str, v.Check]] = {
    "adamw": {},
    "stablegrad": {"reference": v.choice(*REFERENCES), "statistic": v.choice(*STATISTICS),
                   "bias": v.choice(*BIAS_MODES)},
    "clip": {"max_norm": v.number(0, lo_open=True)},
    "agc": {"clipping": v.number(0, lo_open=True), "eps": v.number(0, lo_open=True)},
    "lamb": {},
    "lra": {"alpha": v.number(0, 1, hi_open=True), "every": v.integer(1)},
}
assert set(OPTIONS) == set(CONTROLS)


@dataclass(frozen=True)
class BaseSettings:
    """The base optimizer's settings, identical for every control of a comparison."""
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0


def make_optimizer(control: str, model: nn.Module, base: BaseSettings, options: dict | None = None,
                   recorder: GradScaleRecorder | None = None) -> torch.optim.Optimizer:
    """The optimizer of `control` for `model` (a torch.optim.Optimizer; wrappers share the base's
    param_groups, so LR schedulers and checkpoints work on them unchanged). `options`: the control's own
    options (OPTIONS[control]); `recorder`: StableGrad logs its per-layer scales into it."""
    if control not in OPTIONS:
        raise ValueError(f"unknown gradient control {control!r}; allowed: {' | '.join(CONTROLS)}")
    options = dict(options or {})
    kw = {"lr": base.lr, "betas": tuple(base.betas), "eps": base.eps, "weight_decay": base.weight_decay}
    if control == "lamb":
        return lamb(model.parameters(), **kw)   # timm's Lamb, the trust ratio alone (stablegrad.baselines.lamb)
    opt = torch.optim.AdamW(model.parameters(), **kw)
    if control == "stablegrad":
        return StableGrad(opt, model, recorder=recorder, **options)
    if control == "clip":
        return GlobalNormClip(opt, model, **options)
    if control == "agc":
        return AdaptiveGradClip(opt, model, **options)
    return opt  # adamw, lra (the loss side of lra lives in the PINN trainer)


def records_itself(control: str) -> bool:
    """Whether the optimizer logs per-layer gradient scales into the recorder itself (else the trainer calls
    `recorder.capture(model)` after backward)."""
    return control == "stablegrad"
