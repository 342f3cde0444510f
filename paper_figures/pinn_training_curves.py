"""PINN training loss vs step: one row per PDE, one column per depth, AdamW vs AdamW + StableGrad.

    python -m paper_figures.pinn_training_curves --params params.yaml --runs data/pinn/runs \
        --out paper_figures/pinn_training_curves
"""
import argparse
import csv
from pathlib import Path

import matplotlib.pyplot as plt

from paper_figures.style import COLORS, LABELS, save
from pipeline.params import load_section


def read_history(path: Path):
    """(steps, losses) of the first seed in a history.csv."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    first = rows[0]["seed"] if rows else None
    rows = [r for r in rows if r["seed"] == first]
    return [int(r["step"]) for r in rows], [float(r["loss"]) for r in rows]


def plot(runs: Path, problems, depths, optimizers):
    fig, axes = plt.subplots(len(problems), len(depths), figsize=(3.2 * len(depths), 2.5 * len(problems)),
                             squeeze=False, sharex=True)
    for i, p in enumerate(problems):
        for j, d in enumerate(depths):
            ax = axes[i, j]
            for o in optimizers:
                f = runs / f"{p}-{d}-{o}" / "history.csv"
                if f.exists():
                    ax.plot(*read_history(f), color=COLORS[o], label=LABELS[o], lw=1.2)
            ax.set_yscale("log")
            ax.set_title(f"{p}, depth {d}", fontsize=9)
            if i == len(problems) - 1:
                ax.set_xlabel("step")
            if j == 0:
                ax.set_ylabel("training loss")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    cfg = load_section(args.params, "pinn")
    save(plot(Path(args.runs), cfg.problems, cfg.depths, cfg.optimizers), args.out)


if __name__ == "__main__":
    main()
