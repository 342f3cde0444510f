"""DVC stage: train one (architecture, variant) run for every seed in `cnn.seeds`.

    python -m cnn.stages.train --arch resnet50 --variant nobn-stablegrad \
        --out data/cnn/runs/resnet50-nobn-stablegrad [--params params.yaml] \
        [--ckpt data/checkpoints/cnn/resnet50-nobn-stablegrad]

Each seed's run (`cnn.trainer.train`) writes metrics.json, history.csv and grad_scales.json into
`<out>/seeds/seed<k>/` and its per-epoch checkpoint to `<ckpt>/seed<k>.pt`. The stage then writes the
run's summary into `<out>`: metrics.json (`test_acc` etc. = median over seeds, `*_seeds` lists, `diverged` if
any seed collapsed, `diverged_seeds`), and the first seed's history.csv and grad_scales.json (what the
figures and notebooks read). Several GPUs / nodes: start the same command with `torchrun`
(docs/cnn_scale_out.md). Validates the whole params file first; a collapsed run is recorded and exits 0.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

from cnn.config import ARCHS, VARIANTS
from pipeline.params import load_section

SUMMARIZED = ("test_acc", "val_acc", "train_acc", "final_loss")


def summarize_seeds(per_seed: list[dict]) -> dict:
    """One metrics dict for a run over several seeds: the first seed's settings, the median of each
    SUMMARIZED value over the seeds that have it (with `<key>_seeds`, `<key>_min`, `<key>_max`),
    `diverged` if any seed collapsed, `diverged_seeds` (count), and `diverged_epoch` / `diverged_reason` of the
    earliest collapse."""
    out = {k: v for k, v in per_seed[0].items() if k not in ("seed", "diverged_reason")}
    out["seeds"] = [m["seed"] for m in per_seed]
    for key in SUMMARIZED:
        values = [m.get(key) for m in per_seed]
        known = [v for v in values if v is not None]
        out[key] = statistics.median(known) if known else None
        out[f"{key}_min"] = min(known) if known else None
        out[f"{key}_max"] = max(known) if known else None
        out[f"{key}_seeds"] = values
    collapsed = [m for m in per_seed if m["diverged"]]
    out["diverged"] = bool(collapsed)
    out["diverged_seeds"] = len(collapsed)
    first = min(collapsed, key=lambda m: m["diverged_epoch"] or 0, default=None)
    out["diverged_epoch"] = first["diverged_epoch"] if first else None
    out["diverged_reason"] = first.get("diverged_reason") if first else None
    out["epochs"] = min(m["epochs"] for m in per_seed)
    out["wall_time_s"] = round(sum(m["wall_time_s"] for m in per_seed), 2)
    return out


def run(cfg, arch: str, variant: str, out: Path, ckpt_dir: Path | None, progress: bool = True) -> dict | None:
    """Train every seed; on the main process write the summary into `out` and return it (else None)."""
    from cnn.trainer import train  # after validation: fail fast, import torch only when needed

    seed_dirs = [out / "seeds" / f"seed{seed}" for seed in cfg.seeds]
    per_seed = [train(dataclasses.replace(cfg, seed=seed), arch, variant, seed_dir, progress=progress,
                      checkpoint=ckpt_dir / f"seed{seed}.pt" if ckpt_dir else None)
                for seed, seed_dir in zip(cfg.seeds, seed_dirs)]
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    summary = summarize_seeds(per_seed)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name in ("history.csv", "grad_scales.json"):
        shutil.copyfile(seed_dirs[0] / name, out / name)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True, help=" | ".join(ARCHS))
    ap.add_argument("--variant", required=True, help=" | ".join(VARIANTS))
    ap.add_argument("--out", required=True, help="output folder of this run")
    ap.add_argument("--params", default="params.yaml", help="params file with a `cnn:` section")
    ap.add_argument("--section", default="cnn", help="the section of the params file (e.g. cnn_imagenet)")
    ap.add_argument("--ckpt", default=None, help="checkpoint folder, one file per seed, resumed from if it "
                    "matches the run (default: each seed's output folder)")
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
    m = run(cfg, args.arch, args.variant, Path(args.out), Path(args.ckpt) if args.ckpt else None,
            progress=not args.quiet)
    import torch.distributed as dist
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
