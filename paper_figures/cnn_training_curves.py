"""Training curves of the three CNN variants per architecture: training loss and test accuracy vs epoch.

    python -m paper_figures.cnn_training_curves --runs data/cnn/runs --out paper_figures/cnn_training_curves

Reads every seed of each run, <runs>/<arch>-<variant>/seeds/seed<k>/{history.csv, metrics.json} (or, for a
run written before seeds, <runs>/<arch>-<variant>/ itself): the first seed is drawn with markers, the others
as thin lines of the same colour. A collapsed seed (its metrics.json `diverged`) ends with a large x at the
last epoch it ran; the legend entry says in how many seeds the variant collapsed. The title records the
setting shared by the runs (data set, stem, image size, lr, epochs, seeds), read from metrics.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from paper_figures.style import COLORS, LABELS, save

ARCHS = {"resnet50": "ResNet-50", "efficientnet_v2_s": "EfficientNetV2-S"}
VARIANTS = ("bn-adamw", "nobn-adamw", "nobn-stablegrad")
CLASSES = {"digits": 10, "cifar100": 100, "imagenet": 1000}


def read_history(path: Path) -> dict[str, list[float]]:
    def num(v: str) -> float:
        return float(v) if v not in ("", None) else float("nan")

    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: [num(r[k]) for r in rows] for k in rows[0]} if rows else {}


def seed_runs(run: Path) -> list[Path]:
    """The folders of a run's seeds, in the order of its metrics.json `seeds` (first seed first), or [run] for a
    run written before seeds."""
    seeds = json.loads((run / "metrics.json").read_text()).get("seeds") if (run / "metrics.json").is_file() else None
    dirs = [run / "seeds" / f"seed{s}" for s in seeds or []]
    return [p for p in dirs if (p / "history.csv").is_file()] or [run]


def setting_text(metrics: list[dict]) -> str:
    """The shared setting of the plotted runs, e.g. 'digits, imagenet stem, 32x32, AdamW lr 1e-03'."""
    if not metrics:
        return ""
    m = metrics[0]
    parts = [m.get("dataset", "?")]
    if "stem" in m:
        parts.append(f"{m['stem']} stem")
    if "image_size" in m:
        parts.append(f"{m['image_size']}x{m['image_size']} px")
    if "lr" in m:
        parts.append(f"AdamW lr {m['lr']:g}")
    if "epochs_planned" in m:
        parts.append(f"{m['epochs_planned']} epochs")
    if "seeds" in m:
        parts.append(f"{len(m['seeds'])} seed{'s' if len(m['seeds']) > 1 else ''}")
    return ", ".join(parts)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="data/cnn/runs")
    ap.add_argument("--out", default="paper_figures/cnn_training_curves")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    archs = [a for a in ARCHS if any((runs / f"{a}-{v}" / "metrics.json").is_file() for v in VARIANTS)]
    if not archs:
        raise SystemExit(f"no CNN runs under {runs}")
    fig, axes = plt.subplots(2, len(archs), figsize=(4.8 * len(archs), 6.6), squeeze=False, sharex="col")
    all_metrics: list[dict] = []
    for j, arch in enumerate(archs):
        ax_loss, ax_acc = axes[0, j], axes[1, j]
        dataset = "digits"
        for variant in VARIANTS:
            run = runs / f"{arch}-{variant}"
            if not (run / "metrics.json").is_file():
                continue
            m = json.loads((run / "metrics.json").read_text())
            all_metrics.append(m)
            dataset = m.get("dataset", dataset)
            n_seeds = len(m.get("seeds", [0]))
            collapsed = m.get("diverged_seeds", int(bool(m["diverged"])))
            label = LABELS[variant] + (f" - collapsed in {collapsed}/{n_seeds} seed{'s' if n_seeds > 1 else ''}"
                                       if collapsed else "")
            c = COLORS[variant]
            ls = "-" if variant != "bn-adamw" else "--"
            for k, seed_dir in enumerate(seed_runs(run)):
                h = read_history(seed_dir / "history.csv")
                sm = json.loads((seed_dir / "metrics.json").read_text())
                style = {"marker": "o", "ms": 3, "lw": 1.5, "label": label} if k == 0 else {"lw": 0.8, "alpha": 0.6}
                loss = [v if math.isfinite(v) else float("nan") for v in h["loss"]]
                ax_loss.plot(h["epoch"], loss, ls, color=c, **style)
                acc = [100 * a for a in h["test_acc"]]
                ax_acc.plot(h["epoch"], acc, ls, color=c, **style)
                if sm["diverged"]:
                    last = h["epoch"][-1]
                    ax_acc.plot([last], [acc[-1]], "x", ms=9, mew=2, color=c, zorder=5)
                    finite = [(e, v) for e, v in zip(h["epoch"], loss) if math.isfinite(v)]
                    if finite:
                        ax_loss.plot([finite[-1][0]], [finite[-1][1]], "x", ms=9, mew=2, color=c, zorder=5)
        chance = 100.0 / CLASSES.get(dataset, 10)
        ax_acc.axhline(chance, color="k", lw=0.8, ls=":", label=f"chance ({chance:.0f} %)")
        ax_loss.set_title(ARCHS[arch])
        ax_loss.set_yscale("log")
        ax_loss.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
        ax_loss.yaxis.set_major_formatter(ScalarFormatter())
        ax_loss.yaxis.set_minor_formatter(NullFormatter())
        for ax in (ax_loss, ax_acc):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelbottom=True)
        ax_loss.set_ylabel("training loss (nats, log scale)")
        ax_loss.set_xlabel("epoch")
        ax_acc.set_ylabel("test top-1 accuracy (%)")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylim(0, 100)
        ax_acc.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncol=1, frameon=False)
    fig.suptitle(f"BatchNorm removed, nothing else changed\n({setting_text(all_metrics)}; x = collapsed seed)",
                 fontsize=11)
    fig.tight_layout()
    save(fig, args.out)


if __name__ == "__main__":
    main()
