"""The rescale itself: per-layer gradient statistics, factors, and the in-place multiply.

Everything here runs without host-device synchronisation and without branching on tensor values
(``torch.where`` instead of ``if``), in batched ``torch._foreach_*`` calls per (device, dtype) group,
so it is cheap, CUDA-graph friendly and compiles under ``torch.compile(fullgraph=True)``.
"""
from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .layers import Layer, find_layers, reference_index
from .options import Options


def _grouped(tensors: list[Tensor]) -> dict[tuple[torch.device, torch.dtype], list[int]]:
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = defaultdict(list)
    for i, t in enumerate(tensors):
        groups[(t.device, t.dtype)].append(i)
    return groups


def grad_stats(grads: list[Tensor], statistic: str, foreach: bool | None = None) -> Tensor:
    """One statistic per gradient tensor ("std": population std; "rms": root mean square), as a 1-D tensor
    on the first gradient's device, in float32 (float64 if any gradient is float64)."""
    return norms_and_stats(grads, statistic, foreach)[1]


def norms_and_stats(grads: list[Tensor], statistic: str, foreach: bool | None = None) -> tuple[Tensor, Tensor]:
    """The L2 norm and the statistic of each gradient tensor (two 1-D tensors, see ``grad_stats``).

    Per (device, dtype) group: one batched ``_foreach_norm`` (accumulated in float32 for fp16/bf16), one
    ``sum`` per tensor for "std" (PyTorch has no batched signed sum), then a few ops on the stacked result.
    std = rms * sqrt(1 - (mean / rms)^2) squares no gradient-sized number, so it neither overflows nor
    underflows where rms does not."""
    if not grads:
        raise ValueError("no gradients to take statistics of")
    device = grads[0].device
    dtype = torch.float64 if any(g.dtype == torch.float64 for g in grads) else torch.float32
    norm_parts: list[Tensor] = []
    stat_parts: list[Tensor] = []
    order: list[int] = []
    for (_, gdtype), idx in _grouped(grads).items():
        group = [grads[i] for i in idx]
        acc = None if gdtype in (torch.float32, torch.float64) else torch.float32  # no fp16 overflow
        if foreach is None or foreach:  # one batched pass: sqrt(sum g^2)
            norms = torch._foreach_norm(group) if acc is None else torch._foreach_norm(group, dtype=acc)
        else:
            norms = [torch.linalg.vector_norm(g, dtype=acc) for g in group]
        stat = torch.stack(torch._foreach_mul(norms, [g.numel() ** -0.5 for g in group]))  # rms
        if statistic == "std":
            sums = [g.sum(dtype=acc) for g in group]
            mean = torch.stack(torch._foreach_mul(sums, [1 / g.numel() for g in group]))
            ratio = torch.where(stat > 0, mean / stat, torch.zeros_like(stat))  # |mean| <= rms; NaN stays NaN
            stat = stat * (1 - ratio.square()).clamp_min(0).sqrt()
        norm_parts.append(torch.stack(norms).to(device, dtype, non_blocking=True))
        stat_parts.append(stat.to(device, dtype, non_blocking=True))
        order.extend(idx)
    norms, stats = (torch.cat(parts) if len(parts) > 1 else parts[0] for parts in (norm_parts, stat_parts))
    if order != sorted(order):  # several groups: back to the order of ``grads``
        back = torch.tensor(order).argsort().to(device)
        norms, stats = norms[back], stats[back]
    return norms, stats


def tensor_stat(t: Tensor, statistic: str) -> Tensor:
    """The statistic of one tensor (used for dLoss/d(output))."""
    return grad_stats([t.detach()], statistic, foreach=False)[0]


def compute_factors(stats: Tensor, sigma_ref: Tensor, eps: float) -> Tensor:
    """sigma_ref / stats where both are finite and > eps, else 1 (never 0/0, never spreads NaN/inf)."""
    sigma_ref = sigma_ref.to(stats.device, stats.dtype)
    ok = torch.isfinite(stats) & (stats > eps) & torch.isfinite(sigma_ref) & (sigma_ref > eps)
    safe = torch.where(ok, stats, torch.ones_like(stats))
    return torch.where(ok, sigma_ref / safe, torch.ones_like(stats))


