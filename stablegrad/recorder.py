"""Per-layer gradient scales before and after the rescale, for the backward-scale figure.

Zero cost when off: nothing is computed unless a recorder is attached (``StableGrad(recorder=...)``) or
``capture`` is called. When on, every ``every``-th step keeps two small 1-D tensors (no synchronisation);
they are moved to the host only when ``to_dict`` is called.

One recorder, one statistic (``statistic``, stored in ``to_dict``): StableGrad logs into it the recorder's
own statistic of the raw gradients even when it rescales by another one, so curves that share a label are
the same statistic.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import find_layers
from .options import STATISTICS
from .rescale import grad_stats


def _check_statistic(statistic: str) -> str:
    if statistic not in STATISTICS:
        raise ValueError(f"GradScaleRecorder: statistic={statistic!r} is not one of {STATISTICS}")
    return statistic


class GradScaleRecorder:
    """``every``: record every ``every``-th step. ``statistic``: "rms" (the library default) or "std"."""

    def __init__(self, every: int = 1, statistic: str = "rms"):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"GradScaleRecorder: every={every!r} must be an int >= 1")
        self.every = every
        self.statistic = _check_statistic(statistic)
        self.layers: list[str] = []
        self.steps: list[int] = []
        self._before: list[Tensor] = []
        self._after: list[Tensor] = []
        self._calls = 0

    def wants(self) -> bool:
        """Whether the coming step is recorded."""
        return self._calls % self.every == 0

    def log(self, names: list[str], before: Tensor, factors: Tensor | None) -> None:
        """Record one step: per-unit ``self.statistic`` of the gradients before the rescale, and the positive
        factors applied (None: none). After = before * factor, exact for rms and std alike."""
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
        self.statistic = _check_statistic(state["statistic"])
        self.layers, self.steps = list(state["layers"]), list(state["steps"])
        self._before = [torch.tensor(r) for r in state["before"]]
        self._after = [torch.tensor(r) for r in state["after"]]
