"""Exact input derivatives of an MLP by forward propagation (Taylor mode, one pass).

For each layer the value h (all N points), the first derivatives dh/dx_i (every input i) and the second
derivatives d2h/dx_k^2 (the inputs k a residual needs) are stacked into one (N + (d + m) n, H) tensor
and pushed through ONE matrix product; the activation's derivatives are closed-form (tanh' = 1 - a^2,
tanh'' = -2 a tanh'). Only the first n points (the collocation points, where the residual is taken)
carry derivative streams; the boundary points after them need the value alone. Autograd then
differentiates this forward computation once for the weights, instead of nesting reverse-mode passes as
DeepXDE does. Streams are separated with `split` (whose backward is a cheap concatenation, unlike
slicing or indexing, whose backward fills a zero tensor per use). The output layer (one unit) is a
multiply-and-sum, not a matrix product, so that its backward is elementwise too. The hidden-layer
products run on oneDNN for float32 on CPU (pinn/gemm.py).
"""
import torch

from pinn.gemm import linear_nt, use_onednn


def _act(name, z):
    """(a, a', a'') for the activation `name` at the pre-activation z."""
    if name == "tanh":
        a = torch.tanh(z)
        a1 = 1 - a * a
        return a, a1, -2 * a * a1
    if name == "sin":
        a = torch.sin(z)
        return a, torch.cos(z), -a
    raise ValueError(f"no closed-form derivatives for activation {name!r}")


def value_and_derivatives(model, x: torch.Tensor, second=(0,), n_deriv: int | None = None, gemm: str = "auto"):
    """u (N,) at every point; du (n, d) with du[:, i] = du/dx_i and d2u = {k: d2u/dx_k^2 (n,)} for k in
    `second`, at the first n = n_deriv points (all N by default).

    `model` is a pinn.model.MLP; exact to floating-point rounding (checked against nested autograd).
    `gemm`: "auto" | "aten" | "onednn", see pinn.gemm.use_onednn.
    """
    layers = model.layers
    N, d = x.shape
    n = N if n_deriv is None else n_deriv
    if not 0 <= n <= N:
        raise ValueError(f"n_deriv must be in [0, {N}], got {n}")
    second = tuple(second)
    m = len(second)
    prefix = second == tuple(range(m))          # the common case: split instead of index
    onednn = use_onednn(x, gemm)
    split = [N, d * n, m * n]                   # value of all points | first | second derivatives

    def streams(a, a1, a2, dz, d2z):
        """The next stacked tensor from the activation (a, a', a'') and the incoming derivatives."""
        a1, a2 = a1[:n], a2[:n]
        dzs = dz[:m] if prefix else dz[list(second)]
        d2h = a2 * dzs * dzs if d2z is None else a2 * dzs * dzs + a1 * d2z
        return torch.cat([a, (a1 * dz).flatten(0, 1), d2h.flatten(0, 1)], 0)

    h0 = (x - model.center) * model.scale
    w0 = layers[0].weight
    z = torch.addmm(layers[0].bias, h0, w0.t())                   # (N, H)
    g = (w0 * model.scale).t().unsqueeze(1)                       # (d, 1, H): dz/dx_i, constant; d2z = 0
    stacked = streams(*_act(model.activation, z), g, None)
    for layer in layers[1:-1]:
        z, dz, d2z = linear_nt(stacked, layer.weight, onednn).split(split, 0)
        stacked = streams(*_act(model.activation, z + layer.bias), dz.unflatten(0, (d, n)),
                          d2z.unflatten(0, (m, n)))
    out = layers[-1]
    u, du, d2 = (stacked * out.weight[0]).sum(1).split(split)         # one output unit
    return u + out.bias[0], du.view(d, n).t(), dict(zip(second, d2.view(m, n).unbind(0)))


def autograd_derivatives(model, x: torch.Tensor, second=(0,)):
    """Reference implementation by nested torch.autograd.grad (slow; for tests and comparison)."""
    x = x.detach().requires_grad_(True)
    u = model(x)[:, 0]
    du = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
    d2u = {k: torch.autograd.grad(du[:, k].sum(), x, create_graph=True)[0][:, k] for k in second}
    return u, du, d2u
