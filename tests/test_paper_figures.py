"""Every paper figure script, end to end, on a tiny synthetic run tree written with pipeline/runs.py (the
layout the stages write): PNG and PDF written, the gradient-scale axis names the recorded statistic, and a
control listed in the settings but missing on disk is left out rather than crashing the figure."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from paper_figures import (
    burgers_maps,
    cnn_grad_scales,
    cnn_training_curves,
    fig1_backward_scale,
    pinn_error_vs_depth,
    pinn_training_curves,
    style,
)
from pipeline import runs
from pipeline.aggregate import collect
from pipeline.names import CNN_VARIANTS, CONTROLS, run_name
from stablegrad import GradScaleRecorder, StableGrad

PINN = {"problems": ["burgers", "poisson"], "depths": [2, 3], "optimizers": ["adamw", "stablegrad", "clip"]}
CNN = {"archs": ["resnet50"], "variants": ["bn-adamw", "nobn-adamw", "nobn-stablegrad", "nobn-agc"]}
MISSING = {("poisson", 3, "clip"), ("burgers", 3, "clip"), ("resnet50", "nobn-agc")}  # listed, never written
SEEDS = [0, 1]


def _recorder(depth: int, stablegrad: bool, statistic: str, steps: int = 6) -> dict:
    """A real GradScaleRecorder dump: a tiny tanh MLP trained a few steps, AdamW (capture) or StableGrad."""
    torch.manual_seed(0)
    layers = [nn.Linear(2, 8), nn.Tanh()]
    for _ in range(depth - 1):
        layers += [nn.Linear(8, 8), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(8, 1))
    rec = GradScaleRecorder(every=2, statistic=statistic)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    if stablegrad:
        opt = StableGrad(opt, model, recorder=rec)
    x = torch.randn(16, 2)
    for _ in range(steps):
        opt.zero_grad()
        model(x).square().mean().backward()
        if not stablegrad:
            rec.capture(model)
        opt.step()
    return rec.to_dict()


def _cnn_recorder(bn: bool, stablegrad: bool, statistic: str, epochs: int) -> dict:
    """A CNN trainer's dump: the recorder dict plus epoch_end_records and the per-epoch medians."""
    layers = ["conv1", "bn1", "layer1.conv", "layer1.bn", "fc"] if bn else ["conv1", "layer1.conv", "fc"]
    before = np.outer(np.arange(1, 2 * epochs + 1), np.logspace(-9, -2, len(layers)))
    after = np.repeat(before[:, -1:], len(layers), axis=1) if stablegrad else before
    before = before.tolist()
    before[1][0] = None                                   # a non-finite value, written as null
    ends = [2 * (e + 1) for e in range(epochs)]
    med = lambda rows: [np.median(np.array(rows[e - 2:e], dtype=float), axis=0).tolist() for e in ends]
    return {"statistic": statistic, "layers": layers, "steps": list(range(0, 10 * epochs, 5)), "before": before,
            "after": after.tolist(), "epoch_end_records": ends,
            "per_epoch_median_before": med([[np.nan if v is None else v for v in r] for r in before]),
            "per_epoch_median_after": med(after.tolist())}