class _Entry(NamedTuple):
    grad: Tensor  # a gradient that is multiplied
    unit: int     # the index of the factor that multiplies it
    norm: int     # the index of its L2 norm: stat units first, then the shared biases


def _units(layers: list[Layer], bias: str) -> tuple[list[Tensor], list[str], list[Tensor], list[_Entry]]:
    """The tensors whose statistics are taken ("stat units"), their names, the other gradients that are
    multiplied (shared biases), and the entries saying which factor multiplies which gradient.
    Layers whose weight has no gradient are skipped."""
    stat_grads: list[Tensor] = []
    names: list[str] = []
    shared: list[Tensor] = []
    apply: list[tuple[Tensor, int, int]] = []  # (grad, unit, norm index; shared biases: -1 - their index)
    for layer in layers:
        g = layer.weight.grad
        if g is None:
            continue
        unit = len(stat_grads)
        stat_grads.append(g)
        names.append(layer.name)
        apply.append((g, unit, unit))
        for p in layer.others:
            if p.grad is None or bias == "none":
                continue
            if bias == "shared":
                apply.append((p.grad, unit, -1 - len(shared)))
                shared.append(p.grad)
            else:  # "own"
                apply.append((p.grad, len(stat_grads), len(stat_grads)))
                stat_grads.append(p.grad)
                names.append(f"{layer.name}:{_param_name(layer.module, p)}")
    entries = [_Entry(g, u, n if n >= 0 else len(stat_grads) + (-1 - n)) for g, u, n in apply]
    return stat_grads, names, shared, entries


def stat_units(layers: list[Layer], bias: str) -> tuple[list[str], list[Tensor]]:
    """The names and gradients of the stat units of ``layers`` (what a recorder logs), without any change."""
    stat_grads, names, _, _ = _units(layers, bias)
    return names, stat_grads


def _param_name(module: nn.Module, p: Tensor) -> str:
    return next((n for n, q in module.named_parameters(recurse=False) if q is p), "param")


HEADROOM = 0.5  # a multiplied gradient's L2 norm stays below HEADROOM * finfo(dtype).max


