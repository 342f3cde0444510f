"""Exact input derivatives of an MLP by forward propagation (Taylor mode, one pass).

For each layer the value h (all N points), the first derivatives dh/dx_i (every input i) and the second
derivatives d2h/dx_k^2 (the inputs k a residual needs) are stacked into one tensor and pushed through ONE
matrix product; the activation's derivatives are closed-form (tanh' = 1 - a^2, tanh'' = -2 a tanh'). The
rows are ordered by what they need: the first n2 points (the collocation points, where the residual is
taken) carry first and second derivative streams, the next n1 - n2 points (those of the conditions on a
derivative, e.g. Neumann or an initial velocity) first derivative streams, the rest (value-only conditions,
e.g. Dirichlet) the value alone. The stacked rows are
[value: N | first on the n2 rows: d n2 | first on the n1 - n2 rows: d (n1 - n2) | second: m n2].
Autograd then differentiates this forward computation once for the weights, instead of nesting reverse-mode
passes as DeepXDE does. Streams are separated with `split` (whose backward is a cheap concatenation, unlike
slicing or indexing, whose backward fills a zero tensor per use). The output layer (one unit) is a
multiply-and-sum, not a matrix product, so that its backward is elementwise too. The hidden-layer
products run on PyTorch's own (MKL) or on oneDNN's kernels, whichever pinn.gemm measured faster on this
CPU for these shapes (`gemm="auto"`; or as forced, see `gemm_for`).

The elementwise work, which torch.compile fuses into one kernel per layer and direction, is kept lean:
the pre-activation is split into its residual rows (which need a, a', a''), its first-derivative rows
(a, a') and its value-only rows (a) before the activation, so that no derivative is computed for rows
that do not carry its streams and the backward has no zero-padded slice gradients; and under torch.compile
float32 tanh is a rational approximation (`fast_tanh`, 1.7x cheaper than PyTorch's vectorised tanh, which
dominated the forward kernels) whose backward is the closed form 1 - a^2 like torch.tanh's.
"""
import torch

from pinn.gemm import GemmChoice, gemm_choice, linear_nt, use_onednn

# Eigen's rational approximation of tanh on [-7.905, 7.905] (odd degree 13 over even degree 6; beyond, the
# float32 tanh is +-1): max abs error 3.4e-7 against float64 tanh, relative error < 4e-7 near 0.
_TANH_CLAMP = 7.90531110763549805
_TANH_P = (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
           -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16)
_TANH_Q = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)


def rational_tanh(z: torch.Tensor) -> torch.Tensor:
    """tanh(z) by the rational approximation: about 20 multiply-adds and one division, which inductor
    vectorises; cheaper than a library tanh only inside a fused kernel (eager, it is ~25 operations)."""
    x = z.clamp(-_TANH_CLAMP, _TANH_CLAMP)
    x2 = x * x
    p = x2 * _TANH_P[6] + _TANH_P[5]
    for c in _TANH_P[4::-1]:
        p = p * x2 + c
    q = x2 * _TANH_Q[3] + _TANH_Q[2]
    for c in _TANH_Q[1::-1]:
        q = q * x2 + c
    return x * p / q


class _RationalTanh(torch.autograd.Function):
    """rational_tanh with the backward of tanh, grad * (1 - a^2) from the saved output (as torch.tanh's)."""

    @staticmethod
    def forward(z):
        return rational_tanh(z)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad):
        a, = ctx.saved_tensors
        return grad * (1 - a * a)


def fast_tanh(z: torch.Tensor) -> torch.Tensor:
    """torch.tanh, except for float32 inside torch.compile: the rational approximation (a few float32 ulp
    from torch.tanh; exact enough for the closed-form derivatives, which use the returned a)."""
    if z.dtype == torch.float32 and torch.compiler.is_compiling():
        return _RationalTanh.apply(z)
    return torch.tanh(z)


def _value(name, z):
    """The activation `name` at z (rows that carry no derivative streams)."""
    if name == "tanh":
        return fast_tanh(z)
    if name == "sin":
        return torch.sin(z)
    raise ValueError(f"no closed-form derivatives for activation {name!r}")