def write_tree(root: Path, statistic: str = "rms", cnn_statistic: str | None = None) -> Path:
    """data/-like tree under `root` (summary.json, pinn/runs, cnn/runs); returns the summary path."""
    x, t = np.linspace(-1, 1, 9), np.linspace(0, 1, 5)
    ref = -np.sin(np.pi * x)[None, :] * np.exp(-t)[:, None]
    for p in PINN["problems"]:
        for d in PINN["depths"]:
            for o in PINN["optimizers"]:
                if (p, d, o) in MISSING:
                    continue
                run = root / "pinn" / "runs" / run_name(p, d, o)
                per_seed, history = [], []
                for seed in SEEDS:
                    diverged = (p, d, o, seed) == ("poisson", 2, "adamw", 1)
                    u = ref + 0.05 * (seed + 1)
                    err = None if diverged else float(np.linalg.norm(u - ref) / np.linalg.norm(ref))
                    per_seed.append({"seed": seed, "rel_l2": err, "final_loss": 0.1, "boundary_weight": 1.0,
                                     "steps": 20, "diverged": diverged, "problem": p, "depth": d, "optimizer": o})
                    history += [{"seed": seed, "step": s, "loss": 1.0 / (s + 1), "lr": 1e-3, "boundary_weight": 1.0}
                                for s in range(0, 21, 5)]
                    runs.write_json(runs.seed_dir(run, seed) / "grad_scales.json",
                                    _recorder(d, o == "stablegrad", statistic))
                    np.savez(runs.seed_dir(run, seed) / "prediction.npz", u=u, u_ref=ref, axis0=x, axis1=t)
                runs.write_run(run, per_seed, history, ("rel_l2", "final_loss", "boundary_weight"))
    for a in CNN["archs"]:
        for v in CNN["variants"]:
            if (a, v) in MISSING:
                continue
            run = root / "cnn" / "runs" / run_name(a, v)
            per_seed, history = [], []
            for seed in SEEDS:
                collapsed = (v, seed) == ("nobn-adamw", 1)
                epochs = 2 if collapsed else 3
                per_seed.append({"seed": seed, "arch": a, "variant": v, "dataset": "digits", "stem": "imagenet",
                                 "image_size": 32, "test_acc": 0.1 if collapsed else 0.8, "train_acc": 0.8,
                                 "val_acc": 0.8, "final_loss": 0.5, "diverged": collapsed,
                                 "diverged_epoch": 2 if collapsed else None, "epochs": epochs, "epochs_planned": 3,
                                 "lr": 3e-3})
                history += [{"seed": seed, "epoch": e, "loss": 2.0 / e, "train_acc": 0.3 * e, "val_acc": 0.25 * e,
                             "test_acc": 0.25 * e, "lr": 3e-3, "time_s": 1.0, "grad_scale_min": 1e-9,
                             "grad_scale_max": 1e-2} for e in range(1, epochs + 1)]
                runs.write_json(runs.seed_dir(run, seed) / "grad_scales.json",
                                _cnn_recorder(v.startswith("bn-"), v.endswith("stablegrad"),
                                              cnn_statistic or statistic, epochs))
            runs.write_run(run, per_seed, history, ("test_acc", "val_acc", "train_acc", "final_loss"))
    summary = collect({"pinn": PINN, "cnn": CNN}, root / "pinn" / "runs", root / "cnn" / "runs")
    runs.write_json(root / "summary.json", summary)
    return root / "summary.json"


def _argv(name: str, root: Path, out: Path) -> list[str]:
    s, pinn, cnn = str(root / "summary.json"), str(root / "pinn" / "runs"), str(root / "cnn" / "runs")
    return {"pinn_error_vs_depth": ["--summary", s],
            "burgers_maps": ["--summary", s, "--runs", pinn],
            "pinn_training_curves": ["--summary", s, "--runs", pinn],
            "fig1_backward_scale": ["--summary", s, "--pinn-runs", pinn, "--cnn-runs", cnn],
            "cnn_training_curves": ["--summary", s, "--runs", cnn],
            "cnn_grad_scales": ["--summary", s, "--runs", cnn]}[name] + ["--out", str(out)]


MODULES = {m.__name__.rsplit(".", 1)[1]: m for m in (pinn_error_vs_depth, burgers_maps, pinn_training_curves,
                                                    fig1_backward_scale, cnn_training_curves, cnn_grad_scales)}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_tree(root)
    return root


@pytest.mark.parametrize("name", list(MODULES))
def test_figure_writes_png_and_pdf(name, tree, tmp_path):
    out = tmp_path / "figs" / name
    MODULES[name].main(_argv(name, tree, out))
    assert out.with_suffix(".png").stat().st_size > 5_000 and out.with_suffix(".pdf").stat().st_size > 1_000


