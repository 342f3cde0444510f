"""Per-layer gradient scales before and after the rescale, for the backward-scale figure.

Zero cost when off: nothing is computed unless a recorder is attached (``StableGrad(recorder=...)``) or
``capture`` is called. When on, every ``every``-th step keeps two small 1-D tensors (no synchronisation);
they are moved to the host only when ``to_dict`` is called.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import find_layers
from .rescale import grad_stats


class GradScaleRecorder:
    def __init__(self, every: int = 1, statistic: str = "std"):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"GradScaleRecorder: every={every!r} must be an int >= 1")
        self.every = every
        self.statistic = statistic
        self.layers: list[str] = []
        self.steps: list[int] = []
        self._before: list[Tensor] = []
        self._after: list[Tensor] = []
        self._calls = 0

    def wants(self) -> bool:
        """Whether the coming step is recorded."""
        return self._calls % self.every == 0

    def log(self, names: list[str], before: Tensor, factors: Tensor | None) -> None:
        """Record one step: per-layer statistics before the rescale and the factors applied (None: none)."""
        if self.wants() and len(names):
            if not self.layers:
                self.layers = list(names)
            if list(names) == self.layers:
                before = before.detach().float()
                after = before if factors is None else before * factors.detach().float()
                self.steps.append(self._calls)
                self._before.append(before.clone())
                self._after.append(after.clone())
        self._calls += 1

    def capture(self, model: nn.Module) -> None:
        """Record the raw per-layer weight-gradient statistics of ``model`` (for a plain optimizer)."""
        if not self.wants():
            self._calls += 1
            return
        layers = [layer for layer in find_layers(model) if layer.weight.grad is not None]
        stats = grad_stats([layer.weight.grad for layer in layers], self.statistic) if layers else None
        self.log([layer.name for layer in layers], stats, None)

    def to_dict(self) -> dict:
        def rows(ts: list[Tensor]) -> list[list[float]]:
            return torch.stack(ts).cpu().tolist() if ts else []

        return {"statistic": self.statistic, "layers": self.layers, "steps": self.steps,
                "before": rows(self._before), "after": rows(self._after)}

    def state_dict(self) -> dict:
        return {"every": self.every, "calls": self._calls, **self.to_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.every, self._calls = state["every"], state["calls"]
        self.statistic, self.layers, self.steps = state["statistic"], list(state["layers"]), list(state["steps"])
        self._before = [torch.tensor(r) for r in state["before"]]
        self._after = [torch.tensor(r) for r in state["after"]]
