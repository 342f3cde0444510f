"""Figure 1, the backward-scale picture: per-layer weight-gradient scale across depth, at initialization and
during training, AdamW vs AdamW + StableGrad, for a deep PINN and the BN-free ResNet-50.

    python -m paper_figures.fig1_backward_scale --params params.yaml --pinn-runs data/pinn/runs \
        --cnn-runs data/cnn/runs --out paper_figures/fig1_backward_scale

Rows: the PINN (Burgers, else the first problem, at the deepest depth of `pinn.depths`) and the BN-free
ResNet-50. Columns: the first recorded step (initialization) and the median over the records of the second
half of training. Reads the GradScaleRecorder dumps `<run>-adamw/grad_scales.json` and
`<run>-stablegrad/grad_scales.json` (CNN: `resnet50-nobn-adamw`, `resnet50-nobn-stablegrad`) in either
format the stages write: the recorder dict itself (`cnn.trainer`, with extra per-epoch keys), or a dict of
them keyed by seed (`pinn.stages.train`; seed "0" is used, else the first seed).
AdamW: the raw backpropagated gradient (what AdamW receives). StableGrad: the raw gradient of that run
(dashed) and the rescaled gradient that AdamW receives (solid).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from paper_figures.style import COLORS, LABELS, plt, save
from pipeline.params import load


def load_recorder(path: Path) -> dict | None:
    """The GradScaleRecorder dict in `path` (bare, or keyed by seed: seed "0", else the first), or None if the
    file is missing or holds no record. `before`/`after` come back as float arrays (null -> NaN)."""
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    if "steps" not in d:  # {"<seed>": recorder dict}
        if not d:
            return None
        seed = "0" if "0" in d else min(d, key=lambda s: (not s.lstrip("-").isdigit(), s))
        d = d[seed]
    if not d.get("steps"):
        return None
    out = dict(d)
    for key in ("before", "after"):
        out[key] = np.array([[np.nan if v is None else v for v in row] for row in d[key]], dtype=float)
    out["steps"] = np.asarray(d["steps"])
    return out


def _positive(v: np.ndarray) -> np.ndarray:
    """Non-positive or non-finite values as NaN (gaps on a log axis rather than errors)."""
    v = np.asarray(v, dtype=float)
    return np.where(np.isfinite(v) & (v > 0), v, np.nan)


def snapshots(rec: dict) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """[(label, before, after)] at initialization (first record) and during training (per-layer median over
    the records in the second half of training)."""
    steps = rec["steps"]
    late = steps >= steps[-1] / 2 if steps[-1] > steps[0] else np.ones_like(steps, dtype=bool)
    late[0] = late[0] and len(steps) == 1  # the init record belongs to the first column only
    idx = np.flatnonzero(late)
    with np.errstate(all="ignore"):
        mid_b = np.nanmedian(_positive(rec["before"][idx]), axis=0)
        mid_a = np.nanmedian(_positive(rec["after"][idx]), axis=0)
    span = f"step {steps[idx[0]]}" if len(idx) == 1 else f"median of steps {steps[idx[0]]}-{steps[idx[-1]]}"
    return [(f"at initialization (step {steps[0]})", rec["before"][0], rec["after"][0]),
            (f"during training ({span})", mid_b, mid_a)]


def panels(axes, prefix: str, model: str) -> None:
    """Fill two axes (init, training) for `prefix`-adamw vs `prefix`-stablegrad."""
    adamw = load_recorder(Path(f"{prefix}-adamw") / "grad_scales.json")
    stable = load_recorder(Path(f"{prefix}-stablegrad") / "grad_scales.json")
    if adamw is None or stable is None:
        for ax in axes:
            ax.text(0.5, 0.5, f"no gradient-scale records for\n{prefix}-{{adamw,stablegrad}}", ha="center",
                    va="center", transform=ax.transAxes)
            ax.set_title(model)
        return
    statistic = adamw.get("statistic", "std")
    for ax, (label, raw, _), (_, raw_sg, out_sg) in zip(axes, snapshots(adamw), snapshots(stable)):
        x = np.arange(1, len(raw) + 1)
        ax.plot(x, _positive(raw), "-o", ms=3, lw=1.5, color=COLORS["adamw"],
                label=f"{LABELS['adamw']}: raw gradient (what AdamW receives)")
        x = np.arange(1, len(raw_sg) + 1)
        ax.plot(x, _positive(raw_sg), "--s", ms=3, lw=1.2, mfc="none", color=COLORS["stablegrad"],
                label=f"{LABELS['stablegrad']}: raw gradient, before rescale")
        ax.plot(x, _positive(out_sg), "-", lw=2, color=COLORS["stablegrad"],
                label=f"{LABELS['stablegrad']}: after rescale (what AdamW receives)")
        if len(raw) == len(raw_sg) and np.allclose(raw, raw_sg, rtol=1e-6, equal_nan=True):
            label += "; both runs, same initial weights"
        ax.set_yscale("log")
        ax.set_xlabel("layer index (1 = input side, last = prediction layer)")
        ax.set_ylabel(f"weight-gradient {statistic} (log scale)")
        ax.set_title(f"{model}\n{label}", fontsize=10)


def plot(pinn_prefix: str, pinn_title: str, cnn_prefix: str, cnn_title: str = "ResNet-50 without BatchNorm"):
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 8.2))
    panels(axes[0], pinn_prefix, pinn_title)
    panels(axes[1], cnn_prefix, cnn_title)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    return fig


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--pinn-runs", default="data/pinn/runs")
    ap.add_argument("--cnn-runs", default="data/cnn/runs")
    ap.add_argument("--out", default="paper_figures/fig1_backward_scale")
    args = ap.parse_args(argv)
    pinn = load(args.params, check_paths=False)["pinn"]
    problem = "burgers" if "burgers" in pinn.problems else pinn.problems[0]
    depth = max(pinn.depths)
    title = f"{problem.capitalize()} PINN, {depth} hidden layers (width {pinn.width}, {pinn.activation})"
    fig = plot(f"{args.pinn_runs}/{problem}-{depth}", title, f"{args.cnn_runs}/resnet50-nobn")
    save(fig, args.out)


if __name__ == "__main__":
    main()
