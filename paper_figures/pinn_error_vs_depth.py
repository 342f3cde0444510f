"""Relative L2 error vs depth, one panel per PDE, one line per gradient control (log y).

    python -m paper_figures.pinn_error_vs_depth --summary data/summary.json --out paper_figures/pinn_error_vs_depth

The problems, depths and controls are those of data/summary.json `settings.pinn`; a run missing from the
summary is left out. Each point is the median over seeds with a [min, max] bar; a run whose every seed
diverged is an x above the panel's largest error. A control run at some depths only is drawn dotted.
"""
from __future__ import annotations

import argparse

import matplotlib.pyplot as plt
from matplotlib.ticker import NullLocator

from paper_figures.style import color, label, read_summary, save


def plot(summary: dict):
    s = summary["settings"]["pinn"]
    runs = summary.get("pinn", {})
    problems = s["problems"] or [None]
    fig, axes = plt.subplots(1, len(problems), figsize=(3.6 * len(problems), 3.2), squeeze=False)
    for ax, p in zip(axes[0], problems):
        by_depth = runs.get(p, {})
        depths = [d for d in s["depths"] if str(d) in by_depth]
        cells = [m for d in depths for m in by_depth[str(d)].values()]
        top = max((m["rel_l2"] for m in cells if m.get("rel_l2")), default=1.0)
        for o in s["optimizers"]:
            pts = [(d, by_depth[str(d)][o]) for d in depths if o in by_depth[str(d)]]
            ok = [(d, m) for d, m in pts if m.get("rel_l2") is not None]
            if ok:
                x = [d for d, _ in ok]
                y = [m["rel_l2"] for _, m in ok]
                lo = [m["rel_l2"] - (m.get("rel_l2_min") or m["rel_l2"]) for _, m in ok]
                hi = [(m.get("rel_l2_max") or m["rel_l2"]) - m["rel_l2"] for _, m in ok]
                some = len(pts) < len(depths)   # a control run at some depths only: dotted, not a trend
                ax.errorbar(x, y, yerr=[lo, hi], fmt="o:" if some else "o-", ms=4, capsize=2, color=color(o),
                            label=label(o) + (f" (depths {', '.join(map(str, x))})" if some else ""))
            bad = [d for d, m in pts if m.get("rel_l2") is None]
            if bad:
                ax.plot(bad, [top * 1.5] * len(bad), "x", ms=9, mew=2, color=color(o),
                        label=f"{label(o)}: diverged")
        ax.set_yscale("log")
        if depths:
            ax.set_xscale("log", base=2)
            ax.set_xticks(depths, [str(d) for d in depths])
            ax.xaxis.set_minor_locator(NullLocator())
        else:
            ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(str(p).capitalize())
        ax.set_xlabel("depth (hidden layers)")
    axes[0][0].set_ylabel("relative L2 error\n(median, [min, max] over seeds)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.tight_layout()
    if handles:   # below the panels, where it hides no point
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
        fig.subplots_adjust(bottom=0.3)
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    save(plot(read_summary(args.summary)), args.out)


if __name__ == "__main__":
    main()
