"""Would the CPU CNN stage train its seeds faster several at once? One seed at a time with all the cores' threads
(what `cnn_train` does: its seeds one after another, torch's default threads) against several seeds at once, one
process of one thread each, side by side in one run.

Each worker is a spawned process that builds the stage's model and optimizer (params.yaml's `cnn:` section,
BN-free ResNet-50 with the trainer's AdamW by default), takes `--warmup` steps, waits for the others at a barrier,
then times `--steps` steps of the trainer's own `train_step`; a configuration's throughput is its workers' steps
over the span from the barrier to the last worker's end. The two configurations alternate for `--rounds` rounds
(machine noise hits both alike); medians are printed, then `seeds_at_once_speedup=X` (> 1: at once is faster).

    python benchmarks/cnn_seeds_at_once.py [--variant nobn-adamw --steps 10 --rounds 3 --at-once 3]

2026-12-07, 2-core AVX2 AMD EPYC: 0.995x (and the whole stage, 3 seeds in 3 processes, no faster either), so the
stage keeps one seed after another (docs/cnn_results.md).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # cnn/ is run from the repository, not installed

import torch

from cnn.config import load
from cnn.models import build_model
from cnn.trainer import make_optimizer, train_step
from pipeline.names import parse_variant


def worker(params: str, variant: str, threads: int, warmup: int, steps: int, barrier, out) -> None:
    torch.set_num_threads(threads)
    cfg = load(params)
    torch.manual_seed(0)
    model = build_model(cfg.archs[0], cfg.num_classes, batchnorm=parse_variant(variant)[0] == "bn")
    opt = make_optimizer(model, variant, cfg)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(cfg.batch_size, 3, cfg.image_size, cfg.image_size, generator=g)
    y = torch.randint(0, cfg.num_classes, (cfg.batch_size,), generator=g)
    for _ in range(warmup):
        train_step(model, opt, x, y)
    barrier.wait()
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(model, opt, x, y)
    out.put((t0, time.perf_counter()))


def throughput(ctx, args, processes: int, threads: int) -> float:
    """Steps per second of `processes` workers of `threads` threads each, all at once."""
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(args.params, args.variant, threads, args.warmup, args.steps,
                                              barrier, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    spans = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return processes * args.steps / (max(e for _, e in spans) - min(s for s, _ in spans))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--variant", default="nobn-adamw")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--at-once", type=int, default=3, help="processes of one thread each")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of the one-at-a-time process")
    args = ap.parse_args(argv)
    ctx = get_context("spawn")
    one, many = [], []
    for r in range(args.rounds):
        one.append(throughput(ctx, args, 1, args.threads))
        many.append(throughput(ctx, args, args.at_once, 1))
        print(f"round {r + 1}: 1 process x {args.threads} threads {one[-1]:.3f} steps/s, {args.at_once} processes "
              f"x 1 thread {many[-1]:.3f} steps/s", flush=True)
    a, b = statistics.median(one), statistics.median(many)
    print(f"median: one at a time {1 / a:.3f} s per step, {args.at_once} at once {1 / b:.3f} s per step "
          f"(per step of one seed, over all processes)")
    print(f"seeds_at_once_speedup={b / a:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
