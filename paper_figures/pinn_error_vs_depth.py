"""Relative L2 error vs depth, one panel per PDE, AdamW vs AdamW + StableGrad (log y).

    python -m paper_figures.pinn_error_vs_depth --summary data/pinn/summary.json --out paper_figures/pinn_error_vs_depth
"""
import argparse
import json

import matplotlib.pyplot as plt
from matplotlib.ticker import NullLocator

from paper_figures.style import COLORS, LABELS, save


def plot(summary: dict):
    problems = list(summary)
    fig, axes = plt.subplots(1, len(problems), figsize=(3.6 * len(problems), 3.2), squeeze=False)
    for ax, p in zip(axes[0], problems):
        depths = sorted(summary[p], key=int)
        opts = sorted({o for d in depths for o in summary[p][d]}, key=lambda o: o != "adamw")
        top = max((m["rel_l2"] for d in depths for m in summary[p][d].values() if m["rel_l2"]), default=1.0)
        for o in opts:
            pts = [(int(d), summary[p][d][o]) for d in depths if o in summary[p][d]]
            ok = [(d, m["rel_l2"]) for d, m in pts if m["rel_l2"] is not None]
            ax.plot(*zip(*ok), "o-", color=COLORS[o], label=LABELS[o]) if ok else None
            bad = [d for d, m in pts if m["rel_l2"] is None]
            if bad:
                ax.plot(bad, [top * 1.5] * len(bad), "x", ms=9, mew=2, color=COLORS[o],
                        label=f"{LABELS[o]}: diverged")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks([int(d) for d in depths], [str(d) for d in depths])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title(p.capitalize())
        ax.set_xlabel("depth (hidden layers)")
    axes[0][0].set_ylabel("relative L2 error")
    axes[0][0].legend()
    fig.tight_layout()
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    with open(args.summary) as f:
        save(plot(json.load(f)), args.out)


if __name__ == "__main__":
    main()
