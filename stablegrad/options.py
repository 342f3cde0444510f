"""The options of StableGrad, with their defaults and their validation (one place for both)."""
from __future__ import annotations

from dataclasses import dataclass, fields

REFERENCES = ("last", "output")
STATISTICS = ("std", "rms")
BIAS_MODES = ("shared", "own", "none")


@dataclass(frozen=True)
class Options:
    """What the rescale computes. For each layer l (see ``stablegrad.layers``)::

        g_l  <-  g_l * sigma_ref / stat(g_l)      if stat(g_l) > eps and sigma_ref > eps, both finite
        g_l  <-  g_l                               otherwise (zero, tiny or non-finite: left untouched)

    reference:  "last"   sigma_ref = stat of the weight gradient of the prediction layer (the last layer,
                         or ``reference_layer``);
                "output" sigma_ref = stat of dLoss/d(model output), captured by a hook.
    statistic:  "rms" (root mean square, the default) or "std" (mean removed, population std). The multi-seed
                PINN ablation finds them indistinguishable (docs/method.md); rms costs one pass over the
                gradients fewer (1.07x ``clip_grad_norm_`` vs 1.57x on ResNet-50, benchmarks/).
    bias:       "shared" biases take their layer's weight factor; "own": their own factor; "none": untouched.
    rescale_reference: whether the prediction layer itself is rescaled (for reference="last" its factor is 1).
    eps:        statistics at or below it count as vanishing-to-zero (the layer is left untouched).
    foreach:    None (default) or True: batched ``torch._foreach_*`` kernels; False: a loop over tensors.
    error_if_nonfinite: raise (one host synchronisation) if a layer's gradient or the reference is not finite.

    A factor is never allowed to make a finite gradient non-finite: it is capped so that factor * ||g||_2
    stays below half the largest number of the gradient's dtype (fp16: 65504), see ``rescale._multiply_``.
    """

    reference: str = "last"
    statistic: str = "rms"
    bias: str = "shared"
    rescale_reference: bool = True
    eps: float = 1e-30
    foreach: bool | None = None
    error_if_nonfinite: bool = False

    def __post_init__(self) -> None:
        for name, allowed in (("reference", REFERENCES), ("statistic", STATISTICS), ("bias", BIAS_MODES)):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"StableGrad option {name}={value!r} is not one of {allowed}")
        if not isinstance(self.eps, (int, float)) or not 0 <= self.eps < 1:
            raise ValueError(f"StableGrad option eps={self.eps!r} must be a float in [0, 1)")
        if self.foreach is not None and not isinstance(self.foreach, bool):
            raise ValueError(f"StableGrad option foreach={self.foreach!r} must be None, True or False")
        for name in ("rescale_reference", "error_if_nonfinite"):
            if not isinstance(getattr(self, name), bool):
                value = getattr(self, name)  # ValueError like every other bad option value
                raise ValueError(f"StableGrad option {name}={value!r} must be True or False")  # noqa: TRY004

    @classmethod
    def from_kwargs(cls, **kwargs) -> Options:
        valid = list(_OPTION_NAMES)  # precomputed: torch.compile cannot trace dataclasses.fields(cls)
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise TypeError(f"unknown StableGrad option(s) {unknown}; valid options are {valid}")
        return cls(**kwargs)


_OPTION_NAMES = tuple(f.name for f in fields(Options))
