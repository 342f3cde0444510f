"""Images/s of a full training step (forward, backward, optimizer step) of BN-free ResNet-50, with plain
AdamW and with AdamW + StableGrad, side by side in one run: the two steps alternate (ABAB...) so that
machine noise hits both alike; medians are reported.

    python benchmarks/cnn_step_overhead.py [--batch 64 --size 64 --reps 15 --device cpu|cuda|all]

On CUDA the step runs as in the trainer: bf16 autocast and channels_last.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # cnn/ is run from the repository, not installed

import torch
import torch.nn.functional as F

from cnn.models import build_model
from stablegrad import StableGrad


def make(device, channels_last):
    torch.manual_seed(0)
    model = build_model("resnet50", 100, batchnorm=False).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def bench(device: torch.device, batch: int, size: int, reps: int, warmup: int = 3) -> dict:
    cuda = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else torch.autocast
    models = {"adamw": make(device, cuda), "stablegrad": make(device, cuda)}
    opts = {"adamw": torch.optim.AdamW(models["adamw"].parameters(), lr=1e-3),
            "stablegrad": StableGrad(torch.optim.AdamW(models["stablegrad"].parameters(), lr=1e-3),
                                     models["stablegrad"])}
    x = torch.randn(batch, 3, size, size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 100, (batch,), device=device)

    def step(name):
        model, opt = models[name], opts[name]
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with (autocast() if cuda else torch.autocast("cpu", enabled=False)):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t

    times = {"adamw": [], "stablegrad": []}
    for r in range(warmup + reps):
        order = ("adamw", "stablegrad") if r % 2 == 0 else ("stablegrad", "adamw")
        for name in order:
            dt = step(name)
            if r >= warmup:
                times[name].append(dt)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"device": str(device), "batch": batch, "size": size, "reps": reps,
            "adamw_img_s": batch / med["adamw"], "stablegrad_img_s": batch / med["stablegrad"],
            "adamw_step_ms": 1e3 * med["adamw"], "stablegrad_step_ms": 1e3 * med["stablegrad"],
            "overhead_pct": 100.0 * (med["stablegrad"] / med["adamw"] - 1.0)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=64, help="input height = width (CPU)")
    ap.add_argument("--cuda-batch", type=int, default=128)
    ap.add_argument("--cuda-size", type=int, default=128)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    args = ap.parse_args(argv)
    runs = []
    if args.device in ("cpu", "all"):
        runs.append((torch.device("cpu"), args.batch, args.size))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        runs.append((torch.device("cuda"), args.cuda_batch, args.cuda_size))
    print("BN-free ResNet-50, full training step (forward + backward + step), medians of interleaved reps")
    for device, batch, size in runs:
        r = bench(device, batch, size, args.reps)
        print(f"{r['device']:>5}  batch {batch} x {size}x{size}:  AdamW {r['adamw_img_s']:8.1f} img/s "
              f"({r['adamw_step_ms']:.1f} ms)   AdamW+StableGrad {r['stablegrad_img_s']:8.1f} img/s "
              f"({r['stablegrad_step_ms']:.1f} ms)   StableGrad overhead {r['overhead_pct']:+.2f} %")


if __name__ == "__main__":
    main()