def _act(name, z):
    """(a, a', a'') for the activation `name` at the pre-activation z."""
    if name == "tanh":
        a = fast_tanh(z)
        a1 = 1 - a * a
        return a, a1, -2 * a * a1
    if name == "sin":
        a = torch.sin(z)
        return a, torch.cos(z), -a
    raise ValueError(f"no closed-form derivatives for activation {name!r}")


def stacked_rows(n_points: int, n_inputs: int, n_second: int, n_deriv: int | None = None,
                 n_first: int | None = None) -> int:
    """Rows of the stacked hidden-layer products: the value at every point, d first-derivative streams on
    the first n_first points and m second-derivative streams on the first n_deriv (<= n_first) points."""
    n2 = n_points if n_deriv is None else n_deriv
    n1 = n2 if n_first is None else n_first
    return n_points + n_inputs * n1 + n_second * n2


def gemm_for(model, x: torch.Tensor, second=(0,), n_deriv: int | None = None, choice: str = "auto", *,
             n_first: int | None = None) -> GemmChoice:
    """The product library value_and_derivatives(model, x, second, n_deriv, n_first=n_first) takes with
    gemm=`choice`: (gemm, reason, timings); pass `.gemm` on as value_and_derivatives(..., gemm=...) and
    print/record `.reason`. "auto" measures once per CPU model / PyTorch / shape bucket and caches (pinn.gemm)."""
    width = model.layers[0].weight.shape[0]
    rows = stacked_rows(x.shape[0], x.shape[1], len(tuple(second)), n_deriv, n_first)
    return gemm_choice(choice, width, rows, x.dtype, x.device)


def _weights(model):
    """(weights, biases, center, scale, activation) of an MLP, or of a sequence of MLPs of one architecture
    stacked along a leading seed axis (weights (K, out, in), biases (K, out)): one batched pass for K seeds."""
    if isinstance(model, (list, tuple)):
        first = model[0]
        if len(model) == 1:
            return _weights(first)
        for m in model[1:]:
            if (m.activation != first.activation or len(m.layers) != len(first.layers)
                    or any(a.weight.shape != b.weight.shape for a, b in zip(m.layers, first.layers))):
                raise ValueError("models trained together must have one architecture")
            if not (torch.equal(m.center, first.center) and torch.equal(m.scale, first.scale)):
                raise ValueError("models trained together must share their input map")
        stack = lambda get: [torch.stack([get(m.layers[i]) for m in model]) for i in range(len(first.layers))]
        return (stack(lambda layer: layer.weight), stack(lambda layer: layer.bias), first.center, first.scale,
                first.activation)
    return [layer.weight for layer in model.layers], [layer.bias for layer in model.layers], model.center, \
        model.scale, model.activation


