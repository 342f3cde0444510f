"""The matrix products of the PINN derivative pass: PyTorch's own (MKL) or oneDNN, chosen by measurement.

PyTorch multiplies float32 CPU matrices with MKL's sgemm. On some AMD CPUs MKL takes a slower code path
(measured on this project's AVX-512 AMD EPYC: 80-88 GFLOP/s for the (11360 x 50) @ (50 x 50) products of the
Burgers benchmark, against 170 GFLOP/s for oneDNN's JIT kernels, which PyTorch ships as well); on others
(an AVX2 AMD EPYC, Intel Xeons) MKL is as fast or faster. So `choose_gemm("auto", ...)` times both on the
layer shapes of the run once, caches the winner per (CPU model, PyTorch version, dtype, width, rows bucket,
threads) in a small JSON file outside the repository (`cache_path()`), and later runs read it.
`benchmarks/pinn_vs_deepxde.py` prints the choice and both timings.

The three products a linear layer needs forward and backward (x @ w.T, g @ w, g.T @ x) are registered
here as two custom ops that call oneDNN's matmul primitive, so that torch.compile keeps them as opaque
kernels; the derivatives of each are again the two ops, so any order of differentiation works:

    mm_nt(a, b) = a @ b.T      mm_nn(a, b) = a @ b

Same arithmetic (float32 products, float32 accumulation); only the summation order of the long
reductions of the weight gradient differs from MKL's, at rounding level. Everything else (CUDA, float64, a
PyTorch without oneDNN) uses torch.matmul.
"""
import functools
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import platformdirs
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


GEMM_CHOICES = ("auto", "aten", "onednn")
CACHE_ENV = "STABLEGRAD_CACHE_DIR"
_CACHE_FORMAT = 1
_MEMO: dict[str, "GemmChoice"] = {}      # this process's decisions, by cache key


def onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class GemmChoice(NamedTuple):
    """The product library for a run: `gemm` ("aten" or "onednn", what value_and_derivatives takes),
    a one-line human-readable `reason`, and the timings behind it (seconds per layer, forward + backward
    products; empty when nothing was measured)."""
    gemm: str
    reason: str
    timings: dict

    def __str__(self):
        return self.reason


