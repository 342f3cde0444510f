"""Burgers at the deepest depth: reference, predictions and |error| of AdamW and AdamW + StableGrad.

    python -m paper_figures.burgers_maps --params params.yaml --runs data/pinn/runs --out paper_figures/burgers_maps
"""
import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from paper_figures.style import COLORS, LABELS, save
from pipeline.params import load_section


def plot(runs: Path, depth: int, optimizers):
    preds, errs = {}, {}
    for o in optimizers:
        d = np.load(runs / f"burgers-{depth}-{o}" / "prediction.npz")
        x, t, ref = d["axis0"], d["axis1"], d["u_ref"]
        preds[o] = d["u"]
        m = json.loads((runs / f"burgers-{depth}-{o}" / "metrics.json").read_text())
        errs[o] = m["rel_l2"]
    n = len(optimizers)
    fig, axes = plt.subplots(2, n + 1, figsize=(3.6 * (n + 1), 6.2), layout="constrained")
    ext = [t[0], t[-1], x[0], x[-1]]
    kw = {"origin": "lower", "aspect": "auto", "extent": ext, "cmap": "RdBu_r", "vmin": -1, "vmax": 1}
    im = axes[0, 0].imshow(ref.T, **kw)
    axes[0, 0].set_title("reference (Cole-Hopf)")
    emax = max(np.nanmax(np.abs(preds[o] - ref)) for o in optimizers)
    for j, o in enumerate(optimizers, 1):
        axes[0, j].imshow(np.clip(preds[o], -1.5, 1.5).T, **kw)
        e = "diverged" if errs[o] is None else f"rel. L2 {errs[o]:.2e}"
        axes[0, j].set_title(f"{LABELS[o]}\n{e}")
        ime = axes[1, j].imshow(np.abs(preds[o] - ref).T, origin="lower", aspect="auto", extent=ext,
                                cmap="magma", vmin=0, vmax=emax)
        axes[1, j].set_title(f"|error|, {LABELS[o]}")
    fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8, label="u")
    fig.colorbar(ime, ax=axes[1, 1:].tolist(), shrink=0.8, label="|u - u_ref|")
    ax = axes[1, 0]
    i = int(np.argmin(np.abs(t - 0.75)))
    ax.plot(x, ref[i], "k-", lw=2, label="reference")
    for k, o in enumerate(optimizers):
        ax.plot(x, preds[o][i], ["-", "--", ":"][k % 3], color=COLORS[o], lw=1.5, label=LABELS[o])
    ax.set_title(f"u(x, t = {t[i]:.2f})")
    ax.set_xlabel("x")
    ax.legend(fontsize=7)
    for a in axes[0, :].tolist() + axes[1, 1:].tolist():
        a.set_xlabel("t")
        a.grid(False)
    axes[0, 0].set_ylabel("x")
    axes[1, 1].set_ylabel("x")
    fig.suptitle(f"Burgers, depth {depth}")
    return fig


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    cfg = load_section(args.params, "pinn")
    save(plot(Path(args.runs), max(cfg.depths), cfg.optimizers), args.out)


if __name__ == "__main__":
    main()
