"""How much does StableGrad cost? Side by side on ResNet-50's parameters, in one run.

    .venv/bin/python benchmarks/stablegrad_overhead.py                 # CPU
    .venv/bin/python benchmarks/stablegrad_overhead.py --device cuda   # GPU

Measures (synthetic gradients set once and restored before every timed call; candidates interleaved in a
shuffled order in each repetition; medians reported):
  1. ``rescale_(model)``                     vs ``clip_grad_norm_(params, max_norm, foreach=True)``
     (max_norm = half the gradient norm, so the multiply always happens)
  2. ``StableGrad(AdamW(foreach=True)).step`` vs ``AdamW(foreach=True).step``
  3. a full training iteration (forward + backward + AdamW step, batch ``--batch`` of ``--image-size``^2
     images) and the fraction of it that StableGrad adds (2. minus AdamW alone).
Targets (issue 2): rescale_ <= 1.25x clip_grad_norm_ (aim 1.0); StableGrad adds < 1 % of an iteration.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torchvision

from stablegrad import StableGrad, rescale_

MINIMA: dict[str, float] = {}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(cands: dict, reps: int, device: torch.device, before=None) -> dict[str, float]:
    """Median seconds per candidate; every repetition runs each candidate once, in a shuffled order.
    The minimum (the least disturbed run) goes to ``MINIMA``, printed beside the median."""
    times: dict[str, list[float]] = {k: [] for k in cands}
    rng = random.Random(0)
    for _ in range(reps):
        order = list(cands)
        rng.shuffle(order)
        for name in order:
            if before is not None:
                before()
            _sync(device)
            t0 = time.perf_counter()
            cands[name]()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    MINIMA.update({k: min(v) for k, v in times.items()})
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=21, help="repetitions of the per-step candidates")
    ap.add_argument("--iter-reps", type=int, default=5, help="repetitions of the full training iteration")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = torchvision.models.resnet50().to(device)
    params = list(model.parameters())
    gen = torch.Generator(device=device).manual_seed(0)
    saved = [torch.randn(p.shape, generator=gen, device=device) * 1e-3 for p in params]
    for p, g in zip(params, saved):
        p.grad = g.clone()
    grads = [p.grad for p in params]
    total_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(saved))).item()

    def restore() -> None:
        torch._foreach_copy_(grads, saved)

    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"ResNet-50: {len(params)} parameter tensors, {sum(p.numel() for p in params) / 1e6:.1f} M values")

    # 1. the in-place transforms
    t = interleaved({
        "clip_grad_norm_": lambda: torch.nn.utils.clip_grad_norm_(params, 0.5 * total_norm, foreach=True),
        "rescale_ (default: rms)": lambda: rescale_(model),
        "rescale_ statistic=std": lambda: rescale_(model, statistic="std"),
    }, args.reps, device, restore)
    clip = t["clip_grad_norm_"]
    print(f"\n[1] in-place gradient transform (median of {args.reps})")
    for k, v in t.items():
        print(f"  {k:<26s} {v * 1e3:9.3f} ms   ratio to clip_grad_norm_ {v / clip:5.2f}x   "
              f"(min {MINIMA[k] * 1e3:8.3f} ms, ratio of minima {MINIMA[k] / MINIMA['clip_grad_norm_']:5.2f}x)")
    print("  target: rescale_ <= 1.25x clip_grad_norm_ (aim 1.0)")

    # 2. the optimizer steps (two optimizers over the same parameters, each with its own state)
    adamw = torch.optim.AdamW(params, lr=1e-6, foreach=True)
    sg = StableGrad(torch.optim.AdamW(params, lr=1e-6, foreach=True), model)
    for opt in (adamw, sg):  # creates the optimizer state
        restore()
        opt.step()
    s = interleaved({"AdamW.step": adamw.step, "StableGrad(AdamW).step": sg.step}, args.reps, device, restore)
    extra = s["StableGrad(AdamW).step"] - s["AdamW.step"]
    print(f"\n[2] optimizer step (median of {args.reps})")
    for k, v in s.items():
        print(f"  {k:<26s} {v * 1e3:9.3f} ms   (min {MINIMA[k] * 1e3:8.3f} ms)")
    print(f"  ratio StableGrad(AdamW)/AdamW {s['StableGrad(AdamW).step'] / s['AdamW.step']:.2f}x, "
          f"StableGrad adds {extra * 1e3:.3f} ms")

    # 3. a full training iteration with plain AdamW
    x = torch.randn(args.batch, 3, args.image_size, args.image_size, device=device)
    y = torch.randint(0, 1000, (args.batch,), device=device)

    def iteration() -> None:
        adamw.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        adamw.step()

    iteration()
    it = interleaved({"iteration": iteration}, args.iter_reps, device)["iteration"]
    print(f"\n[3] full training iteration (forward + backward + AdamW step, batch {args.batch} of "
          f"{args.image_size}x{args.image_size}, median of {args.iter_reps}): {it * 1e3:.1f} ms")
    print(f"  StableGrad adds {100 * extra / it:.3f} % of an iteration (rescale_ alone: "
          f"{100 * t['rescale_ (default: rms)'] / it:.3f} %); target < 1 %")


if __name__ == "__main__":
    main()
