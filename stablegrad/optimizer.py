"""``StableGrad``: a ``torch.optim.Optimizer`` that rescales each layer's gradient, then steps a base optimizer.

    opt = StableGrad(torch.optim.AdamW(model.parameters(), lr=1e-3), model)
    loss.backward(); opt.step(); opt.zero_grad()

``opt.param_groups``, ``opt.state`` and ``opt.defaults`` *are* the base optimizer's (properties, so they stay
the same objects after ``load_state_dict``): LR schedulers, gradient clipping, GradScaler and checkpoints
work on the wrapper exactly as on the base.

Mixed precision with ``torch.amp.GradScaler``: ``scaler.scale(loss).backward(); scaler.unscale_(opt);
scaler.step(opt); scaler.update()`` -- StableGrad rescales inside ``opt.step``, i.e. after unscaling, and a
step the scaler skips (inf/NaN found) is skipped whole. With ``reference="output"`` also pass
``grad_scaler=scaler``: the output hook sees the *scaled* dLoss/dy, and StableGrad divides its statistic by
the scaler's current scale (a tensor, no synchronisation).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict

import torch
from torch import nn

from .layers import check_params_in_model, find_layers, reference_index
from .options import Options
from .output_reference import OutputGradientReference
from .recorder import GradScaleRecorder
from .rescale import rescale_layers_


class StableGrad(torch.optim.Optimizer):
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
        if not isinstance(base_optimizer, torch.optim.Optimizer):
            raise TypeError(f"base_optimizer must be a torch.optim.Optimizer, got {type(base_optimizer).__name__}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not any(True for _ in model.parameters()):
            raise ValueError("the model has no parameters, so there is nothing to rescale")
        self.options = Options.from_kwargs(**options)
        check_params_in_model(model, base_optimizer.param_groups)
        self.base_optimizer = base_optimizer
        self.model = model
        self.recorder = recorder
        self.grad_scaler = grad_scaler
        self._reference_layer = reference_layer
        self._layers = self._find_layers()
        self._ref_index = reference_index(self._layers, reference_layer)
        self._output_ref = OutputGradientReference(model) if self.options.reference == "output" else None
        self._initializing = True
        super().__init__(base_optimizer.param_groups, base_optimizer.defaults)
        self._initializing = False

    # -- the base optimizer's containers, shared by identity --------------------------------------------
    @property
    def param_groups(self):
        return self.base_optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value):
        if not self.__dict__.get("_initializing", False):
            self.base_optimizer.param_groups = value

    @property
    def state(self):
        return self.base_optimizer.state

    @state.setter
    def state(self, value):
        if not self.__dict__.get("_initializing", False):
            self.base_optimizer.state = value

    @property
    def defaults(self):
        return self.base_optimizer.defaults

    @defaults.setter
    def defaults(self, value):
        if not self.__dict__.get("_initializing", False):
            self.base_optimizer.defaults = value

    def add_param_group(self, param_group: dict) -> None:
        if self._initializing:
            return
        check_params_in_model(self.model, [param_group])
        self.base_optimizer.add_param_group(param_group)
        self._layers = self._find_layers()
        self._ref_index = reference_index(self._layers, self._reference_layer)

    def _find_layers(self):
        held = {id(p) for group in self.base_optimizer.param_groups for p in group["params"]}
        return find_layers(self.model, held)

    # -- the step --------------------------------------------------------------------------------------
    def rescale_grads_(self) -> dict[str, torch.Tensor]:
        """Rescale the current gradients in place (what ``step`` does before the base step)."""
        sigma = self._output_ref.pop(self.options.statistic) if self._output_ref is not None else None
        scale = getattr(self.grad_scaler, "_scale", None)
        if sigma is not None and scale is not None and self.grad_scaler.is_enabled():
            sigma = sigma / scale.to(sigma)  # the hook saw scale * dLoss/dy; unscale_ cannot reach it
        names, stats, factors = rescale_layers_(self._layers, self.options, self._ref_index, sigma)
        if self.recorder is not None:
            self.recorder.log(names, stats, factors)
        return dict(zip(names, factors.unbind()))

    def observe_output(self, output) -> None:
        """For reference="output" when the trainer computes the prediction without calling model.forward."""
        if self._output_ref is None:
            raise RuntimeError("observe_output() is only used with reference='output'")
        self._output_ref.observe(output)

    def step(self, closure=None):
        """Rescale, then step the base optimizer. With a closure (DeepXDE, L-BFGS), the closure is run with
        grad enabled by the base optimizer and the gradients it leaves are rescaled before they are used;
        returns the closure's loss."""
        if closure is None:
            self.rescale_grads_()
            return self.base_optimizer.step()

        def rescaled_closure():
            with torch.enable_grad():
                loss = closure()
            self.rescale_grads_()
            return loss

        return self.base_optimizer.step(rescaled_closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    # -- checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The base optimizer's state dict (same format) plus a "stablegrad" entry with the options."""
        sd = self.base_optimizer.state_dict()
        sd["stablegrad"] = {"options": asdict(self.options)}
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        saved = state_dict.pop("stablegrad", None)
        if saved is not None and saved.get("options") != asdict(self.options):
            warnings.warn(f"StableGrad options differ from the checkpoint's: {saved.get('options')} (saved) vs "
                          f"{asdict(self.options)} (now); keeping the current ones", stacklevel=2)
        self.base_optimizer.load_state_dict(state_dict)

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in asdict(self.options).items())
        base = "\n".join("    " + line for line in repr(self.base_optimizer).splitlines())
        return f"StableGrad({opts},\n  base=\n{base}\n)"

