"""Burgers at the deepest depth: reference, each gradient control's prediction and its |error|.

    python -m paper_figures.burgers_maps --summary data/summary.json --runs data/pinn/runs --out paper_figures/burgers_maps

The depth is the largest of data/summary.json `settings.pinn.depths`, the controls those of
`settings.pinn.optimizers` whose run has a prediction (`<run>/seeds/seed<first>/prediction.npz`, the first
seed's prediction on the test grid; u[t, x]); the others are left out. Burgers if it is among the problems,
else the first problem.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from paper_figures.style import color, label, read_summary, save
from pipeline.names import run_name
from pipeline.runs import read_metrics, seed_dir


def read_prediction(run: Path) -> tuple[dict, dict] | None:
    """(the first seed's prediction.npz arrays, the run's metrics.json), or None if either is missing."""
    m = read_metrics(run)
    if not m or not m.get("seeds"):
        return None
    f = seed_dir(run, m["seeds"][0]) / "prediction.npz"
    if not f.is_file():
        return None
    with np.load(f) as d:
        return {k: d[k] for k in d.files}, m


def first_seed_error(m: dict):
    """The first seed's relative L2 error (the seed whose prediction is drawn)."""
    per_seed = m.get("rel_l2_seeds")
    return per_seed[0] if per_seed else m.get("rel_l2")


def plot(runs: Path, problem: str, depth: int, optimizers):
    loaded = {o: read_prediction(Path(runs) / run_name(problem, depth, o)) for o in optimizers}
    loaded = {o: x for o, x in loaded.items() if x is not None}
    if not loaded:
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.text(0.5, 0.5, f"no predictions for {problem} at depth {depth}", ha="center", va="center")
        ax.set_axis_off()
        return fig
    opts = list(loaded)
    first = loaded[opts[0]][0]
    x, t, ref = first["axis0"], first["axis1"], first["u_ref"]
    preds = {o: d["u"] for o, (d, _) in loaded.items()}
    n = len(opts)
    fig, axes = plt.subplots(2, n + 1, figsize=(3.6 * (n + 1), 6.2), layout="constrained", squeeze=False)
    ext = [t[0], t[-1], x[0], x[-1]]
    vmax = float(np.nanmax(np.abs(ref))) or 1.0
    kw = {"origin": "lower", "aspect": "auto", "extent": ext, "cmap": "RdBu_r", "vmin": -vmax, "vmax": vmax}
    im = axes[0, 0].imshow(ref.T, **kw)
    axes[0, 0].set_title("reference (Cole-Hopf)" if problem == "burgers" else "reference")
    with np.errstate(invalid="ignore"):
        emax = max(float(np.nanmax(np.abs(preds[o] - ref))) for o in opts)
    for j, o in enumerate(opts, 1):
        err = first_seed_error(loaded[o][1])
        axes[0, j].imshow(np.clip(preds[o], -1.5 * vmax, 1.5 * vmax).T, **kw)
        e = "diverged" if err is None else f"rel. L2 {err:.2e}"
        axes[0, j].set_title(f"{label(o)}\n{e} (first seed)", fontsize=9)
        ime = axes[1, j].imshow(np.abs(preds[o] - ref).T, origin="lower", aspect="auto", extent=ext,
                                cmap="magma", vmin=0, vmax=emax)
        axes[1, j].set_title(f"|error|, {label(o)}", fontsize=9)
    fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8, label="u")
    fig.colorbar(ime, ax=axes[1, 1:].tolist(), shrink=0.8, label="|u - u_ref|")
    ax = axes[1, 0]
    i = int(np.argmin(np.abs(t - (t[0] + 0.75 * (t[-1] - t[0])))))
    ax.plot(x, ref[i], "k-", lw=2, label="reference")
    for k, o in enumerate(opts):
        ax.plot(x, preds[o][i], ["-", "--", ":", "-."][k % 4], color=color(o), lw=1.5, label=label(o))
    ax.set_title(f"u(x, t = {t[i]:.2f})")
    ax.set_xlabel("x")
    ax.legend(fontsize=7)
    for a in axes[0, :].tolist() + axes[1, 1:].tolist():
        a.set_xlabel("t")
        a.grid(False)
    axes[0, 0].set_ylabel("x")
    axes[1, 1].set_ylabel("x")
    fig.suptitle(f"{problem.capitalize()}, depth {depth}")
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    s = read_summary(args.summary)["settings"]["pinn"]
    if not s["problems"] or not s["depths"]:
        raise SystemExit(f"{args.summary}: no PINN problems or depths in settings")
    problem = "burgers" if "burgers" in s["problems"] else s["problems"][0]
    save(plot(Path(args.runs), problem, max(s["depths"]), s["optimizers"]), args.out)


if __name__ == "__main__":
    main()
