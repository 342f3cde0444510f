"""A plain deep MLP for PINNs: no residual connections, no normalization."""
from itertools import pairwise

import torch
from torch import nn

from stablegrad import init_activation_aware_

ACTIVATIONS = {"tanh": torch.tanh, "sin": torch.sin}


class MLP(nn.Module):
    """`depth` hidden layers of `width` units, then a linear output layer.

    Inputs are mapped affinely from the box [lower, upper] to [-1, 1]^d (a fixed buffer, not trained).
    """

    def __init__(self, d_in: int, width: int, depth: int, d_out: int = 1, activation: str = "tanh",
                 lower=None, upper=None):
        super().__init__()
        self.activation = activation
        self.act = ACTIVATIONS[activation]
        sizes = [d_in] + [width] * depth
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in pairwise(sizes)])
        self.layers.append(nn.Linear(width, d_out))
        lower = torch.as_tensor(lower if lower is not None else [-1.0] * d_in, dtype=torch.float32)
        upper = torch.as_tensor(upper if upper is not None else [1.0] * d_in, dtype=torch.float32)
        self.register_buffer("center", (upper + lower) / 2)
        self.register_buffer("scale", 2 / (upper - lower))  # d(scaled input)/d(input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x - self.center) * self.scale
        for layer in self.layers[:-1]:
            h = self.act(layer(h))
        return self.layers[-1](h)


def build_model(problem, width: int, depth: int, activation: str = "tanh", init: str = "gain",
                sample: torch.Tensor | None = None, input_map: str = "box") -> MLP:
    """The MLP for `problem` (a pinn.problems module), initialized with the activation-aware init. `input_map`:
    "box" maps the problem's domain box to [-1, 1]^d, "none" feeds the raw inputs (DeepXDE's convention; the
    map is then the identity, exactly: x - 0 and x * 1 round to x)."""
    if input_map not in ("box", "none"):
        raise ValueError(f"input_map must be box | none, got {input_map!r}")
    box = (problem.LOWER, problem.UPPER) if input_map == "box" else (None, None)
    model = MLP(len(problem.INPUTS), width, depth, 1, activation, *box)
    if sample is not None:
        sample = sample.to(torch.float32)
    init_activation_aware_(model, activation=activation, scheme=init, sample=sample)
    return model
