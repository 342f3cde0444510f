"""DVC stage: train one (architecture, variant) run.

    python -m cnn.stages.train --arch resnet50 --variant nobn-stablegrad \
        --out data/cnn/runs/resnet50-nobn-stablegrad [--params params.yaml] \
        [--ckpt data/checkpoints/cnn/resnet50-nobn-stablegrad.pt]

Several GPUs / nodes: start the same command with `torchrun` (docs/cnn_scale_out.md).
Validates the whole `cnn:` section first; a collapsed run is recorded (`diverged`) and exits 0.
"""
from __future__ import annotations

import argparse
import os
import sys

from cnn.config import ARCHS, VARIANTS
from pipeline.params import load_section


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True, help=" | ".join(ARCHS))
    ap.add_argument("--variant", required=True, help=" | ".join(VARIANTS))
    ap.add_argument("--out", required=True, help="output folder of this run")
    ap.add_argument("--params", default="params.yaml", help="params file with a `cnn:` section")
    ap.add_argument("--section", default="cnn", help="the section of the params file (e.g. cnn_imagenet)")
    ap.add_argument("--ckpt", default=None, help="checkpoint file, resumed from if it matches the run "
                    "(default: <out>/checkpoint.pt)")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args(argv)
    try:
        if args.arch not in ARCHS:
            raise ValueError(f"--arch {args.arch!r} is not valid; allowed: {' | '.join(ARCHS)}")
        if args.variant not in VARIANTS:
            raise ValueError(f"--variant {args.variant!r} is not valid; allowed: {' | '.join(VARIANTS)}")
        cfg = load_section(args.params, args.section)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from cnn.trainer import train  # after validation: fail fast, import torch only when needed

    metrics = train(cfg, args.arch, args.variant, args.out, checkpoint=args.ckpt, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    status = f"DIVERGED at epoch {metrics['diverged_epoch']}" if metrics["diverged"] else "ok"
    val = f"val_acc {metrics['val_acc']:.4f}, " if metrics.get("val_acc") is not None else ""
    print(f"[cnn] {args.arch}/{args.variant}: {val}test_acc {metrics['test_acc']:.4f} ({status}), "
          f"{metrics['wall_time_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
