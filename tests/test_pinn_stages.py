"""The PINN stage scripts end to end on a tiny configuration: generate -> train (every seed) -> ablation."""
import json

import numpy as np
import pytest

from pinn.stages import ablation, generate, train
from pipeline import runs

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = {"width": 8, "steps": 12, "checkpoint_every": 5, "init": "glorot", "gemm": "aten", "seeds": [0, 1],
        "points": {p: {"domain": 64, "boundary": 16} for p in ("burgers", "poisson", "helmholtz")}}


def test_generate_then_train_writes_the_run_layout(tmp_path, params_file):
    params = params_file(pinn={**TINY, "problems": ["burgers"], "depths": [2]})
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

    for opt in ["adamw", "stablegrad", "agc", "lra"]:
        out = tmp_path / "runs" / f"burgers-2-{opt}"
        train.main(["--problem", "burgers", "--depth", "2", "--optimizer", opt, "--params", str(params),
                    "--data", str(data), "--out", str(out), "--ckpt", str(tmp_path / "ckpt" / opt)])
        m = runs.read_metrics(out)
        assert m["steps"] == 12 and m["diverged"] is False and m["seeds"] == [0, 1]
        assert m["rel_l2"] == pytest.approx(np.median(m["rel_l2_seeds"])) and 0 < m["rel_l2_min"] < 10
        assert m["gemm"] == "aten" and m["optimizer"] == opt
        for seed in (0, 1):
            assert np.load(runs.seed_dir(out, seed) / "prediction.npz")["u"].shape == (100, 256)
            assert (tmp_path / "ckpt" / opt / f"seed{seed}.pt").exists()
            assert runs.read_metrics(runs.seed_dir(out, seed))["seed"] == seed
        assert (out / "history.csv").read_text().startswith("seed,step,loss,lr,boundary_weight")
        assert set(runs.read_history(out)) == {0, 1}
        scales = runs.read_grad_scales(out)
        assert scales["layers"] and scales["before"].shape[1] == 3 and scales["statistic"] == "rms"


def test_diverged_run_is_recorded_and_exits_cleanly(tmp_path, params_file):
    params = params_file(pinn={**TINY, "problems": ["poisson"], "steps": 50, "lr": 100.0, "diverge_factor": 2.0,
                               "log_every": 1, "init": "gain", "seeds": [0]})
    generate.main(["--problem", "poisson", "--params", str(params), "--out", str(tmp_path / "d")])
    train.main(["--problem", "poisson", "--depth", "3", "--optimizer", "adamw", "--params", str(params),
                "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r")])
    m = runs.read_metrics(tmp_path / "r")
    assert m["diverged"] is True and m["rel_l2"] is None and m["steps"] < 50


def test_stage_rejects_an_optimizer_the_params_do_not_define(tmp_path, params_file, capsys):
    params = params_file(pinn=TINY)
    with pytest.raises(SystemExit) as e:
        train.main(["--problem", "poisson", "--depth", "2", "--optimizer", "clip", "--params", str(params),
                    "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    assert e.value.code == 2 and "pinn.optimizers" in capsys.readouterr().err


def _ablation_setup(tmp_path, params_file):
    params = params_file(pinn={**TINY, "problems": ["poisson"], "init": "lsuv-jacobian",
                               "ablation": {"problems": ["poisson"], "depths": [2], "steps": 5}})
    generate.main(["--problem", "poisson", "--params", str(params), "--out", str(tmp_path / "data" / "poisson")])
    return params


def _check_spread(entry, n):
    e = entry["rel_l2"]
    assert set(e) == {"median", "min", "max", "seeds"} and len(e["seeds"]) == n
    assert e["min"] == min(e["seeds"]) and e["max"] == max(e["seeds"])
    assert e["min"] <= e["median"] <= e["max"] and e["median"] == np.median(e["seeds"])


def test_ablation_runs_every_variant_over_every_seed(tmp_path, params_file):
    params = _ablation_setup(tmp_path, params_file)
    out = tmp_path / "abl" / "poisson"
    ablation.main(["--params", str(params), "--problem", "poisson", "--data", str(tmp_path / "data"),
                   "--out", str(out)])
    res = json.loads(out.with_suffix(".json").read_text())
    assert set(res) == {"settings", "runs", "variants"}
    assert res["settings"]["seeds"] == [0, 1] and res["settings"]["steps"] == 5
    n_var = len(ablation.variants(ablation.load(params)))
    assert n_var == 12 and len(res["runs"]) == 2 * n_var and len(res["variants"]) == n_var   # 4 inits x 2 + 4
    for v in res["variants"]:
        assert v["n_seeds"] == 2 and v["seeds"] == [0, 1] and v["diverged_seeds"] == 0
        _check_spread(v, 2)
    md = out.with_suffix(".md").read_text()
    assert "| rel. L2 median | rel. L2 min | rel. L2 max |" in md and "seeds 0, 1;" in md
    assert sum(line.startswith("| poisson | 2 |") for line in md.splitlines()) == n_var


def test_ablation_grid_seed_override_and_resume(tmp_path, params_file):
    params = _ablation_setup(tmp_path, params_file)
    out = tmp_path / "grid"
    args = ["--params", str(params), "--data", str(tmp_path / "data"), "--out", str(out), "--cases", "poisson:2",
            "--grid", "reference=last,output", "statistic=std,rms"]
    ablation.main(args + ["--seeds", "1", "2"])
    res = json.loads(out.with_suffix(".json").read_text())
    names = [v["variant"] for v in res["variants"]]
    assert names == ["adamw"] + [f"stablegrad, reference={r}, statistic={s}"
                                 for r in ("last", "output") for s in ("std", "rms")]
    assert len(res["runs"]) == 10 and all(v["seeds"] == [1, 2] for v in res["variants"])
    sg = [r for r in res["runs"] if r["variant"] == "stablegrad, reference=last, statistic=rms"]
    assert [(r["reference"], r["statistic"], r["bias"], r["init"]) for r in sg] == [("last", "rms", "shared",
                                                                                      "lsuv-jacobian")] * 2
    kept = {(r["variant"], r["seed"]): r["rel_l2"] for r in res["runs"]}
    ablation.main(args + ["--seeds", "1", "2", "3", "--resume"])
    res = json.loads(out.with_suffix(".json").read_text())
    assert len(res["runs"]) == 15 and res["settings"]["seeds"] == [1, 2, 3]
    assert all({(r["variant"], r["seed"]): r["rel_l2"] for r in res["runs"]}[k] == v for k, v in kept.items())


@pytest.mark.parametrize("bad", [["--grid", "statistic=mean"], ["--grid", "depth=3"], ["--cases", "poisson"],
                                 ["--cases", "stokes:8"], ["--steps", "0"], ["--problem", "stokes"]])
def test_ablation_rejects_bad_overrides_in_one_line(tmp_path, params_file, bad, capsys):
    params = _ablation_setup(tmp_path, params_file)
    with pytest.raises(SystemExit) as e:
        ablation.main(["--params", str(params), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "x")]
                      + bad)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and "Traceback" not in err
