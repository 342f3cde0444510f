"""The matrix products of the PINN derivative pass, on oneDNN where that is faster (CPU, float32).

PyTorch multiplies float32 CPU matrices with MKL's sgemm. On AMD CPUs MKL takes a slower code path
(measured on this project's AMD EPYC: 80-88 GFLOP/s for the (11360 x 50) @ (50 x 50) products of the
Burgers benchmark, against 170 GFLOP/s for oneDNN's JIT kernels, which PyTorch ships as well;
`benchmarks/pinn_vs_deepxde.py` prints both). The three products a linear layer needs forward and
backward (x @ w.T, g @ w, g.T @ x) are registered here as two custom ops that call oneDNN's matmul
primitive, so that torch.compile keeps them as opaque kernels; the derivatives of each are again the
two ops, so any order of differentiation works:

    mm_nt(a, b) = a @ b.T      mm_nn(a, b) = a @ b

Same arithmetic (float32 products, float32 accumulation); only the summation order of the long
reductions of the weight gradient differs from MKL's, at rounding level. Everything else (CUDA, float64, a PyTorch
without oneDNN) uses torch.matmul: see `use_onednn`.
"""
import torch
from torch import Tensor


def _onednn_linear(x: Tensor, w: Tensor) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [None], "")


@torch.library.custom_op("pinn::mm_nt", mutates_args=())
def mm_nt(a: Tensor, b: Tensor) -> Tensor:
    """a @ b.T for a (n, k), b (m, k) -> (n, m)."""
    return _onednn_linear(a.contiguous(), b)


@torch.library.custom_op("pinn::mm_nn", mutates_args=())
def mm_nn(a: Tensor, b: Tensor) -> Tensor:
    """a @ b for a (n, m), b (m, k) -> (n, k)."""
    return _onednn_linear(a.contiguous(), b.t())


@mm_nt.register_fake
def _(a, b):
    return a.new_empty(a.shape[0], b.shape[0])


@mm_nn.register_fake
def _(a, b):
    return a.new_empty(a.shape[0], b.shape[1])


def _save_inputs(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


# oneDNN wants the left factor row-major. The transposes the derivatives need are made contiguous in
# the backward formula, where torch.compile fuses the copy into the kernel that computes `grad`.
def _mm_nt_backward(ctx, grad):   # y = a b^T: da = grad b, db = grad^T a
    a, b = ctx.saved_tensors
    return mm_nn(grad, b), mm_nn(grad.t().contiguous(), a)


def _mm_nn_backward(ctx, grad):   # y = a b: da = grad b^T, db = a^T grad
    a, b = ctx.saved_tensors
    return mm_nt(grad, b), mm_nn(a.t().contiguous(), grad)


mm_nt.register_autograd(_mm_nt_backward, setup_context=_save_inputs)
mm_nn.register_autograd(_mm_nn_backward, setup_context=_save_inputs)


def onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def use_onednn(x: Tensor, gemm: str = "auto") -> bool:
    """Whether `linear_nt` takes oneDNN for x: gemm "onednn" (error if impossible), "aten" (never) or
    "auto" (CPU float32 tensors, when PyTorch was built with oneDNN)."""
    if gemm == "aten":
        return False
    ok = x.device.type == "cpu" and x.dtype == torch.float32 and onednn_available()
    if gemm == "onednn" and not ok:
        raise ValueError(f"gemm='onednn' needs float32 CPU tensors and a PyTorch built with oneDNN "
                         f"(got {x.dtype} on {x.device.type}, oneDNN available: {onednn_available()})")
    if gemm not in ("auto", "onednn"):
        raise ValueError(f"gemm must be 'auto', 'aten' or 'onednn', got {gemm!r}")
    return ok


def linear_nt(x: Tensor, w: Tensor, onednn: bool) -> Tensor:
    """x @ w.T (no bias), on oneDNN if `onednn`."""
    return mm_nt(x, w) if onednn else x @ w.t()
