"""The stage scripts end to end on a tiny configuration: generate -> train -> summary."""
import json

import numpy as np
import pytest
import torch
import yaml

from pinn.stages import generate, summarize, train


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_generate_train_summarize(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"cnn": {}, "pinn": {
        "problems": ["burgers"], "depths": [2], "width": 8, "steps": 12, "checkpoint_every": 5,
        "points": {"burgers": {"domain": 64, "boundary": 16}}, "init": "gain"}}))
    data = tmp_path / "burgers"
    generate.main(["--problem", "burgers", "--params", str(params), "--out", str(data)])
    ref = np.load(data / "reference.npz")
    assert ref["u"].shape == (len(ref["t"]), len(ref["x"])) == (100, 256)
    pts = np.load(data / "collocation.npz")
    assert pts["domain"].shape == (64, 2) and pts["boundary"].shape == (16, 2)
    assert (pts["domain"].min(0) >= [-1, 0]).all() and (pts["domain"].max(0) <= [1, 1]).all()
    again = tmp_path / "again"
    generate.main(["--problem", "burgers", "--params", str(params), "--out", str(again)])
    assert np.array_equal(np.load(again / "collocation.npz")["domain"], pts["domain"])  # seeded

    runs = tmp_path / "runs"
    for opt in ["adamw", "stablegrad"]:
        out = runs / f"burgers-2-{opt}"
        train.main(["--problem", "burgers", "--depth", "2", "--optimizer", opt, "--params", str(params),
                    "--data", str(data), "--out", str(out), "--ckpt", str(out / "ckpt")])
        m = json.loads((out / "metrics.json").read_text())
        assert m["steps"] == 12 and m["diverged"] is False and 0 < m["rel_l2"] < 10
        assert {"rel_l2", "final_loss", "wall_time_s", "steps", "diverged"} <= set(m)
        assert np.load(out / "prediction.npz")["u"].shape == (100, 256)
        assert (out / "history.csv").read_text().startswith("seed,step,loss,lr")
        assert (out / "ckpt" / "seed0.pt").exists()
        scales = json.loads((out / "grad_scales.json").read_text())["0"]
        assert len(scales["layers"]) == 3 and len(scales["before"][0]) == 3

    summarize.main(["--params", str(params), "--runs", str(runs), "--out", str(tmp_path / "summary")])
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["burgers"]["2"]) == {"adamw", "stablegrad"}
    assert "| burgers | 2 |" in (tmp_path / "summary.md").read_text()


def test_diverged_run_is_recorded_and_exits_cleanly(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"cnn": {}, "pinn": {
        "problems": ["poisson"], "width": 8, "steps": 50, "lr": 100.0, "diverge_factor": 2.0, "log_every": 1,
        "points": {"poisson": {"domain": 64, "boundary": 16}}, "init": "gain"}}))
    generate.main(["--problem", "poisson", "--params", str(params), "--out", str(tmp_path / "d")])
    train.main(["--problem", "poisson", "--depth", "3", "--optimizer", "adamw", "--params", str(params),
                "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r")])
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["diverged"] is True and m["rel_l2"] is None and m["steps"] < 50
