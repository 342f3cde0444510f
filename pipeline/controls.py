"""The gradient controls compared in this project: one record per control, from which the names, labels,
colours, option checks, optimizers and trainer hooks are all derived (pipeline/names.py, paper_figures/style.py,
the params validation of pinn/config.py and cnn/config.py, both trainers).

    name        what it does to plain AdamW                                      its options (params.yaml)
    adamw       nothing (the baseline)                                           -
    stablegrad  rescales every layer's gradient to one reference scale          reference, statistic, bias
    clip        global gradient-norm clipping (torch's clip_grad_norm_)          max_norm
    agc         adaptive gradient clipping, unit-wise (Brock et al. 2021; timm)  clipping, eps
    lamb        LAMB instead of AdamW: layer-wise trust ratio (You et al. 2019; timm's Lamb)  -
    lra         AdamW; the PINN trainer anneals the boundary-loss weight (Wang et al. 2021)   alpha, every
    muon        Muon on the hidden weight matrices, AdamW on the rest (timm's Muon;           momentum
                stablegrad.baselines.muon)
    soap        SOAP: Adam in Shampoo's eigenbasis (Vyas et al. 2024; pytorch-optimizer's)    precondition_frequency

Every control uses the same base settings (lr, betas, eps, weight decay); only the control differs. Muon's
matrix updates take the same lr through Moonlight's RMS matching (see stablegrad.baselines.muon).

Adding a control = one `Control` record in RECORDS (and its tests); nothing else names it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from pipeline import validate as v
from stablegrad import AdaptiveGradClip, GlobalNormClip, GradScaleRecorder, StableGrad, lamb, muon, soap
from stablegrad.options import BIAS_MODES, REFERENCES, STATISTICS

WINGS = ("pinn", "cnn")


@dataclass(frozen=True)
class BaseSettings:
    """The base optimizer's settings, identical for every control of a comparison."""
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def kwargs(self) -> dict:
        return {"lr": self.lr, "betas": tuple(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}


FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def fusable(params) -> bool:
    """Whether torch's fused AdamW kernel takes these parameters (CPU or CUDA, floating point): one kernel per
    step instead of about ten operations per tensor (benchmarks/pinn_vs_deepxde.py: 2 ms of a 20 ms PINN
    step on a 2-core EPYC). The same update as the for-loop implementation, to rounding."""
    return all(p.device.type in ("cpu", "cuda") and p.dtype in FUSED_DTYPES for p in params)


def _adamw(model: nn.Module, base: BaseSettings) -> torch.optim.Optimizer:
    params = list(model.parameters())
    return torch.optim.AdamW(params, **base.kwargs(), fused=fusable(params) or None)


def _stablegrad_output_hook(opt, options: dict):
    return opt.observe_output if options["reference"] == "output" else None


@dataclass(frozen=True)
class Control:
    """One gradient control.

    build(model, base, options, recorder) -> a torch.optim.Optimizer (wrappers share the base's param_groups,
    so LR schedulers and checkpoints work on them unchanged). Trainer hooks:
    - records_itself: the optimizer logs per-layer gradient scales into `recorder` itself (else the trainer
      calls `recorder.capture(model)` after backward);
    - output_hook(opt, options): a callable the PINN trainer hands the network output u before backward,
      or None;
    - anneals_boundary_weight: the PINN trainer anneals the boundary-loss weight with
      pinn.loss_annealing.LossWeightAnnealing(options["alpha"], options["every"]) (else the fixed
      pinn.boundary_weight); a flag, not a factory, because pipeline/ imports neither wing."""
    name: str
    label: str
    color: str                                  # one per control, the same in every figure
    wings: tuple[str, ...]                      # of WINGS
    options: dict[str, v.Check]                 # its own options in params.yaml, with their checks
    build: Callable[..., torch.optim.Optimizer]
    records_itself: bool = False
    output_hook: Callable | None = None
    anneals_boundary_weight: bool = False

    def __post_init__(self):
        assert set(self.wings) <= set(WINGS), self.wings


RECORDS: tuple[Control, ...] = (
    Control("adamw", "AdamW", "#d62728", ("pinn", "cnn"), {},
            lambda m, base, o, rec: _adamw(m, base)),
    Control("stablegrad", "AdamW + StableGrad", "#1f77b4", ("pinn", "cnn"),
            {"reference": v.choice(*REFERENCES), "statistic": v.choice(*STATISTICS), "bias": v.choice(*BIAS_MODES)},
            lambda m, base, o, rec: StableGrad(_adamw(m, base), m, recorder=rec, **o),
            records_itself=True, output_hook=_stablegrad_output_hook),
    Control("clip", "AdamW + global norm clipping", "#2ca02c", ("pinn", "cnn"),
            {"max_norm": v.number(0, lo_open=True)},
            lambda m, base, o, rec: GlobalNormClip(_adamw(m, base), m, **o)),
    Control("agc", "AdamW + AGC", "#ff7f0e", ("pinn", "cnn"),
            {"clipping": v.number(0, lo_open=True), "eps": v.number(0, lo_open=True)},
            lambda m, base, o, rec: AdaptiveGradClip(_adamw(m, base), m, **o)),
    Control("lamb", "LAMB", "#9467bd", ("pinn", "cnn"), {},
            lambda m, base, o, rec: lamb(m.parameters(), **base.kwargs())),   # timm's Lamb, the trust ratio alone
    Control("lra", "AdamW + loss-weight annealing", "#8c564b", ("pinn",),   # it weights PINN loss terms
            {"alpha": v.number(0, 1, hi_open=True), "every": v.integer(1)},
            lambda m, base, o, rec: _adamw(m, base), anneals_boundary_weight=True),
    Control("muon", "Muon", "#e377c2", ("pinn", "cnn"),
            {"momentum": v.number(0, 1, hi_open=True)},
            lambda m, base, o, rec: muon(m, **base.kwargs(), **o)),
    Control("soap", "SOAP", "#17becf", ("pinn", "cnn"),
            {"precondition_frequency": v.integer(1, 1_000_000)},
            lambda m, base, o, rec: soap(m.parameters(), **base.kwargs(), **o)),
)
BY_NAME = {c.name: c for c in RECORDS}
assert len(BY_NAME) == len(RECORDS) and len({c.color for c in RECORDS}) == len(RECORDS)

CONTROLS = tuple(c.name for c in RECORDS if "pinn" in c.wings)        # entries of pinn.optimizers
CNN_CONTROLS = tuple(c.name for c in RECORDS if "cnn" in c.wings)     # the <control> of cnn.variants
LABELS = {c.name: c.label for c in RECORDS}
COLORS = {c.name: c.color for c in RECORDS}
OPTIONS: dict[str, dict[str, v.Check]] = {c.name: c.options for c in RECORDS}   # for pipeline/validate.py


def record(control: str) -> Control:
    if control not in BY_NAME:
        raise ValueError(f"unknown gradient control {control!r}; allowed: {' | '.join(BY_NAME)}")
    return BY_NAME[control]


def make_optimizer(control: str, model: nn.Module, base: BaseSettings, options: dict | None = None,
                   recorder: GradScaleRecorder | None = None) -> torch.optim.Optimizer:
    """The optimizer of `control` for `model` (a torch.optim.Optimizer). `options`: the control's own
    options (OPTIONS[control]); `recorder`: StableGrad logs its per-layer scales into it."""
    return record(control).build(model, base, dict(options or {}), recorder)
