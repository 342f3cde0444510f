"""``StableGrad``: a ``torch.optim.Optimizer`` that rescales each layer's gradient, then steps a base optimizer.

    opt = StableGrad(torch.optim.AdamW(model.parameters(), lr=1e-3), model)
    loss.backward(); opt.step(); opt.zero_grad()

The optimizer machinery (containers shared with the base optimizer, closures, checkpoints) is
``stablegrad.wrapper.GradientTransform``'s; the checkpoint has a "stablegrad" entry with the options.
With a ``recorder``, the recorder's own statistic of the raw gradients is logged (computed separately
when it is not ``options.statistic``).

Mixed precision with ``torch.amp.GradScaler``: ``scaler.scale(loss).backward(); scaler.unscale_(opt);
scaler.step(opt); scaler.update()`` -- StableGrad rescales inside ``opt.step``, i.e. after unscaling, and a
step the scaler skips (inf/NaN found) is skipped whole. With ``reference="output"`` also pass
``grad_scaler=scaler``: the output hook sees the *scaled* dLoss/dy, and StableGrad divides its statistic by
the scaler's current scale (a tensor, no synchronisation).
"""
from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from .layers import find_layers, reference_index
from .options import Options
from .output_reference import OutputGradientReference
from .recorder import GradScaleRecorder
from .rescale import grad_stats, rescale_layers_, stat_units
from .wrapper import GradientTransform


class StableGrad(GradientTransform):
    state_key = "stablegrad"

    def __init__(
        self,
        base_optimizer: torch.optim.Optimizer,
        model: nn.Module,
        *,
        reference_layer: nn.Module | str | None = None,
        recorder: GradScaleRecorder | None = None,
        grad_scaler: torch.amp.GradScaler | None = None,
        **options,
    ):
        if isinstance(base_optimizer, torch.optim.LBFGS):
            raise TypeError(
                "StableGrad cannot wrap torch.optim.LBFGS: L-BFGS evaluates the closure several times per step and "
                "keeps curvature pairs across steps, and gradients rescaled by factors that change between "
                "evaluations break those pairs (it ends orders of magnitude above plain L-BFGS). L-BFGS is "
                "insensitive to a fixed per-layer gradient scale anyway: run it unwrapped, e.g. as a finish after "
                "StableGrad + AdamW")
        super().__init__(base_optimizer, model)
        self.options = Options.from_kwargs(**options)
        self.recorder = recorder
        self.grad_scaler = grad_scaler
        self._reference_layer = reference_layer
        self._param_groups_changed()
        self._track_trainable()
        self._output_ref = OutputGradientReference(model) if self.options.reference == "output" else None

    def _param_groups_changed(self) -> None:  # also when a held parameter is frozen or unfrozen (_track_trainable)
        self._layers = find_layers(self.model, {id(p) for p in self.held_params()})
        self._ref_index = reference_index(self._layers, self._reference_layer)

    def options_dict(self) -> dict:
        return asdict(self.options)

    # -- the step --------------------------------------------------------------------------------------
    def transform_grads_(self) -> dict[str, torch.Tensor]:
        return self.rescale_grads_()

    def rescale_grads_(self) -> dict[str, torch.Tensor]:
        """Rescale the current gradients in place (what ``step`` does before the base step)."""
        self._track_trainable()
        sigma = self._output_ref.pop(self.options.statistic) if self._output_ref is not None else None
        scale = getattr(self.grad_scaler, "_scale", None)
        if sigma is not None and scale is not None and self.grad_scaler.is_enabled():
            sigma = sigma / scale.to(sigma)  # the hook saw scale * dLoss/dy; unscale_ cannot reach it
        rec, own = self.recorder, None
        if rec is not None and rec.wants() and rec.statistic != self.options.statistic:
            _, grads = stat_units(self._layers, self.options.bias)  # the recorder's statistic, before the rescale
            own = grad_stats(grads, rec.statistic, self.options.foreach) if grads else None
        names, stats, factors = rescale_layers_(self._layers, self.options, self._ref_index, sigma)
        if rec is not None:
            rec.log(names, stats if own is None else own, factors)
        return dict(zip(names, factors.unbind()))

    def observe_output(self, output) -> None:
        """For reference="output" when the trainer computes the prediction without calling model.forward."""
        if self._output_ref is None:
            raise RuntimeError("observe_output() is only used with reference='output'")
        self._output_ref.observe(output)
