"""The stage scripts end to end on a tiny configuration: generate -> train -> summary."""
import json

import numpy as np
import pytest
import torch
import yaml

from pinn.stages import ablation, generate, summarize, train


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


def _ablation_setup(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"cnn": {}, "pinn": {
        "problems": ["poisson"], "width": 8, "seeds": [0, 1], "init": "lsuv-jacobian",
        "points": {"poisson": {"domain": 64, "boundary": 16}},
        "ablation": {"problems": ["poisson"], "depths": [2], "steps": 5}}}))
    generate.main(["--problem", "poisson", "--params", str(params),
                   "--out", str(tmp_path / "data" / "poisson")])
    return params


def _check_spread(entry, n):
    e = entry["rel_l2"]
    assert set(e) == {"median", "min", "max", "seeds"} and len(e["seeds"]) == n
    assert e["min"] == min(e["seeds"]) and e["max"] == max(e["seeds"])
    assert e["min"] <= e["median"] <= e["max"] and e["median"] == np.median(e["seeds"])
    assert set(entry["final_loss"]) == {"median", "min", "max", "seeds"}


def test_ablation_runs_every_variant_over_every_seed(tmp_path):
    params = _ablation_setup(tmp_path)
    out = tmp_path / "abl"
    ablation.main(["--params", str(params), "--data", str(tmp_path / "data"), "--out", str(out)])
    res = json.loads(out.with_suffix(".json").read_text())
    assert set(res) == {"settings", "runs", "variants"}
    assert res["settings"]["seeds"] == [0, 1] and res["settings"]["steps"] == 5
    n_var = len(ablation.variants(ablation.load_section(str(params), "pinn")))
    assert n_var == 10 and len(res["runs"]) == 2 * n_var and len(res["variants"]) == n_var
    for v in res["variants"]:
        assert v["n_seeds"] == 2 and v["seeds"] == [0, 1] and v["diverged_seeds"] == 0
        _check_spread(v, 2)
    md = out.with_suffix(".md").read_text()
    assert "| rel. L2 median | rel. L2 min | rel. L2 max |" in md and "seeds 0, 1;" in md
    assert sum(line.startswith("| poisson | 2 |") for line in md.splitlines()) == n_var


def test_ablation_grid_seed_override_and_resume(tmp_path):
    params = _ablation_setup(tmp_path)
    out = tmp_path / "grid"
    args = ["--params", str(params), "--data", str(tmp_path / "data"), "--out", str(out),
            "--cases", "poisson:2",
            "--grid", "reference=last,output", "statistic=std,rms"]
    ablation.main(args + ["--seeds", "1", "2"])
    res = json.loads(out.with_suffix(".json").read_text())
    names = [v["variant"] for v in res["variants"]]
    assert names == ["adamw"] + [f"stablegrad, reference={r}, statistic={s}"
                                 for r in ("last", "output") for s in ("std", "rms")]
    assert len(res["runs"]) == 10 and all(v["seeds"] == [1, 2] for v in res["variants"])
    for v in res["variants"]:
        _check_spread(v, 2)
    # same init per seed: AdamW and StableGrad start from the same network, so the rows are paired by seed
    sg = [r for r in res["runs"] if r["variant"] == "stablegrad, reference=last, statistic=rms"]
    assert [(r["reference"], r["statistic"], r["bias"], r["init"]) for r in sg] == [("last", "rms", "shared",
                                                                                      "lsuv-jacobian")] * 2
    kept = {(r["variant"], r["seed"]): r["rel_l2"] for r in res["runs"]}
    ablation.main(args + ["--seeds", "1", "2", "3", "--resume"])
    res = json.loads(out.with_suffix(".json").read_text())
    assert len(res["runs"]) == 15 and res["settings"]["seeds"] == [1, 2, 3]
    assert all({(r["variant"], r["seed"]): r["rel_l2"] for r in res["runs"]}[k] == v for k, v in kept.items())
    for v in res["variants"]:
        _check_spread(v, 3)
    assert "seeds 1, 2, 3;" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize("bad", [["--grid", "statistic=mean"], ["--grid", "depth=3"], ["--cases", "poisson"],
                                 ["--cases", "heat:8"], ["--steps", "0"]])
def test_ablation_rejects_bad_overrides(tmp_path, bad, capsys):
    params = _ablation_setup(tmp_path)
    with pytest.raises(SystemExit):
        ablation.main(["--params", str(params), "--data", str(tmp_path / "data"),
                       "--out", str(tmp_path / "x")] + bad)
    assert "allowed" in capsys.readouterr().err or "--steps" in bad
