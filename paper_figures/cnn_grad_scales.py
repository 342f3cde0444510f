"""Per-layer weight-gradient scale through depth: BN-free AdamW vs BN-free AdamW + StableGrad.

    python -m paper_figures.cnn_grad_scales --runs data/cnn/runs --out paper_figures/cnn_grad_scales

For each architecture: the per-layer gradient std (median over the first epoch's recorded steps) against
the layer's depth index. StableGrad is shown before its rescale (the raw backward signal of that run)
and after it (what AdamW receives); the BN network's raw gradients (conv/linear layers only) in grey.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt

from paper_figures.style import COLORS, LABELS, save

ARCHS = {"resnet50": "ResNet-50", "efficientnet_v2_s": "EfficientNetV2-S"}


def load(run: Path, epoch_index: int = 0):
    """(layer names, per-layer median before, after) of one epoch, or None if the run is missing."""
    path = run / "grad_scales.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    before, after = d["per_epoch_median_before"], d["per_epoch_median_after"]
    if not before or not before[epoch_index]:
        return None
    return d["layers"], before[epoch_index], after[epoch_index]


def _xy(names, values, keep=None):
    pts = [(n, v) for n, v in zip(names, values) if (keep is None or n in keep)]
    return list(range(len(pts))), [v if v is not None and v > 0 else float("nan") for _, v in pts]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="data/cnn/runs")
    ap.add_argument("--out", default="paper_figures/cnn_grad_scales")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    archs = [a for a in ARCHS if load(runs / f"{a}-nobn-adamw") or load(runs / f"{a}-nobn-stablegrad")]
    if not archs:
        raise SystemExit(f"no BN-free CNN runs with gradient records under {runs}")
    fig, axes = plt.subplots(1, len(archs), figsize=(5.2 * len(archs), 3.8), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        plain, sg = load(runs / f"{arch}-nobn-adamw"), load(runs / f"{arch}-nobn-stablegrad")
        bn = load(runs / f"{arch}-bn-adamw")
        keep = set((plain or sg)[0])
        if bn:
            ax.plot(*_xy(bn[0], bn[1], keep), "-", lw=1, color=COLORS["bn-adamw"], label=LABELS["bn-adamw"])
        if plain:
            ax.plot(*_xy(plain[0], plain[1]), "-", color=COLORS["nobn-adamw"], label=LABELS["nobn-adamw"])
        if sg:
            ax.plot(*_xy(sg[0], sg[1]), "--", lw=1, color=COLORS["nobn-stablegrad"],
                    label="no BN, StableGrad run, before rescale")
            ax.plot(*_xy(sg[0], sg[2]), "-", color=COLORS["nobn-stablegrad"],
                    label="no BN, StableGrad run, after rescale")
        ax.set_yscale("log")
        ax.set_title(ARCHS[arch])
        ax.set_xlabel("layer (input -> output)")
        ax.set_ylabel("weight-gradient std (epoch 1 median)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, args.out)


if __name__ == "__main__":
    main()
