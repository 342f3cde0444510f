"""The L-BFGS finish, per iteration: training loss (top row) and test-grid relative L2 error (bottom row), one
column per PDE, at one depth, one colour per gradient control (the control the run before it used).

    python -m paper_figures.pinn_lbfgs_curves --summary data/cpu_study/lbfgs/summary.json \
        --seeds data/cpu_study/lbfgs/seeds --depth 4 --out data/cpu_study/figures/pinn_lbfgs_curves_depth4

It shows whether a target error is out of reach by optimisation (the loss still falls, the error does not)
or not yet reached (both still fall). Iteration 0 is where the run ended. The first seed is drawn thick.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt

from paper_figures.style import color, label, read_summary, save
from pipeline.names import run_name


def plot(seeds: Path, problems, depth: int, optimizers):
    problems = list(problems) or ["?"]
    fig, axes = plt.subplots(2, len(problems), figsize=(3.4 * len(problems), 4.8), squeeze=False, sharex=True)
    for j, p in enumerate(problems):
        for o in optimizers:
            files = sorted((Path(seeds) / run_name(p, depth, o)).glob("seed*.json"))
            for k, f in enumerate(files):
                r = json.loads(f.read_text())
                if r.get("loss_start") is None:
                    continue
                it = [0] + [c[0] for c in r["curve"]]
                style = {"lw": 1.2, "label": label(o)} if k == 0 else {"lw": 0.6, "alpha": 0.5}
                axes[0, j].plot(it, [r["loss_start"]] + [c[1] for c in r["curve"]], color=color(o), **style)
                axes[1, j].plot(it, [r["rel_l2_start"]] + [c[2] for c in r["curve"]], color=color(o), **style)
        axes[0, j].set_title(f"{p}, depth {depth}", fontsize=9)
        axes[1, j].set_xlabel("L-BFGS iteration")
        for ax in axes[:, j]:
            ax.set_yscale("log")
    axes[0, 0].set_ylabel("training loss")
    axes[1, 0].set_ylabel("relative L2 error")
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", required=True)
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--depth", required=True, type=int)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    s = read_summary(args.summary)["settings"]["pinn"]
    save(plot(Path(args.seeds), s["problems"], args.depth, s["optimizers"]), args.out)


if __name__ == "__main__":
    main()
