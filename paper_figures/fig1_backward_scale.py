"""Figure 1, the backward-scale picture: per-layer weight-gradient scale across depth, at initialization and
during training, AdamW vs AdamW + StableGrad, for a deep PINN and the BN-free ResNet-50.

    python -m paper_figures.fig1_backward_scale --params params.yaml --pinn-runs data/pinn/runs \
        --cnn-runs data/cnn/runs --out paper_figures/fig1_backward_scale

The PINN panel shows Burgers (else the first problem) at the deepest depth of `pinn.depths`. Reads the
GradScaleRecorder dumps `<run>-adamw/grad_scales.json` and `<run>-stablegrad/grad_scales.json`.
For AdamW the plotted scale is the raw backpropagated gradient; for StableGrad both the raw gradient
(dashed) and the rescaled gradient that AdamW receives (solid) are shown.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from paper_figures.style import COLORS, LABELS, plt, save
from pipeline.params import load


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def panel(ax, prefix: str, title: str, opt_names: tuple[str, str]) -> None:
    adamw, stable = (_load(Path(f"{prefix}-{name}") / "grad_scales.json") for name in opt_names)
    if adamw is None or stable is None or not adamw["steps"] or not stable["steps"]:
        ax.text(0.5, 0.5, f"no gradient-scale records for\n{prefix}-*", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_title(title)
        return
    when = [(0, "at init", 1.0), (-1, f"step {adamw['steps'][-1]}", 0.45)]
    for row, label, alpha in when:
        raw = np.asarray(adamw["before"][row])
        x = np.arange(1, len(raw) + 1)
        ax.plot(x, raw, color=COLORS["adamw"], alpha=alpha, marker=".",
                label=f"{LABELS['adamw']}, {label}")
        raw_sg = np.asarray(stable["before"][row])
        out_sg = np.asarray(stable["after"][row])
        ax.plot(x, raw_sg, color=COLORS["stablegrad"], alpha=alpha, ls="--",
                label=f"StableGrad, raw backprop, {label}")
        ax.plot(x, out_sg, color=COLORS["stablegrad"], alpha=alpha, marker=".",
                label=f"StableGrad, after rescale, {label}")
    ax.set_yscale("log")
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel(f"weight-gradient {adamw.get('statistic', 'std')} (log)")
    ax.set_title(title)
    ax.legend(fontsize=7)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--pinn-runs", default="data/pinn/runs")
    ap.add_argument("--cnn-runs", default="data/cnn/runs")
    ap.add_argument("--out", default="paper_figures/fig1_backward_scale")
    args = ap.parse_args()
    pinn = load(args.params, check_paths=False)["pinn"]
    problem = "burgers" if "burgers" in pinn.problems else pinn.problems[0]
    depth = max(pinn.depths)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    panel(axes[0], f"{args.pinn_runs}/{problem}-{depth}", f"{problem} PINN, {depth} hidden layers",
          ("adamw", "stablegrad"))
    panel(axes[1], f"{args.cnn_runs}/resnet50-nobn", "ResNet-50 without BatchNorm", ("adamw", "stablegrad"))
    save(fig, args.out)


if __name__ == "__main__":
    main()
