"""PINN training loss vs step: one row per PDE, one column per depth, one colour per gradient control.

    python -m paper_figures.pinn_training_curves --summary data/summary.json --runs data/pinn/runs \
        --out paper_figures/pinn_training_curves

The problems, depths and controls are those of data/summary.json `settings.pinn`; a run without a
history.csv is left out. The first seed is drawn thick, the others thin in the same colour.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt

from paper_figures.style import color, label, read_summary, save
from pipeline.names import run_name
from pipeline.runs import read_history


def plot(runs: Path, problems, depths, optimizers):
    problems, depths = list(problems) or ["?"], list(depths) or ["?"]
    fig, axes = plt.subplots(len(problems), len(depths), figsize=(3.2 * len(depths), 2.5 * len(problems)),
                             squeeze=False, sharex=True)
    for i, p in enumerate(problems):
        for j, d in enumerate(depths):
            ax = axes[i, j]
            for o in optimizers:
                for k, h in enumerate(read_history(Path(runs) / run_name(p, d, o)).values()):
                    style = {"lw": 1.2, "label": label(o)} if k == 0 else {"lw": 0.6, "alpha": 0.5}
                    ax.plot(h["step"], h["loss"], color=color(o), **style)
            ax.set_yscale("log")
            ax.set_title(f"{p}, depth {d}", fontsize=9)
            if i == len(problems) - 1:
                ax.set_xlabel("step")
            if j == 0:
                ax.set_ylabel("training loss")
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        axes[0, 0].legend(list(handles.values()), list(handles), fontsize=7)
    fig.tight_layout()
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    s = read_summary(args.summary)["settings"]["pinn"]
    save(plot(Path(args.runs), s["problems"], s["depths"], s["optimizers"]), args.out)


if __name__ == "__main__":
    main()