def cache_path() -> Path:
    """$STABLEGRAD_CACHE_DIR/gemm.json, else the user cache dir (platformdirs: ~/.cache/stablegrad on Linux)."""
    folder = os.environ.get(CACHE_ENV)
    if not folder:
        folder = platformdirs.user_cache_dir("stablegrad", appauthor=False)
    return Path(folder) / "gemm.json"


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (lscpu's "Model name", from /proc/cpuinfo on Linux), else platform's."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def rows_bucket(n_rows: int) -> int:
    """Row counts are measured per power of two (rounded in log scale): 11360 -> 8192, 3020 -> 4096."""
    return 1 << max(0, round(math.log2(max(1, n_rows))))


def _key(width, n_rows, dtype):
    return (f"{cpu_model()} | torch {torch.__version__} | {str(dtype).removeprefix('torch.')} | width {width}"
            f" | rows {rows_bucket(n_rows)} | threads {torch.get_num_threads()}")


def _read_cache(path: Path) -> dict:
    """The cached entries; {} for a missing, unreadable or malformed file (which the next write replaces)."""
    try:
        data = json.loads(path.read_text())
        entries = data["entries"] if data.get("format") == _CACHE_FORMAT else {}
        return {k: v for k, v in entries.items() if isinstance(v, dict) and v.get("gemm") in ("aten", "onednn")}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def _write_cache(path: Path, key: str, entry: dict) -> bool:
    """Add `entry` under `key` (atomically: temporary file + rename). False if the folder is not writable."""
    entries = _read_cache(path)
    entries[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".gemm-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"format": _CACHE_FORMAT, "entries": entries}, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
        return True
    except OSError:
        return False


def measure_products(width: int, n_rows: int, dtype=torch.float32, rounds: int = 5, reps: int = 3) -> dict:
    """Seconds for one hidden layer's three products on (n_rows x width) stacked rows, as the derivative pass
    runs them: forward x @ w.T, backward g @ w and the weight gradient g.T @ x; with PyTorch's own products
    ("aten") and with the oneDNN ops (whose weight gradient needs g.T made contiguous). Rounds alternate
    between the two; the best round counts (least disturbed by other jobs)."""
    gen = torch.Generator().manual_seed(0)
    x, g = (torch.randn(n_rows, width, generator=gen, dtype=dtype) for _ in range(2))
    w = torch.randn(width, width, generator=gen, dtype=dtype)
    libs = {"aten": lambda: (x @ w.t(), g @ w, g.t() @ x)}
    if onednn_available() and dtype == torch.float32:
        libs["onednn"] = lambda: (mm_nt(x, w), mm_nn(g, w), mm_nn(g.t().contiguous(), x))
    best = dict.fromkeys(libs, math.inf)
    with torch.no_grad():
        for fn in libs.values():   # warm-up (oneDNN builds its kernels on the first call)
            fn()
        for _ in range(rounds):
            for name, fn in libs.items():
                t0 = time.perf_counter()
                for _ in range(reps):
                    fn()
                best[name] = min(best[name], (time.perf_counter() - t0) / reps)
    return best


def _decide(timings: dict) -> str:
    # oneDNN must win clearly: on a tie the default products are the safer choice.
    return "onednn" if timings.get("onednn", math.inf) < 0.97 * timings["aten"] else "aten"


def _explain(gemm: str, timings: dict, cpu: str, source: str) -> str:
    other = "aten" if gemm == "onednn" else "onednn"
    ratio = timings[other] / timings[gemm]
    rel = f"{ratio:.2f}x faster than" if ratio >= 1 else f"{1 / ratio:.2f}x slower than (within 3 % of)"
    return (f"{gemm} (auto: measured {rel} {other} on {cpu}, {timings[gemm] * 1e3:.2f} vs "
            f"{timings[other] * 1e3:.2f} ms per layer; {source})")


def gemm_choice(choice: str, width: int, n_rows: int, dtype=torch.float32, device="cpu") -> GemmChoice:
    """The product library for a derivative pass whose hidden layers are `width` wide and whose stacked
    products have `n_rows` rows (pinn.derivatives.stacked_rows), with its reason.

    choice: "aten" or "onednn" are honoured as given ("onednn" needs float32 on a CPU with oneDNN:
    ValueError otherwise); "auto" takes "aten" for float64, non-CPU devices or a PyTorch without oneDNN,
    else the faster of the two as measured once (`measure_products`, about 0.1-0.5 s) and cached
    (`cache_path()`) per CPU model, PyTorch version, dtype, width, rows bucket and thread count."""
    if choice not in GEMM_CHOICES:
        raise ValueError(f"gemm must be one of {', '.join(map(repr, GEMM_CHOICES))}, got {choice!r}")
    dtype = dtype if isinstance(dtype, torch.dtype) else getattr(torch, str(dtype).removeprefix("torch."))
    device = torch.device(device).type
    why_not = None
    if device != "cpu":
        why_not = f"{device} tensors"
    elif dtype != torch.float32:
        why_not = str(dtype).removeprefix("torch.")
    elif not onednn_available():
        why_not = "PyTorch built without oneDNN"
    if choice == "onednn":
        if why_not:
            raise ValueError(f"gemm='onednn' needs float32 CPU tensors and a PyTorch built with oneDNN "
                             f"(got {why_not})")
        return GemmChoice("onednn", "onednn (forced by the configuration)", {})
    if choice == "aten":
        return GemmChoice("aten", "aten (forced by the configuration)", {})
    if why_not:
        return GemmChoice("aten", f"aten (auto: {why_not}, oneDNN not used)", {})
    key = _key(width, n_rows, dtype)
    if key in _MEMO:
        return _MEMO[key]
    path = cache_path()
    entry = _read_cache(path).get(key)
    if entry is not None and isinstance(entry.get("timings"), dict):
        found = GemmChoice(entry["gemm"], _explain(entry["gemm"], entry["timings"], cpu_model(),
                                                   f"cached in {path}"), entry["timings"])
    else:
        timings = measure_products(width, rows_bucket(n_rows), dtype)
        gemm = _decide(timings)
        saved = _write_cache(path, key, {"gemm": gemm, "timings": timings, "cpu": cpu_model(),
                                         "torch": torch.__version__,
                                         "measured": time.strftime("%Y-%m-%dT%H:%M:%S")})
        found = GemmChoice(gemm, _explain(gemm, timings, cpu_model(), f"measured now, {rows_bucket(n_rows)} "
                                          f"rows x {width}; " + (f"cached in {path}" if saved
                                                                  else f"{path} not writable")), timings)
    _MEMO[key] = found
    return found


def choose_gemm(choice: str, width: int, n_rows: int, dtype=torch.float32, device="cpu") -> str:
    """"aten" or "onednn" for value_and_derivatives(gemm=...); see `gemm_choice` (which adds the reason)."""
    return gemm_choice(choice, width, n_rows, dtype, device).gemm


def _resolve(choice: str, width: int, n_rows: int, dtype: str, device: str) -> bool:
    # Called once at trace time under torch.compile (the measurement and file access stay out of the graph).
    return gemm_choice(choice, width, n_rows, dtype, device).gemm == "onednn"


# What torch.compiler.assume_constant_result(_resolve) does (torch._dynamo.decorators: it sets this flag and
# nothing else), without importing torch._dynamo, which costs 2-3 s per process that never compiles (every
# eager pipeline stage). tests/test_pinn_gemm.py checks both: the flag is still what the decorator sets, and
# importing the trainer leaves torch._dynamo unloaded.
_resolve._dynamo_marked_constant = True


def use_onednn(x: Tensor, gemm: str = "auto", width: int | None = None, n_rows: int | None = None) -> bool:
    """Whether `linear_nt` takes oneDNN for products of x (n_rows x width; default: x's shape) with a
    (width x width) weight: see `gemm_choice`."""
    if gemm not in GEMM_CHOICES:
        raise ValueError(f"gemm must be one of {', '.join(map(repr, GEMM_CHOICES))}, got {gemm!r}")
    width = x.shape[-1] if width is None else width
    n_rows = x.shape[0] if n_rows is None else n_rows
    return _resolve(gemm, int(width), int(n_rows), str(x.dtype), x.device.type)


def linear_nt(x: Tensor, w: Tensor, onednn: bool) -> Tensor:
    """x @ w.T (no bias), on oneDNN if `onednn`."""
    return mm_nt(x, w) if onednn else x @ w.t()
