"""Learning-rate annealing of the PINN boundary-loss weight (Wang, Teng & Perdikaris 2021, "Understanding and
mitigating gradient pathologies in physics-informed neural networks", algorithm 1).

The training loss is ``L = L_r + weight * L_b``. Every ``every``-th call of ``update`` (the first call
included: calls 0, every, 2 every, ...)::

    lambda_hat = max_theta |grad_theta L_r|  /  mean_theta |grad_theta (weight * L_b)|
    weight    <- alpha * weight + (1 - alpha) * lambda_hat

This follows the authors' code (github.com/PredictiveIntelligenceLab/GradientPathologiesPINNs,
``Helmholtz2D_model_tf.py``) in three places where a reading of the paper's text could differ:

- the moving average keeps ``alpha = 0.9`` of the OLD value (the paper's text writes
  ``(1 - alpha) * old + alpha * new``);
- the denominator is the gradient of the *weighted* boundary loss, i.e. ``weight * mean|grad L_b|``
  (their ``loss_bcs`` already includes the adaptive constant), so the weight settles where
  ``weight^2 = max|grad L_r| / mean|grad L_b|``;
- "mean" is the mean over the parameter tensors of each tensor's mean |gradient| (their per-layer
  ``reduce_mean``, then the mean of those), and "max" the largest |gradient| entry of all. They pass the
  weight matrices only (no biases): pass ``params`` accordingly to match them exactly.

A ``lambda_hat`` that is not finite (e.g. a boundary gradient that is exactly zero) never replaces a finite
weight: that update is skipped.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor


class LossWeightAnnealing:
    def __init__(self, alpha: float = 0.9, every: int = 10, initial: float = 1.0):
        if not 0 <= alpha <= 1:
            raise ValueError(f"LossWeightAnnealing: alpha={alpha!r} must be in [0, 1]")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"LossWeightAnnealing: every={every!r} must be an int >= 1")
        if not (math.isfinite(initial) and initial > 0):
            raise ValueError(f"LossWeightAnnealing: initial={initial!r} must be a finite number > 0")
        self.alpha, self.every = float(alpha), every
        self._weight = float(initial)
        self._calls = 0
        self.last_lambda_hat: float | None = None  # the last estimate, for logging (also when rejected)

    @property
    def weight(self) -> float:
        """The current weight of the boundary loss."""
        return self._weight

    def update(self, params: Iterable[Tensor], residual_loss: Tensor, boundary_loss: Tensor) -> None:
        """Count one call; on every ``every``-th, re-estimate the weight from the gradients of the two losses
        (unweighted) w.r.t. ``params``. The graphs are kept (``retain_graph=True``) for the caller's
        ``backward`` of the total loss; the parameters' ``.grad`` are not touched."""
        due = self._calls % self.every == 0
        self._calls += 1
        if not due:
            return
        params = [p for p in params if p.requires_grad]
        g_r = torch.autograd.grad(residual_loss, params, retain_graph=True, allow_unused=True)
        g_b = torch.autograd.grad(boundary_loss, params, retain_graph=True, allow_unused=True)
        maxes_r = [g.detach().abs().max() for g in g_r if g is not None and g.numel()]
        means_b = [g.detach().abs().mean() for g in g_b if g is not None and g.numel()]
        if not maxes_r or not means_b:
            raise ValueError("LossWeightAnnealing.update: a loss does not depend on any of params")
        max_r, mean_b = torch.stack(maxes_r).max(), torch.stack(means_b).mean()
        lambda_hat = float(max_r / (self._weight * mean_b))  # one host synchronisation, every-th call
        self.last_lambda_hat = lambda_hat
        if math.isfinite(lambda_hat):
            self._weight = self.alpha * self._weight + (1 - self.alpha) * lambda_hat

    def state_dict(self) -> dict:
        return {"weight": self._weight, "calls": self._calls, "alpha": self.alpha, "every": self.every,
                "last_lambda_hat": self.last_lambda_hat}

    def load_state_dict(self, state: dict) -> None:
        self._weight, self._calls = float(state["weight"]), int(state["calls"])
        self.alpha, self.every = float(state["alpha"]), int(state["every"])
        self.last_lambda_hat = state.get("last_lambda_hat")
