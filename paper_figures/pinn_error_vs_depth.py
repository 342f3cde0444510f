"""Relative L2 error vs depth, one panel per PDE, one line per gradient control (log y).

    python -m paper_figures.pinn_error_vs_depth --summary data/summary.json --out paper_figures/pinn_error_vs_depth

The problems, depths and controls are those of data/summary.json `settings.pinn`; a run missing from the
summary is left out. Each point is the median over seeds with a [min, max] bar; a run whose every seed
diverged is an x above the panel's largest error. A control run at some depths only is drawn dotted. With
`--deepxde` (a benchmarks/deepxde_reference.py output) DeepXDE out of the box is drawn as its own black dashed
line with its seed range (after its L-BFGS phase with `--after-lbfgs`), at the depths it was run.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import NullLocator

from paper_figures.style import color, label, read_summary, save

DEEPXDE_LABEL = "DeepXDE out of the box"


def _errorbar(ax, points, **style):
    """points: (depth, median, min, max) -> one line with [min, max] bars."""
    x, y, lo, hi = zip(*points)
    ax.errorbar(x, y, yerr=[[m - a for m, a in zip(y, lo)], [b - m for m, b in zip(y, hi)]], ms=4, capsize=2,
                **style)


def deepxde_points(deepxde: dict, problem: str, depths, after_lbfgs: bool) -> list:
    """(depth, median, min, max) of DeepXDE's seeds at each of `depths` it was run at."""
    key = "rel_l2_lbfgs" if after_lbfgs else "rel_l2"
    out = []
    for d in depths:
        seeds = [e for e in deepxde.get(problem, {}).get(str(d), {}).get(f"{key}_seeds", []) if e is not None]
        if seeds:
            out.append((d, statistics.median(seeds), min(seeds), max(seeds)))
    return out


def plot(summary: dict, deepxde: dict | None = None, after_lbfgs: bool = False):
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
                lo = [m.get("rel_l2_min") or m["rel_l2"] for _, m in ok]
                hi = [m.get("rel_l2_max") or m["rel_l2"] for _, m in ok]
                some = len(pts) < len(depths)   # a control run at some depths only: dotted, not a trend
                _errorbar(ax, list(zip(x, y, lo, hi)), fmt="o:" if some else "o-", color=color(o),
                          label=label(o) + (f" (depths {', '.join(map(str, x))})" if some else ""))
        dx = deepxde_points(deepxde or {}, p, s["depths"], after_lbfgs)
        if dx:
            _errorbar(ax, dx, fmt="s--", color="black", mfc="none", label=DEEPXDE_LABEL)
        for o in s["optimizers"]:
            pts = [(d, by_depth[str(d)][o]) for d in depths if o in by_depth[str(d)]]
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
    ap.add_argument("--deepxde", default=None, help="a benchmarks/deepxde_reference.py output: its own line")
    ap.add_argument("--after-lbfgs", action="store_true", help="DeepXDE's errors after its L-BFGS phase")
    args = ap.parse_args(argv)
    deepxde = json.loads(Path(args.deepxde).read_text())["deepxde"] if args.deepxde else None
    save(plot(read_summary(args.summary), deepxde, args.after_lbfgs), args.out)


if __name__ == "__main__":
    main()
