"""The rescale itself: per-layer gradient statistics, factors, and the in-place multiply.

Everything here runs without host-device synchronisation and without branching on tensor values
(``torch.where`` instead of ``if``), in batched ``torch._foreach_*`` calls per (device, dtype) group,
so it is cheap, CUDA-graph friendly and compiles under ``torch.compile(fullgraph=True)``.
"""
from __future__ import annotations

from collections import defaultdict

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
    on the first gradient's device, in float32 (float64 if any gradient is float64).

    Per (device, dtype) group: one batched ``_foreach_norm``, one ``sum`` per tensor for "std" (PyTorch has
    no batched signed sum), then a few ops on the stacked result. std = rms * sqrt(1 - (mean / rms)^2)
    squares no gradient-sized number, so it neither overflows nor underflows where rms does not."""
    if not grads:
        raise ValueError("no gradients to take statistics of")
    device = grads[0].device
    dtype = torch.float64 if any(g.dtype == torch.float64 for g in grads) else torch.float32
    parts: list[Tensor] = []
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
        parts.append(stat.to(device, dtype, non_blocking=True))
        order.extend(idx)
    stats = torch.cat(parts) if len(parts) > 1 else parts[0]
    if order != sorted(order):  # several groups: back to the order of ``grads``
        stats = stats[torch.tensor(order).argsort().to(device)]
    return stats


def tensor_stat(t: Tensor, statistic: str) -> Tensor:
    """The statistic of one tensor (used for dLoss/d(output))."""
    return grad_stats([t.detach()], statistic, foreach=False)[0]


def compute_factors(stats: Tensor, sigma_ref: Tensor, eps: float) -> Tensor:
    """sigma_ref / stats where both are finite and > eps, else 1 (never 0/0, never spreads NaN/inf)."""
    sigma_ref = sigma_ref.to(stats.device, stats.dtype)
    ok = torch.isfinite(stats) & (stats > eps) & torch.isfinite(sigma_ref) & (sigma_ref > eps)
    safe = torch.where(ok, stats, torch.ones_like(stats))
    return torch.where(ok, sigma_ref / safe, torch.ones_like(stats))


def _units(layers: list[Layer], bias: str) -> tuple[list[Tensor], list[str], list[tuple[Tensor, int]]]:
    """The tensors whose statistics are taken ("stat units"), their names, and (grad, unit index) pairs
    saying which factor multiplies which gradient. Layers whose weight has no gradient are skipped."""
    stat_grads: list[Tensor] = []
    names: list[str] = []
    apply: list[tuple[Tensor, int]] = []
    for layer in layers:
        g = layer.weight.grad
        if g is None:
            continue
        unit = len(stat_grads)
        stat_grads.append(g)
        names.append(layer.name)
        apply.append((g, unit))
        for p in layer.others:
            if p.grad is None or bias == "none":
                continue
            if bias == "shared":
                apply.append((p.grad, unit))
            else:  # "own"
                apply.append((p.grad, len(stat_grads)))
                stat_grads.append(p.grad)
                names.append(f"{layer.name}:{_param_name(layer.module, p)}")
    return stat_grads, names, apply


def _param_name(module: nn.Module, p: Tensor) -> str:
    return next((n for n, q in module.named_parameters(recurse=False) if q is p), "param")


def _multiply_(apply: list[tuple[Tensor, int]], factors: Tensor, foreach: bool | None) -> None:
    by_group: dict[tuple[torch.device, torch.dtype], tuple[list[Tensor], list[int]]] = defaultdict(
        lambda: ([], [])
    )
    for g, unit in apply:
        grads, units = by_group[(g.device, g.dtype)]
        grads.append(g)
        units.append(unit)
    for (device, dtype), (grads, units) in by_group.items():
        per_unit = factors.to(device, dtype, non_blocking=True).unbind()  # one conversion per group
        facs = [per_unit[u] for u in units]
        if foreach is None or foreach:
            torch._foreach_mul_(grads, facs)
        else:
            for g, f in zip(grads, facs):
                g.mul_(f)


@torch.no_grad()
def rescale_layers_(
    layers: list[Layer],
    options: Options,
    ref_index: int,
    sigma_ref: Tensor | None = None,
) -> tuple[list[str], Tensor, Tensor]:
    """Rescale the gradients of ``layers`` in place. Returns (unit names, stats before, factors).

    ``sigma_ref``: the reference statistic for reference="output" (ignored for "last")."""
    stat_grads, names, apply = _units(layers, options.bias)
    if not stat_grads:
        empty = torch.zeros(0)
        return names, empty, empty
    stats = grad_stats(stat_grads, options.statistic, options.foreach)
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
    _multiply_(apply, factors, options.foreach)
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


__all__ = ["compute_factors", "grad_stats", "layer_grad_stats", "rescale_", "rescale_layers_"]
