"""DVC stage: train one (architecture, variant) run for every seed in `cnn.seeds`.

    python -m cnn.stages.train --arch resnet50 --variant nobn-stablegrad \
        --out data/cnn/runs/resnet50-nobn-stablegrad [--params params.yaml] \
        [--ckpt data/checkpoints/cnn/resnet50-nobn-stablegrad]

Writes the run layout of pipeline/runs.py: <out>/metrics.json (test_acc etc. = median over seeds, with min,
max and `<key>_seeds`; `diverged_seeds`; the earliest collapse), <out>/history.csv (every epoch of every
seed) and per seed <out>/seeds/seed<k>/{metrics.json, grad_scales.json}; the per-epoch checkpoint of seed k
goes to <ckpt>/seed<k>.pt. Several GPUs / nodes: start the same command with `torchrun`
(docs/cnn_scale_out.md). A collapsed run is recorded and the stage exits 0; bad input exits 2 with one line.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import torch.distributed as dist

from cnn.config import load
from cnn.trainer import train
from pipeline import runs
from pipeline.params import exits_on_bad_input
from pipeline.validate import BadInput

SUMMARIZED = ("test_acc", "val_acc", "train_acc", "final_loss")


def run(cfg, arch: str, variant: str, out: Path, ckpt_dir: Path | None, progress: bool = True) -> dict | None:
    """Train every seed; on the main process write the run's outputs into `out` and return the summary."""
    results = [train(dataclasses.replace(cfg, seed=seed), arch, variant, progress=progress,
                     checkpoint=runs.checkpoint_path(ckpt_dir, seed)) for seed in cfg.seeds]
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    history = []
    for seed, r in zip(cfg.seeds, results):
        runs.write_json(runs.seed_dir(out, seed) / "grad_scales.json", r.grad_scales)
        history += [{"seed": seed, **row} for row in r.history]
    summary = runs.write_run(out, [r.metrics for r in results], history, SUMMARIZED)
    collapsed = [r.metrics for r in results if r.metrics["diverged"]]
    first = min(collapsed, key=lambda m: m["diverged_epoch"] or 0, default=None)
    summary["diverged_epoch"] = first["diverged_epoch"] if first else None
    summary["diverged_reason"] = first["diverged_reason"] if first else None
    summary["epochs"] = min(r.metrics["epochs"] for r in results)
    runs.write_json(out / "metrics.json", summary)
    return summary


@exits_on_bad_input
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True, help="a name of cnn.archs")
    ap.add_argument("--variant", required=True, help="a key of cnn.variants")
    ap.add_argument("--out", required=True, help="output folder of this run")
    ap.add_argument("--params", default="params.yaml", help="params file with a `cnn:` section")
    ap.add_argument("--section", default="cnn", help="the section of the params file (e.g. cnn_imagenet)")
    ap.add_argument("--ckpt", default=None, help="checkpoint folder, one file per seed, resumed from if it "
                    "matches the run")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args(argv)
    cfg = load(args.params, args.section)
    if args.arch not in cfg.archs:
        raise BadInput(f"--arch {args.arch!r} is not in {args.section}.archs ({' | '.join(cfg.archs)})")
    if args.variant not in cfg.variants:
        raise BadInput(f"--variant {args.variant!r} is not a key of {args.section}.variants "
                       f"({' | '.join(cfg.variants)})")
    m = run(cfg, args.arch, args.variant, Path(args.out), Path(args.ckpt) if args.ckpt else None,
            progress=not args.quiet)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    if m is None:
        return 0
    status = (f"collapsed in {m['diverged_seeds']}/{len(m['seeds'])} seeds (first at epoch "
              f"{m['diverged_epoch']})" if m["diverged"] else "ok")
    accs = ", ".join("-" if a is None else f"{a:.4f}" for a in m["test_acc_seeds"])
    print(f"[cnn] {args.arch}/{args.variant}: test_acc median {m['test_acc']:.4f} (seeds {m['seeds']}: {accs}; "
          f"{status}), {m['wall_time_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
