"""CNN training curves per architecture: training loss and test accuracy vs epoch, one line per variant.

    python -m paper_figures.cnn_training_curves --summary data/summary.json --runs data/cnn/runs \
        --out paper_figures/cnn_training_curves

The architectures and variants are those of data/summary.json `settings.cnn` (a run missing from the
summary is left out). Every seed of a run is read from its history.csv: the first seed is drawn with
markers, the others as thin lines of the same colour. A collapsed seed (its seeds/seed<k>/metrics.json
`diverged`) ends with a large x at the last epoch it ran; the legend entry says in how many seeds the variant
collapsed. The title records the setting shared by the runs (data set, stem, image size, lr, epochs, seeds).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from paper_figures.style import color, label, linestyle, read_summary, save
from pipeline.names import arch_label, run_name
from pipeline.runs import read_history, read_metrics, seed_dir

CLASSES = {"digits": 10, "cifar100": 100, "imagenet": 1000}


def setting_text(metrics: list[dict]) -> str:
    """The shared setting of the plotted runs, e.g. 'digits, imagenet stem, 32x32 px, AdamW lr 0.003'."""
    if not metrics:
        return ""
    m = metrics[0]
    parts = [m.get("dataset", "?")]
    if "stem" in m:
        parts.append(f"{m['stem']} stem")
    if "image_size" in m:
        parts.append(f"{m['image_size']}x{m['image_size']} px")
    if "lr" in m:
        parts.append(f"lr {m['lr']:g}")
    if "epochs_planned" in m:
        parts.append(f"{m['epochs_planned']} epochs")
    if "seeds" in m:
        parts.append(f"{len(m['seeds'])} seed{'s' if len(m['seeds']) > 1 else ''}")
    return ", ".join(parts)


def plot(summary: dict, runs: Path):
    s = summary["settings"]["cnn"]
    done = summary.get("cnn", {})
    archs = [a for a in s["archs"] if done.get(a)]
    if not archs:
        raise SystemExit("no CNN runs in the summary")
    fig, axes = plt.subplots(2, len(archs), figsize=(4.8 * len(archs), 6.6 + 0.18 * len(s["variants"])),
                             squeeze=False, sharex="col")
    all_metrics: list[dict] = []
    for j, arch in enumerate(archs):
        ax_loss, ax_acc = axes[0, j], axes[1, j]
        dataset = "digits"
        for variant in s["variants"]:
            m = done[arch].get(variant)
            if m is None:
                continue
            run = Path(runs) / run_name(arch, variant)
            all_metrics.append(m)
            dataset = m.get("dataset", dataset)
            n_seeds = len(m.get("seeds", [0]))
            collapsed = m.get("diverged_seeds", int(bool(m.get("diverged"))))
            text = label(variant) + (f" - collapsed in {collapsed}/{n_seeds} seed{'s' if n_seeds > 1 else ''}"
                                     if collapsed else "")
            c, ls = color(variant), linestyle(variant)
            for k, (seed, h) in enumerate(read_history(run).items()):
                sm = read_metrics(seed_dir(run, seed)) or {}
                style = {"marker": "o", "ms": 3, "lw": 1.5, "label": text} if k == 0 else {"lw": 0.8, "alpha": 0.6}
                epoch = h["epoch"]
                loss = np.where(np.isfinite(h["loss"]), h["loss"], np.nan)
                acc = 100 * h["test_acc"]
                ax_loss.plot(epoch, loss, ls, color=c, **style)
                ax_acc.plot(epoch, acc, ls, color=c, **style)
                if sm.get("diverged") and len(epoch):
                    ax_acc.plot([epoch[-1]], [acc[-1]], "x", ms=9, mew=2, color=c, zorder=5)
                    finite = [(e, v) for e, v in zip(epoch, loss) if math.isfinite(v)]
                    if finite:
                        ax_loss.plot([finite[-1][0]], [finite[-1][1]], "x", ms=9, mew=2, color=c, zorder=5)
        chance = 100.0 / CLASSES.get(dataset, 10)
        ax_acc.axhline(chance, color="k", lw=0.8, ls=":", label=f"chance ({chance:.0f} %)")
        ax_loss.set_title(arch_label(arch))
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
    fig.suptitle(f"With and without BatchNorm, per gradient control\n({setting_text(all_metrics)}; "
                 "x = collapsed seed)", fontsize=11)
    fig.tight_layout()
    return fig


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", default="data/summary.json")
    ap.add_argument("--runs", type=Path, default=Path("data/cnn/runs"))
    ap.add_argument("--out", default="paper_figures/cnn_training_curves")
    args = ap.parse_args(argv)
    save(plot(read_summary(args.summary), args.runs), args.out)


if __name__ == "__main__":
    main()