def value_and_derivatives(model, x: torch.Tensor, second=(0,), n_deriv: int | None = None, gemm: str = "auto", *,
                          n_first: int | None = None):
    """u (N,) at every point; du (n1, d) with du[:, i] = du/dx_i at the first n1 = n_first points, and
    d2u = {k: d2u/dx_k^2 (n2,)} for k in `second` at the first n2 = n_deriv points (n2 <= n1; both all N
    by default, n1 = n2 by default).

    `model` is a pinn.model.MLP; exact to floating-point rounding (checked against nested autograd). A list of
    K MLPs of one architecture (seeds trained together) gives u (K, N), du (K, n1, d), d2u {k: (K, n2)} from one
    batched pass over their stacked weights (batched products; gradients flow back to each model's own weights).
    `gemm`: "auto" | "aten" | "onednn": the library of the hidden-layer products (see `gemm_for`; "auto"
    measures once and caches, outside a torch.compile'd graph; a batched pass uses PyTorch's batched products).
    """
    weights, biases, center, scale, activation = _weights(model)
    batched = weights[0].dim() == 3
    N, d = x.shape
    n2 = N if n_deriv is None else n_deriv
    n1 = n2 if n_first is None else n_first
    if not 0 <= n2 <= N:
        raise ValueError(f"n_deriv must be in [0, {N}], got {n2}")
    if not n2 <= n1 <= N:
        raise ValueError(f"n_first must be in [n_deriv = {n2}, {N}], got {n1}")
    c = n1 - n2                                 # rows with first derivatives only
    second = tuple(second)
    m = len(second)
    prefix = second == tuple(range(m))          # the common case: split instead of index
    onednn = use_onednn(x, gemm, width=weights[0].shape[-2], n_rows=stacked_rows(N, d, m, n2, n1))
    onednn = onednn and not batched
    # value of all points | first derivatives on the n2 residual rows | on the c condition rows | second
    split = [N, d * n2, d * c, m * n2] if c else [N, d * n2, m * n2]
    R = -2                                      # the row axis (a leading seed axis when batched)

    def streams(z, dz, dzc, d2z):
        """The next stacked tensor from the pre-activation z ([K,] N, H) and the incoming derivatives
        dz ([K,] d, n2, H), dzc ([K,] d, c, H), d2z ([K,] m, n2, H) or None (zero). a' only on the n1 stream rows,
        a'' only on the n2 residual rows; split, not sliced (see above)."""
        if torch.compiler.is_compiling():   # fused kernels: no derivative work on rows without those streams
            parts = z.split([n2, c, N - n1] if c else [n2, N - n2], R)
            a, a1, a2 = _act(activation, parts[0])
            values = [a]
            if c:
                ac, a1c, _ = _act(activation, parts[1])   # a'' unused there: compiled away
                values.append(ac)
            values.append(_value(activation, parts[-1]))
        else:                               # eager: fewer, larger operations are faster (same numbers)
            a, a1, a2 = _act(activation, z)
            a1c = a1[..., n2:n1, :] if c else None
            a1, a2, values = a1[..., :n2, :], a2[..., :n2, :], [a]
        a1, a2 = a1.unsqueeze(-3), a2.unsqueeze(-3)   # broadcast over the derivative streams
        dzs = dz[..., :m, :, :] if prefix else dz[..., list(second), :, :]
        d2h = a2 * dzs * dzs if d2z is None else a2 * dzs * dzs + a1 * d2z
        first = [(a1 * dz).flatten(-3, -2)]
        if c:
            first.append((a1c.unsqueeze(-3) * dzc).flatten(-3, -2))
        return torch.cat([*values, *first, d2h.flatten(-3, -2)], R)

    h0 = (x - center) * scale
    w0 = weights[0]
    z = (torch.matmul(h0, w0.transpose(-1, -2)) + biases[0].unsqueeze(-2) if batched      # ([K,] N, H)
         else torch.addmm(biases[0], h0, w0.t()))
    g = (w0 * scale).transpose(-1, -2).unsqueeze(-2)             # ([K,] d, 1, H): dz/dx_i, constant; d2z = 0
    stacked = streams(z, g, g, None)
    for w, b in zip(weights[1:-1], biases[1:-1]):
        prod = torch.matmul(stacked, w.transpose(-1, -2)) if batched else linear_nt(stacked, w, onednn)
        z, dz, *dzc, d2z = prod.split(split, R)
        dzc = dzc[0].unflatten(R, (d, c)) if c else None
        stacked = streams(z + b.unsqueeze(-2), dz.unflatten(R, (d, n2)), dzc, d2z.unflatten(R, (m, n2)))
    w_out, b_out = weights[-1], biases[-1]                      # one output unit: multiply and sum
    u, du, *duc, d2 = (stacked * w_out[..., :1, :]).sum(-1).split(split, -1)
    du = du.unflatten(-1, (d, n2))
    if c:
        du = torch.cat([du, duc[0].unflatten(-1, (d, c))], -1)
    return u + b_out[..., :1], du.transpose(-1, -2), dict(zip(second, d2.unflatten(-1, (m, n2)).unbind(-2)))


def autograd_derivatives(model, x: torch.Tensor, second=(0,)):
    """Reference implementation by nested torch.autograd.grad (slow; for tests and comparison)."""
    x = x.detach().requires_grad_(True)
    u = model(x)[:, 0]
    du = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
    d2u = {k: torch.autograd.grad(du[:, k].sum(), x, create_graph=True)[0][:, k] for k in second}
    return u, du, d2u
