"""Training curves of the three CNN variants per architecture: training loss and test accuracy vs epoch.

    python -m paper_figures.cnn_training_curves --runs data/cnn/runs --out paper_figures/cnn_training_curves

Reads <runs>/<arch>-<variant>/history.csv and metrics.json; a collapsed run ends with an x at the epoch
it was stopped, and its legend entry says so.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from paper_figures.style import COLORS, LABELS, save

ARCHS = {"resnet50": "ResNet-50", "efficientnet_v2_s": "EfficientNetV2-S"}
VARIANTS = ("bn-adamw", "nobn-adamw", "nobn-stablegrad")


def read_history(path: Path) -> dict[str, list[float]]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in rows[0]} if rows else {}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="data/cnn/runs")
    ap.add_argument("--out", default="paper_figures/cnn_training_curves")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    archs = [a for a in ARCHS if any((runs / f"{a}-{v}" / "history.csv").is_file() for v in VARIANTS)]
    if not archs:
        raise SystemExit(f"no CNN runs under {runs}")
    fig, axes = plt.subplots(2, len(archs), figsize=(4.6 * len(archs), 6.2), squeeze=False)
    dataset = "?"
    for j, arch in enumerate(archs):
        ax_loss, ax_acc = axes[0, j], axes[1, j]
        for variant in VARIANTS:
            run = runs / f"{arch}-{variant}"
            if not (run / "history.csv").is_file():
                continue
            h = read_history(run / "history.csv")
            m = json.loads((run / "metrics.json").read_text())
            dataset = m.get("dataset", dataset)
            label = LABELS[variant] + (f" (collapsed, epoch {m['diverged_epoch']})" if m["diverged"] else "")
            c = COLORS[variant]
            loss = [v if math.isfinite(v) else float("nan") for v in h["loss"]]
            ax_loss.plot(h["epoch"], loss, "-o", ms=3, color=c, label=label)
            ax_acc.plot(h["epoch"], [100 * a for a in h["test_acc"]], "-o", ms=3, color=c, label=label)
            if m["diverged"]:
                last = h["epoch"][-1]
                ax_acc.plot([last], [100 * h["test_acc"][-1]], "x", ms=10, mew=2, color=c)
                finite = [v for v in loss if math.isfinite(v)]
                if finite:
                    ax_loss.plot([last], [finite[-1]], "x", ms=10, mew=2, color=c)
        chance = 100.0 / {"digits": 10, "cifar100": 100, "imagenet": 1000}.get(dataset, 10)
        ax_acc.axhline(chance, color="k", lw=0.8, ls=":", label="chance")
        ax_loss.set_title(ARCHS[arch])
        ax_loss.set_yscale("log")
        ax_loss.yaxis.set_minor_formatter("{x:.2g}")
        ax_loss.yaxis.set_major_formatter("{x:.2g}")
        for ax in (ax_loss, ax_acc):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_loss.set_ylabel("training loss")
        ax_acc.set_ylabel("test accuracy (%)")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylim(0, 100)
        ax_acc.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"BatchNorm removed, nothing else changed ({dataset})")
    fig.tight_layout()
    save(fig, args.out)


if __name__ == "__main__":
    main()
