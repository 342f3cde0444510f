"""Figure 1 renders from GradScaleRecorder dumps in both formats the stages write (small synthetic runs)."""
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from paper_figures import fig1_backward_scale as fig1
from pipeline.params import load
from stablegrad import GradScaleRecorder, StableGrad

ROOT = Path(__file__).resolve().parents[1]


def _record(stablegrad: bool, steps: int = 6) -> dict:
    """A real recorder dict: a tiny MLP trained a few steps, AdamW (capture) or AdamW + StableGrad."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    rec = GradScaleRecorder(every=2)
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


def _write_runs(tmp_path: Path, pinn_depth: int) -> tuple[Path, Path]:
    pinn, cnn = tmp_path / "pinn", tmp_path / "cnn"
    for opt in ("adamw", "stablegrad"):
        d = pinn / f"burgers-{pinn_depth}-{opt}"
        d.mkdir(parents=True)
        (d / "grad_scales.json").write_text(json.dumps({"0": _record(opt == "stablegrad")}))  # keyed by seed
        c = cnn / f"resnet50-nobn-{opt}"
        c.mkdir(parents=True)
        scales = _record(opt == "stablegrad")  # bare recorder dict plus cnn.trainer's extra keys
        scales["before"][1][0] = None  # a non-finite value, written as null
        scales["epoch_end_records"] = [len(scales["steps"])]
        scales["per_epoch_median_before"] = [scales["before"][-1]]
        scales["per_epoch_median_after"] = [scales["after"][-1]]
        (c / "grad_scales.json").write_text(json.dumps(scales))
    return pinn, cnn


def test_load_recorder_reads_both_formats(tmp_path):
    pinn, cnn = _write_runs(tmp_path, 16)
    a = fig1.load_recorder(pinn / "burgers-16-stablegrad" / "grad_scales.json")
    b = fig1.load_recorder(cnn / "resnet50-nobn-adamw" / "grad_scales.json")
    assert a["before"].shape == a["after"].shape == (3, 3) and list(a["steps"]) == [0, 2, 4]
    assert np.isnan(b["before"][1, 0]) and np.isfinite(b["after"][0]).all()
    # StableGrad's "after" is flat (every layer at the reference); AdamW's "after" is its raw gradient
    assert np.allclose(a["after"][0], a["after"][0][-1], rtol=1e-5)
    assert np.allclose(b["after"][0], b["before"][0])
    assert fig1.load_recorder(tmp_path / "missing.json") is None
    (tmp_path / "other_seed.json").write_text(json.dumps({"3": _record(False)}))
    assert fig1.load_recorder(tmp_path / "other_seed.json")["layers"] == ["0", "2", "4"]


def test_fig1_renders_from_recorder_dumps(tmp_path):
    depth = max(load(ROOT / "params.yaml", check_paths=False)["pinn"].depths)  # the run fig1 looks for
    pinn, cnn = _write_runs(tmp_path, depth)
    out = tmp_path / "figs" / "fig1"
    fig1.main(["--params", str(ROOT / "params.yaml"), "--pinn-runs", str(pinn), "--cnn-runs", str(cnn),
               "--out", str(out)])
    assert out.with_suffix(".png").stat().st_size > 10_000 and out.with_suffix(".pdf").is_file()


def test_fig1_missing_runs_still_render(tmp_path):
    out = tmp_path / "fig1"
    fig1.main(["--params", str(ROOT / "params.yaml"), "--pinn-runs", str(tmp_path / "none"),
               "--cnn-runs", str(tmp_path / "none"), "--out", str(out)])
    assert out.with_suffix(".png").is_file()
