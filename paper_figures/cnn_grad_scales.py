"""Per-layer weight-gradient scale through depth: BN-free AdamW vs BN-free AdamW + StableGrad.

    python -m paper_figures.cnn_grad_scales --runs data/cnn/runs --out paper_figures/cnn_grad_scales

One column per architecture, two rows: the first epoch and the last epoch each run completed. Each
curve is the per-layer weight-gradient std (median over that epoch's recorded steps) against the layer's
index (conv / linear layers, input -> output), on a log axis. StableGrad is shown before its rescale
(the raw backward signal of that run, dashed) and after it (what AdamW receives, solid); the BN
network's raw gradients (its conv / linear layers only) in grey. The AdamW eps (1e-8) is drawn where it
falls inside the plotted range: gradients far below it get (almost) no AdamW update. A collapsed run is
noted in its panel.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt

from paper_figures.cnn_training_curves import seed_runs
from paper_figures.style import COLORS, LABELS, save

ARCHS = {"resnet50": "ResNet-50", "efficientnet_v2_s": "EfficientNetV2-S"}
ADAM_EPS = 1e-8


def load(run: Path, epoch_index: int = 0):
    """(layer names, per-layer median before, after, epoch number) of one epoch (negative index: from the
    end, skipping epochs without finite records), or None if the run or that epoch is missing."""
    path = run / "grad_scales.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    before, after = d["per_epoch_median_before"], d["per_epoch_median_after"]
    epochs = [i for i, b in enumerate(before) if b and any(v is not None for v in b)]
    if not epochs:
        return None
    if epoch_index >= 0:
        if epoch_index not in epochs:
            return None
        i = epoch_index
    else:
        i = epochs[epoch_index]
    return d["layers"], before[i], after[i], i + 1


def status(run: Path) -> str:
    """' - collapsed (from epoch k)' if the plotted seed (the first; its grad_scales.json is the run's) collapsed."""
    path = seed_runs(run)[0] / "metrics.json"
    if path.is_file():
        m = json.loads(path.read_text())
        if m.get("diverged"):
            return f" - collapsed (from epoch {m.get('diverged_epoch')})"
    return ""


def _xy(names, values, keep=None):
    pts = [(n, v) for n, v in zip(names, values) if (keep is None or n in keep)]
    return list(range(len(pts))), [v if v is not None and v > 0 else float("nan") for _, v in pts]


def _spread(values) -> float:
    v = [x for x in values if x is not None and x > 0 and math.isfinite(x)]
    return max(v) / min(v) if v else float("nan")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="data/cnn/runs")
    ap.add_argument("--out", default="paper_figures/cnn_grad_scales")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    archs = [a for a in ARCHS if load(runs / f"{a}-nobn-adamw") or load(runs / f"{a}-nobn-stablegrad")]
    if not archs:
        raise SystemExit(f"no BN-free CNN runs with gradient records under {runs}")
    fig, axes = plt.subplots(2, len(archs), figsize=(5.6 * len(archs), 8.4), squeeze=False)
    for j, arch in enumerate(archs):
        for row, (which, when) in enumerate(((0, "first epoch"), (-1, "last epoch"))):
            ax = axes[row, j]
            runs_ = {v: runs / f"{arch}-{v}" for v in ("bn-adamw", "nobn-adamw", "nobn-stablegrad")}
            bn, plain, sg = (load(runs_[v], which) for v in ("bn-adamw", "nobn-adamw", "nobn-stablegrad"))
            ref = plain or sg
            if ref is None:
                ax.set_visible(False)
                continue
            keep = set(ref[0])
            lows, notes = [], []
            if bn:
                x, y = _xy(bn[0], bn[1], keep)
                ax.plot(x, y, "-", lw=1, color=COLORS["bn-adamw"], label=LABELS["bn-adamw"])
                lows += y
            if plain:
                x, y = _xy(plain[0], plain[1])
                ax.plot(x, y, "-", lw=1.6, color=COLORS["nobn-adamw"], label=LABELS["nobn-adamw"])
                lows += y
                notes.append(((f"no BN, AdamW: epoch {plain[3]}, max/min {_spread(plain[1]):.0e}"
                              f"{status(runs_['nobn-adamw'])}"), COLORS["nobn-adamw"]))
            if sg:
                x, y = _xy(sg[0], sg[1])
                ax.plot(x, y, "--", lw=1, color=COLORS["nobn-stablegrad"],
                        label="no BN, StableGrad run: raw gradient (before rescale)")
                x, y2 = _xy(sg[0], sg[2])
                ax.plot(x, y2, "-", lw=1.6, color=COLORS["nobn-stablegrad"],
                        label="no BN, StableGrad run: after rescale (what AdamW receives)")
                lows += y + y2
                notes.append(((f"StableGrad run: epoch {sg[3]}, raw max/min {_spread(sg[1]):.0e}, after "
                              f"rescale {_spread(sg[2]):.0f}{status(runs_['nobn-stablegrad'])}"),
                              COLORS["nobn-stablegrad"]))
            ax.set_yscale("log")
            finite = [v for v in lows if math.isfinite(v)]
            if finite and min(finite) < 10 * ADAM_EPS:
                ax.axhline(ADAM_EPS, color="k", lw=0.9, ls=":", label="AdamW eps = 1e-8")
            for k, (text, color) in enumerate(reversed(notes)):   # above the panel, under its title
                ax.text(0.0, 1.015 + 0.055 * k, text, transform=ax.transAxes, fontsize=7.5, color=color,
                        va="bottom", fontweight="bold" if "collapsed" in text else "normal")
            ax.set_title(f"{ARCHS[arch]}, {when}", pad=6 + 13 * len(notes))
            ax.set_xlabel("conv / linear layer index (input -> output)")
            ax.set_ylabel("weight-gradient std per layer\n(median over the epoch's steps, log scale)")
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=3, fontsize=8.5,
               frameon=False, bbox_to_anchor=(0.5, -0.005))
    fig.suptitle("Per-layer weight-gradient scale, BatchNorm removed (gradient of the cross-entropy loss; "
                 "first seed)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save(fig, args.out)


if __name__ == "__main__":
    main()
