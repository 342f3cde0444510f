"""Per-layer weight-gradient scale through depth, per CNN variant: BN-free networks under each gradient
control, next to the BatchNorm networks.

    python -m paper_figures.cnn_grad_scales --summary data/summary.json --runs data/cnn/runs \
        --out paper_figures/cnn_grad_scales

One column per architecture of data/summary.json `settings.cnn.archs` that has a BN-free run with gradient
records, two rows: the first epoch and the last epoch each run completed. Each curve is one variant's
per-layer weight-gradient statistic (median over that epoch's recorded steps; the first seed's
seeds/seed<k>/grad_scales.json) against the index of the BN-free network's conv / linear layers, on a log
axis; the axis names the statistic recorded (one per figure: a run recorded with another statistic is left
out and listed in the title). Raw gradients (straight out of backward) for every control; for StableGrad also
after its rescale (what AdamW receives, thick). BatchNorm networks (dashed; grey for AdamW) show their conv /
linear layers only, matched by name. The AdamW eps (1e-8) is drawn where it falls inside the plotted range:
gradients far below it get (almost) no AdamW update. A collapsed run is noted in its panel.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib.pyplot as plt

from paper_figures.style import color, label, linestyle, one_statistic, read_summary, save, statistic_label
from pipeline.names import arch_label, parse_variant, run_name
from pipeline.runs import read_grad_scales, read_metrics, seed_dir

ADAM_EPS = 1e-8


def epoch_medians(rec: dict | None, epoch_index: int = 0):
    """(layer names, per-layer median before, after, epoch number) of one epoch (negative index: from the
    end, skipping epochs without finite records), or None if the record or that epoch is missing."""
    if rec is None or "per_epoch_median_before" not in rec:
        return None
    before, after = rec["per_epoch_median_before"], rec["per_epoch_median_after"]
    epochs = [i for i, b in enumerate(before) if b and any(v is not None for v in b)]
    if not epochs:
        return None
    if epoch_index >= 0:
        if epoch_index not in epochs:
            return None
        i = epoch_index
    else:
        i = epochs[epoch_index]
    return rec["layers"], before[i], after[i], i + 1


def status(run: Path) -> str:
    """' - collapsed (from epoch k)' if the plotted seed (the run's first) collapsed."""
    m = read_metrics(run) or {}
    seeds = m.get("seeds") or []
    sm = read_metrics(seed_dir(run, seeds[0])) if seeds else None
    if sm and sm.get("diverged"):
        return f" - collapsed (from epoch {sm.get('diverged_epoch')})"
    return ""


def _xy(names, values, keep=None):
    pts = [(n, v) for n, v in zip(names, values) if (keep is None or n in keep)]
    return list(range(1, len(pts) + 1)), [v if v is not None and v > 0 else float("nan") for _, v in pts]


def _spread(values) -> float:
    v = [x for x in values if x is not None and x > 0 and math.isfinite(x)]
    return max(v) / min(v) if v else float("nan")


def plot(summary: dict, runs: Path):
    s = summary["settings"]["cnn"]
    variants = list(s["variants"])
    nobn = [v for v in variants if not parse_variant(v)[0]]
    recs = {(a, v): read_grad_scales(Path(runs) / run_name(a, v)) for a in s["archs"] for v in variants}
    statistic, recs, skipped = one_statistic(recs)
    archs = [a for a in s["archs"] if any(epoch_medians(recs.get((a, v))) for v in nobn)]
    if not archs:
        raise SystemExit(f"no BN-free CNN runs with gradient records under {runs}")
    fig, axes = plt.subplots(2, len(archs), figsize=(5.6 * len(archs), 8.4), squeeze=False)
    for j, arch in enumerate(archs):
        for row, (which, when) in enumerate(((0, "first epoch"), (-1, "last epoch"))):
            ax = axes[row, j]
            data = {v: epoch_medians(recs.get((arch, v)), which) for v in variants}
            ref = next((data[v] for v in nobn if data[v]), None)
            if ref is None:
                ax.set_visible(False)
                continue
            keep = set(ref[0])
            lows, notes = [], []
            for v in variants:
                d = data[v]
                if d is None:
                    continue
                bn, control = parse_variant(v)
                x, y = _xy(d[0], d[1], keep if bn else None)
                raw = "raw" if control == "stablegrad" else None
                ax.plot(x, y, linestyle(v) if control != "stablegrad" else "--",
                        lw=1 if bn or control == "stablegrad" else 1.6, color=color(v),
                        label=f"{label(v)}: raw gradient" if raw else label(v))
                lows += y
                if control == "stablegrad":
                    x, y2 = _xy(d[0], d[2], keep if bn else None)
                    ax.plot(x, y2, "-", lw=2, color=color(v), label=f"{label(v)}: after rescale (what AdamW receives)")
                    lows += y2
                if not bn:
                    text = f"{label(v)}: epoch {d[3]}, raw max/min {_spread(d[1]):.0e}"
                    if control == "stablegrad":
                        text += f", after rescale {_spread(d[2]):.0f}"
                    notes.append((text + status(Path(runs) / run_name(arch, v)), color(v)))
            ax.set_yscale("log")
            finite = [v for v in lows if math.isfinite(v)]
            if finite and min(finite) < 10 * ADAM_EPS:
                ax.axhline(ADAM_EPS, color="k", lw=0.9, ls=":", label="AdamW eps = 1e-8")
            for k, (text, c) in enumerate(reversed(notes)):   # above the panel, under its title
                ax.text(0.0, 1.015 + 0.055 * k, text, transform=ax.transAxes, fontsize=7, color=c,
                        va="bottom", fontweight="bold" if "collapsed" in text else "normal")
            ax.set_title(f"{arch_label(arch)}, {when}", pad=6 + 13 * len(notes))
            ax.set_xlabel("conv / linear layer index (input -> output)")
            ax.set_ylabel(f"{statistic_label(statistic)} per layer\n(median over the epoch's steps, log scale)")
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=2, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, -0.005))
    title = "Per-layer weight-gradient scale (gradient of the cross-entropy loss; first seed)"
    if skipped:
        title += "\nleft out, recorded with another statistic: " + ", ".join(run_name(*k) for k in skipped)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.04 + 0.018 * ((len(handles) + 1) // 2), 1, 1))
    return fig


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", default="data/summary.json")
    ap.add_argument("--runs", type=Path, default=Path("data/cnn/runs"))
    ap.add_argument("--out", default="paper_figures/cnn_grad_scales")
    args = ap.parse_args(argv)
    save(plot(read_summary(args.summary), args.runs), args.out)


if __name__ == "__main__":
    main()
