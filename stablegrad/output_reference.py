"""reference="output": the statistic of dLoss/d(model output), captured by hooks, without synchronisation.

A forward hook on the model registers a tensor hook on each output that requires grad; the tensor hook
accumulates sum, sum of squares and count of the incoming gradient. Several forward calls (or micro-batches)
between two steps are pooled. Under ``torch.distributed`` the pooled sums are all-reduced so every rank
uses the statistic of the global batch (each rank's loss is assumed to be a mean over its local batch, the
DDP convention, so the global dLoss/dy is the local one divided by the world size).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils._pytree import tree_flatten


class OutputGradientReference:
    def __init__(self, model: nn.Module):
        self._acc: Tensor | None = None  # [sum, sum of squares, count]
        self._handle = model.register_forward_hook(self._on_forward)

    def _on_forward(self, module: nn.Module, inputs, output) -> None:
        self.observe(output)

    def observe(self, output) -> None:
        """Capture dLoss/d(output) for these output tensor(s) in the coming backward."""
        for t in tree_flatten(output)[0]:
            if isinstance(t, Tensor) and t.requires_grad and torch.is_grad_enabled():
                t.register_hook(self._on_grad)

    def _on_grad(self, grad: Tensor | None) -> None:
        if grad is None:  # an output that received no gradient (seen with torch.compile'd callers)
            return
        g = grad.detach()
        dtype = torch.float64 if g.dtype == torch.float64 else torch.float32
        part = torch.stack([g.sum(dtype=dtype), g.square().sum(dtype=dtype),
                            g.new_full((), float(g.numel()), dtype=dtype)])
        self._acc = part if self._acc is None else self._acc + part.to(self._acc.device)

    def pop(self, statistic: str) -> Tensor:
        """The statistic of all output gradients seen since the last call; resets the accumulator."""
        acc, self._acc = self._acc, None
        if acc is None:
            raise RuntimeError(
                "StableGrad(reference='output') saw no gradient of the loss w.r.t. the model output since the "
                "last step: the loss must depend on model(x) directly (or call opt.observe_output(y) on the "
                "prediction tensor if the trainer does not call model.forward)"
            )
        total, sumsq, count = acc.unbind()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            world = dist.get_world_size()
            acc = acc.clone()
            dist.all_reduce(acc)
            total, sumsq, count = acc[0] / world, acc[1] / world**2, acc[2]
        mean_sq = sumsq / count
        if statistic == "rms":
            return mean_sq.sqrt()
        return (mean_sq - (total / count).square()).clamp_min(0).sqrt()

    def remove(self) -> None:
        self._handle.remove()
