"""``GradientTransform``: a ``torch.optim.Optimizer`` that changes the gradients in place, then steps a base
optimizer. Subclasses implement one hook, ``transform_grads_()``.

    opt = SomeTransform(torch.optim.AdamW(model.parameters(), lr=1e-3), model, **options)
    loss.backward(); opt.step(); opt.zero_grad()

``opt.param_groups``, ``opt.state`` and ``opt.defaults`` *are* the base optimizer's (properties, so they stay
the same objects after ``load_state_dict``): LR schedulers, gradient clipping, GradScaler and checkpoints
work on the wrapper exactly as on the base. ``state_dict()`` is the base optimizer's, plus, for a subclass
with a ``state_key``, an entry ``{state_key: {"options": self.options_dict()}}``, and ``"param_shapes"`` (the
shapes of the held parameters); loading a checkpoint whose options differ warns and keeps the current ones,
loading one of other parameter shapes (another model) raises ``ValueError``.

Which layers a subclass transforms is recomputed when a held parameter is frozen or unfrozen
(``requires_grad``) after construction (``_track_trainable``), as after ``add_param_group``.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from .layers import check_params_in_model


class GradientTransform(torch.optim.Optimizer):
    state_key: str | None = None  # the checkpoint entry holding ``options_dict()`` (None: no entry)

    def __init__(self, base_optimizer: torch.optim.Optimizer, model: nn.Module):
        name = type(self).__name__
        if not isinstance(base_optimizer, torch.optim.Optimizer):
            raise TypeError(f"base_optimizer must be a torch.optim.Optimizer, got {type(base_optimizer).__name__}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not any(True for _ in model.parameters()):
            raise ValueError(f"the model has no parameters, so there is nothing for {name} to transform")
        check_params_in_model(model, base_optimizer.param_groups)
        self.base_optimizer = base_optimizer
        self.model = model
        self._initializing = True  # Optimizer.__init__ must not replace the base optimizer's containers
        super().__init__(base_optimizer.param_groups, base_optimizer.defaults)
        self._initializing = False

    # -- the hooks ---------------------------------------------------------------------------------------
    def transform_grads_(self):
        """Change the current gradients in place (called by ``step`` before the base step)."""
        raise NotImplementedError

    def options_dict(self) -> dict:
        """The settings saved in (and compared against) checkpoints."""
        return {}

    def _param_groups_changed(self) -> None:
        """Called after ``add_param_group`` (e.g. to recompute which layers are held)."""

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
        self._param_groups_changed()

    def held_params(self) -> list[nn.Parameter]:
        """The parameters of the base optimizer's param groups, in order."""
        return [p for group in self.param_groups for p in group["params"]]

    def _track_trainable(self) -> None:
        """Call ``_param_groups_changed`` if a held parameter was frozen or unfrozen since the last call (gradual
        unfreezing): a subclass calls it before it uses the layers it found."""
        flags = tuple(p.requires_grad for p in self.held_params())
        if flags != self.__dict__.get("_trainable"):
            if "_trainable" in self.__dict__:
                self._param_groups_changed()
            self._trainable = flags

    # -- the step --------------------------------------------------------------------------------------
    def step(self, closure=None):
        """Transform the gradients, then step the base optimizer. With a closure (DeepXDE, L-BFGS), the
        closure is run with grad enabled by the base optimizer and the gradients it leaves are transformed
        before they are used; returns the closure's loss."""
        if closure is None:
            self.transform_grads_()
            return self.base_optimizer.step()

        def transformed_closure():
            with torch.enable_grad():
                loss = closure()
            self.transform_grads_()
            return loss

        return self.base_optimizer.step(transformed_closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    # -- checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        sd = self.base_optimizer.state_dict()
        if self.state_key is not None:
            sd[self.state_key] = {"options": self.options_dict()}
        sd["param_shapes"] = [[list(p.shape) for p in group["params"]] for group in self.param_groups]
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self._check_shapes(state_dict.pop("param_shapes", None))
        saved = state_dict.pop(self.state_key, None) if self.state_key is not None else None
        if saved is not None and saved.get("options") != self.options_dict():
            warnings.warn(f"{type(self).__name__} options differ from the checkpoint's: {saved.get('options')} "
                          f"(saved) vs {self.options_dict()} (now); keeping the current ones", stacklevel=2)
        self.base_optimizer.load_state_dict(state_dict)

    def _check_shapes(self, saved) -> None:
        """Raise if a checkpoint's parameter shapes (None: an older checkpoint, not checked) are not these."""
        if saved is None:
            return
        for g, (shapes, group) in enumerate(zip(saved, self.param_groups)):
            for i, (shape, p) in enumerate(zip(shapes, group["params"])):
                if tuple(shape) != tuple(p.shape):
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: param_groups[{g}]['params'][{i}] has shape "
                        f"{tuple(shape)} in the checkpoint but {tuple(p.shape)} here: the state is from another "
                        "model (or the parameters are in another order)")

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options_dict().items())
        base = "\n".join("    " + line for line in repr(self.base_optimizer).splitlines())
        return f"{type(self).__name__}({opts},\n  base=\n{base}\n)"