def _ylabels(fig) -> list[str]:
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_visible() and ax.get_ylabel()]
    plt.close(fig)
    return labels


@pytest.mark.parametrize("statistic", ["rms", "std"])
def test_grad_scale_axes_name_the_recorded_statistic(statistic, tmp_path):
    summary = json.loads(write_tree(tmp_path, statistic).read_text())
    other = style.statistic_label("std" if statistic == "rms" else "rms")
    rows = fig1_backward_scale.default_rows(summary, tmp_path / "pinn" / "runs", tmp_path / "cnn" / "runs")
    assert [r[1] for r in rows] == ["burgers-3", "resnet50-nobn"]
    for labels in (_ylabels(fig1_backward_scale.plot(rows)),
                   _ylabels(cnn_grad_scales.plot(summary, tmp_path / "cnn" / "runs"))):
        assert labels and all(style.statistic_label(statistic) in lab for lab in labels), labels
        assert not any(other in lab for lab in labels), labels


def test_one_statistic_per_figure(tmp_path):
    """PINN runs recorded rms, CNN runs std: fig1 draws the rms ones only and says what it left out."""
    summary = json.loads(write_tree(tmp_path, "rms", cnn_statistic="std").read_text())
    fig = fig1_backward_scale.plot(fig1_backward_scale.default_rows(summary, tmp_path / "pinn" / "runs",
                                                                    tmp_path / "cnn" / "runs"))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("no rms gradient-scale records" in t for t in texts)
    assert all("std" not in lab for lab in _ylabels(fig))


def test_missing_runs_are_skipped(tmp_path):
    """Runs listed in settings but absent, and a PINN tree without any StableGrad run, still render."""
    write_tree(tmp_path)
    for p in PINN["problems"]:
        for d in PINN["depths"]:
            for f in (tmp_path / "pinn" / "runs" / run_name(p, d, "stablegrad")).rglob("*"):
                if f.is_file():
                    f.unlink()
    summary = collect({"pinn": PINN, "cnn": CNN}, tmp_path / "pinn" / "runs", tmp_path / "cnn" / "runs")
    runs.write_json(tmp_path / "summary.json", summary)
    for name, module in MODULES.items():
        out = tmp_path / "figs" / name
        module.main(_argv(name, tmp_path, out))
        assert out.with_suffix(".png").is_file() and out.with_suffix(".pdf").is_file()


def test_fig1_with_no_runs_still_renders(tmp_path):
    runs.write_json(tmp_path / "summary.json", {"settings": {"pinn": PINN, "cnn": CNN}, "pinn": {}, "cnn": {}})
    out = tmp_path / "fig1"
    fig1_backward_scale.main(_argv("fig1_backward_scale", tmp_path, out))
    assert out.with_suffix(".png").is_file()


def test_colors_one_per_control():
    colors = [style.color(c) for c in CONTROLS]
    assert len(set(colors)) == len(CONTROLS) and style.BN_REFERENCE_COLOR not in colors
    assert style.color("adamw") == "#d62728" and style.color("stablegrad") == "#1f77b4"
    assert style.color("bn-adamw") == style.BN_REFERENCE_COLOR
    for v in CNN_VARIANTS:
        if v != "bn-adamw":
            assert style.color(v) == style.color(v.split("-", 1)[1])
        assert style.label(v) and style.linestyle(v) == ("--" if v.startswith("bn-") else "-")


def test_a_figure_saved_twice_is_byte_identical(tmp_path, monkeypatch):
    """Issue 22, defect 8: the PDF embedded its creation date, so a rerun never reproduced it byte for byte."""
    from paper_figures.style import save

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    files = []
    for i in range(2):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        save(fig, tmp_path / f"run{i}" / "fig")
        files.append({s: (tmp_path / f"run{i}" / f"fig.{s}").read_bytes() for s in ("png", "pdf")})
    assert b"CreationDate" not in files[0]["pdf"]
    assert files[0] == files[1]
