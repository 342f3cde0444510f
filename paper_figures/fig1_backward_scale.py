"""Figure 1, the backward-scale picture: per-layer weight-gradient scale across depth, at initialization and
during training, AdamW vs AdamW + StableGrad, for a deep PINN and a BN-free CNN.

    python -m paper_figures.fig1_backward_scale --summary data/summary.json --pinn-runs data/pinn/runs \
        --cnn-runs data/cnn/runs --out paper_figures/fig1_backward_scale

Rows: the PINN (Burgers, else the first problem of data/summary.json `settings.pinn.problems`, at the
deepest depth) and the BN-free CNN (`<arch>-nobn-adamw` / `<arch>-nobn-stablegrad` of the first arch of
`settings.cnn.archs`, resnet50 if present). Columns: the first recorded step (initialization) and the
median over the records of the second half of training. Reads each run's first-seed GradScaleRecorder dump
(`pipeline.runs.read_grad_scales`). The axis names the statistic recorded (one per figure: a run recorded
with another statistic than the first one found is left out and named in its panel).
AdamW: the raw backpropagated gradient (what AdamW receives). StableGrad: the raw gradient of that run
(dashed) and the rescaled gradient that AdamW receives (solid).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from paper_figures.style import color, label, one_statistic, plt, read_summary, save, statistic_label
from pipeline.names import arch_label, run_name
from pipeline.runs import read_grad_scales


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


def _message(axes, model: str, text: str) -> None:
    for ax in axes:
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
        ax.set_title(model)


def panels(axes, recs: dict, statistic: str, model: str, name: str) -> None:
    """Fill two axes (init, training) from recs = {"adamw": rec, "stablegrad": rec} (either may be None)."""
    adamw, stable = recs.get("adamw"), recs.get("stablegrad")
    if adamw is None and stable is None:
        _message(axes, model, f"no {statistic} gradient-scale records for\n{name}-{{adamw,stablegrad}}")
        return
    snaps_a = snapshots(adamw) if adamw is not None else [None, None]
    snaps_s = snapshots(stable) if stable is not None else [None, None]
    for ax, sa, ss in zip(axes, snaps_a, snaps_s):
        when = (sa or ss)[0]
        if sa is not None:
            x = np.arange(1, len(sa[1]) + 1)
            ax.plot(x, _positive(sa[1]), "-o", ms=3, lw=1.5, color=color("adamw"),
                    label=f"{label('adamw')}: raw gradient (what AdamW receives)")
        if ss is not None:
            x = np.arange(1, len(ss[1]) + 1)
            ax.plot(x, _positive(ss[1]), "--s", ms=3, lw=1.2, mfc="none", color=color("stablegrad"),
                    label=f"{label('stablegrad')}: raw gradient, before rescale")
            ax.plot(x, _positive(ss[2]), "-", lw=2, color=color("stablegrad"),
                    label=f"{label('stablegrad')}: after rescale (what AdamW receives)")
        if (sa is not None and ss is not None and when.startswith("at init") and len(sa[1]) == len(ss[1])
                and np.allclose(sa[1], ss[1], rtol=1e-6, equal_nan=True)):
            when += "; both runs, same initial weights"
        missing = [c for c, r in (("adamw", adamw), ("stablegrad", stable)) if r is None]
        if missing:
            when += f"\n(no {statistic} records for {', '.join(label(c) for c in missing)})"
        ax.set_yscale("log")
        ax.set_xlabel("layer index (1 = input side, last = prediction layer)")
        ax.set_ylabel(f"{statistic_label(statistic)} (log scale)")
        ax.set_title(f"{model}\n{when}", fontsize=10)


def plot(rows: list[tuple[str, str, Path]]):
    """rows: [(title, run name prefix, runs folder)]; each row reads <runs>/<prefix>-{adamw,stablegrad}.
    For the CNN the prefix is `<arch>-nobn`."""
    recs = {(i, c): read_grad_scales(Path(runs) / f"{prefix}-{c}") for i, (_, prefix, runs) in enumerate(rows)
            for c in ("adamw", "stablegrad")}
    statistic, kept, skipped = one_statistic(recs)
    if skipped:
        print(f"fig1: left out (recorded with another statistic than {statistic}): "
              + ", ".join(f"{rows[i][1]}-{c}" for i, c in skipped))
    fig, axes = plt.subplots(len(rows), 2, figsize=(11.5, 4.1 * len(rows)), squeeze=False)
    for i, (title, prefix, _) in enumerate(rows):
        panels(axes[i], {c: kept.get((i, c)) for c in ("adamw", "stablegrad")}, statistic or "gradient-scale",
               title, prefix)
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, frameon=False)
    return fig


def default_rows(summary: dict, pinn_runs: Path, cnn_runs: Path) -> list[tuple[str, str, Path]]:
    """The PINN row and the BN-free CNN row of Figure 1, from the summary's settings."""
    rows = []
    pinn = summary["settings"]["pinn"]
    if pinn["problems"] and pinn["depths"]:
        problem = "burgers" if "burgers" in pinn["problems"] else pinn["problems"][0]
        depth = max(pinn["depths"])
        rows.append((f"{problem.capitalize()} PINN, {depth} hidden layers", run_name(problem, depth), pinn_runs))
    archs = summary["settings"]["cnn"]["archs"]
    if archs:
        arch = "resnet50" if "resnet50" in archs else archs[0]
        rows.append((f"{arch_label(arch)} without BatchNorm", run_name(arch, "nobn"), cnn_runs))
    if not rows:
        raise SystemExit("no PINN or CNN runs in the summary's settings")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", default="data/summary.json")
    ap.add_argument("--pinn-runs", type=Path, default=Path("data/pinn/runs"))
    ap.add_argument("--cnn-runs", type=Path, default=Path("data/cnn/runs"))
    ap.add_argument("--out", default="paper_figures/fig1_backward_scale")
    args = ap.parse_args(argv)
    save(plot(default_rows(read_summary(args.summary), args.pinn_runs, args.cnn_runs)), args.out)


if __name__ == "__main__":
    main()