def _multiply_(entries: list[_Entry], factors: Tensor, norms: Tensor, foreach: bool | None) -> list[Tensor]:
    """g <- g * factor for every entry; returns the factor applied to each entry (0-dim tensors).

    A finite gradient never becomes non-finite: the factor of a gradient with norm ||g|| is capped at
    max(1, HEADROOM * finfo(g.dtype).max / ||g||), and since max|g| <= ||g||, every product stays below
    HEADROOM * finfo.max (the headroom absorbs the rounding of the norm and of the product). The factors are
    kept in float32 for fp16/bf16 gradients (a factor above 65504 is legitimate for a tiny fp16 gradient),
    so the multiply runs in float32 and rounds once. Factors <= 1 are never changed; a NaN norm (a
    gradient that is already non-finite) caps nothing. No host synchronisation."""
    by_group: dict[tuple[torch.device, torch.dtype], list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        by_group[(e.grad.device, e.grad.dtype)].append(i)
    applied: list[Tensor] = [None] * len(entries)  # type: ignore[list-item]  # all set below
    for (device, dtype), idx in by_group.items():
        mul_dtype = torch.promote_types(dtype, torch.float32)
        per_unit = factors.to(device, non_blocking=True).unbind()
        norm = norms.to(device, non_blocking=True).unbind()
        fac = torch.stack([per_unit[entries[i].unit] for i in idx])
        cap = (HEADROOM * torch.finfo(dtype).max / torch.stack([norm[entries[i].norm] for i in idx])).clamp_min(1)
        fac = torch.where(fac > cap, cap, fac).clamp_max(torch.finfo(mul_dtype).max).to(mul_dtype)
        facs = fac.unbind()
        grads = [entries[i].grad for i in idx]
        if foreach is None or foreach:
            torch._foreach_mul_(grads, list(facs))
        else:
            for g, f in zip(grads, facs):
                g.mul_(f)
        for i, f in zip(idx, facs):
            applied[i] = f
    return applied


@torch.no_grad()
def rescale_layers_(
    layers: list[Layer],
    options: Options,
    ref_index: int,
    sigma_ref: Tensor | None = None,
) -> tuple[list[str], Tensor, Tensor]:
    """Rescale the gradients of ``layers`` in place. Returns (unit names, stats before, the factors applied
    to the stat units, after the overflow cap of ``_multiply_``).

    ``sigma_ref``: the reference statistic for reference="output" (ignored for "last")."""
    stat_grads, names, shared, entries = _units(layers, options.bias)
    if not stat_grads:
        empty = torch.zeros(0)
        return names, empty, empty
    norms, stats = norms_and_stats(stat_grads, options.statistic, options.foreach)
    if shared:  # the shared biases' norms bound their products too (one more batched pass, over biases)
        norms = torch.cat([norms, norms_and_stats(shared, "rms", options.foreach)[0].to(norms)])
    ref_name = layers[ref_index].name
    ref_unit = names.index(ref_name) if ref_name in names else None
    if options.reference == "last":
        if ref_unit is None:
            raise RuntimeError(
                f"reference='last': the prediction layer {ref_name!r} has no gradient; "
                "call backward() first, or pass reference_layer= a layer that receives one"
            )
        sigma_ref = stats[ref_unit]
    elif sigma_ref is None:
        raise RuntimeError("reference='output' needs the statistic of dLoss/d(output) (sigma_ref)")
    if options.error_if_nonfinite:  # synchronises, like clip_grad_norm_(error_if_nonfinite=True)
        bad = [layer.name for layer in layers  # every gradient of the layer, biases too (whatever ``bias``)
               if any(p.grad is not None and not bool(p.grad.isfinite().all()) for p in layer.params)]
        if bad or not bool(torch.isfinite(sigma_ref)):
            where = bad or ["the reference (dLoss/d(output))"]
            raise RuntimeError(f"StableGrad: non-finite gradient in layer(s) {where}")
    factors = compute_factors(stats, sigma_ref, options.eps)
    if not options.rescale_reference and ref_unit is not None:
        factors = factors.clone()
        factors[ref_unit] = 1.0
    applied = _multiply_(entries, factors, norms, options.foreach)
    own = [i for i, e in enumerate(entries) if e.norm < len(stat_grads)]  # each stat unit's own tensor, in order
    factors = torch.stack([applied[i].to(stats) for i in own])
    return names, stats, factors


def rescale_(
    model: nn.Module,
    reference: str = "last",
    *,
    output_grad: Tensor | None = None,
    reference_layer: nn.Module | str | None = None,
    **options,
) -> dict[str, Tensor]:
    """Rescale the gradients of ``model`` in place, right after ``backward()`` (like ``clip_grad_norm_``).

    Every layer's gradient is multiplied by one positive factor ``sigma_ref / stat(g_layer)`` (see
    ``stablegrad.options.Options`` for the exact formula and the options). With ``reference="output"``
    pass ``output_grad``: the gradient of the loss w.r.t. the model output (e.g. from ``y.retain_grad()``).

    Returns ``{layer_name: factor}`` (0-dim tensors, for logging; no synchronisation).
    """
    opts = Options.from_kwargs(reference=reference, **options)
    layers = find_layers(model)
    ref = reference_index(layers, reference_layer)
    sigma = None
    if opts.reference == "output":
        if output_grad is None:
            raise ValueError("rescale_(reference='output') needs output_grad= the gradient of the loss w.r.t. "
                             "the model output (or use the StableGrad optimizer, which captures it by a hook)")
        sigma = tensor_stat(output_grad, opts.statistic)
    names, _, factors = rescale_layers_(layers, opts, ref, sigma)
    return dict(zip(names, factors.unbind()))


def layer_grad_stats(model: nn.Module, statistic: str = "rms") -> dict[str, Tensor]:
    """Per-layer weight-gradient statistic of ``model`` (no change to any gradient)."""
    layers = [layer for layer in find_layers(model) if layer.weight.grad is not None]
    if not layers:
        return {}
    stats = grad_stats([layer.weight.grad for layer in layers], statistic)
    return dict(zip((layer.name for layer in layers), stats.unbind()))


__all__ = ["compute_factors", "grad_stats", "layer_grad_stats", "norms_and_stats", "rescale_", "rescale_layers_",
           "stat_units"]
