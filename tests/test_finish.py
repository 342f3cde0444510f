"""The L-BFGS finishing phase (pinn/finish.py) and the study's finish stage (pinn/stages/finish.py): it lowers
the loss it is given, a non-finite chunk is undone (no NaN reaches the weights), it starts from exactly where the
study's runs ended, a rerun keeps what is done, and bad input stops before any work."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from test_cpu_study import study, tiny_study

from pinn.config import load
from pinn.finish import lbfgs_finish
from pinn.points import generate
from pinn.problems import PROBLEMS
from pinn.trainer import PinnData, loss_function, train

CFG = load(ROOT / "params.yaml")


def tiny_data(problem="poisson") -> PinnData:
    d = generate(problem, 128, 32, seed=0)
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)
    return PinnData(t(d["domain"]), t(d["boundary"]), t(d["boundary_values"]), t(d["test_points"]), d["test_u"],
                    d["axes"])


def short_run(data, steps=30):
    cfg = CFG.__class__(**{**vars(CFG), "steps": steps, "compile": False, "log_every": 10})
    return train(cfg, "poisson", 2, "adamw", data, seed=0, progress=False)


def test_lbfgs_lowers_the_loss_and_records_its_curve():
    data = tiny_data()
    res = short_run(data)
    out = lbfgs_finish(res.model, PROBLEMS["poisson"], data, loss_function(False, "aten"), 1.0, iters=60,
                       chunk=20)
    assert out.stopped in ("iterations", "stalled") and out.iters > 0
    assert out.loss < 0.5 * out.loss_start                     # L-BFGS from an Adam start: a real decrease
    assert [c[0] for c in out.curve][:-1] == list(range(20, 20 * len(out.curve), 20))   # one point per chunk
    assert out.curve[-1][0] == out.iters <= 60
    assert out.curve[-1][1] == out.loss and out.rel_l2 == out.curve[-1][2]
    assert all(torch.isfinite(p).all() for p in res.model.parameters())


def test_a_non_finite_chunk_is_undone():
    data = tiny_data()
    res = short_run(data)
    before = {k: v.clone() for k, v in res.model.state_dict().items()}
    bad = PinnData(data.domain, data.boundary, torch.full_like(data.boundary_values, float("nan")), data.test,
                   data.reference, data.axes)
    out = lbfgs_finish(res.model, PROBLEMS["poisson"], bad, loss_function(False, "aten"), 1.0, iters=40,
                       chunk=20)
    assert out.stopped == "non-finite" and out.iters == 0 and out.curve == []
    after = res.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)   # the weights before the NaN, bit for bit


def finish(params, out, *extra):
    return subprocess.run([sys.executable, "-m", "pinn.stages.finish", "--params", str(params), "--study", str(out),
                           *extra], check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_finish_starts_where_the_study_ended_and_a_rerun_keeps_it(tmp_path):
    params, out = tiny_study(tmp_path), tmp_path / "out"
    assert study(params, out, "--ends-only", "lra").returncode == 0
    first = finish(params, out, "--iters", "20", "--jobs", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "0 seeds kept, 10 to finish" in first.stdout
    ours = json.loads((out / "lbfgs" / "summary.json").read_text())["pinn"]["poisson"]
    theirs = json.loads((out / "summary.json").read_text())["pinn"]["poisson"]
    assert ours.keys() == theirs.keys() and ours["2"].keys() == {"adamw"}          # the study's plan
    for d in ours:
        for c, m in ours[d].items():
            assert m["rel_l2_start_seeds"] == pytest.approx(theirs[d][c]["rel_l2_seeds"], rel=1e-6)  # same weights
            assert all(a <= b for a, b in zip(m["loss_seeds"], m["loss_start_seeds"]))
    for fig in ("pinn_error_vs_depth_lbfgs", *(f"pinn_lbfgs_curves_depth{d}" for d in ours)):   # every depth
        assert (out / "figures" / f"{fig}.png").stat().st_size > 0, fig
    assert "| poisson | 3 | lra |" in (out / "lbfgs" / "table.md").read_text()

    # without checkpoints (a fresh clone) nothing is redone; more iterations redo every seed
    subprocess.run(["rm", "-r", str(out / "checkpoints")], check=True)
    assert "10 seeds kept, 0 to finish" in finish(params, out, "--iters", "20").stdout
    again = finish(params, out, "--iters", "30", "--controls", "adamw")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 seeds kept, 6 to finish" in again.stdout


@pytest.mark.parametrize("extra, message", [
    (["--controls", "lamb"], "--controls lamb: not a key of pinn.optimizers"),
    (["--iters", "0"], "--iters must be >= 1"),
    (["--jobs", "0"], "--jobs must be >= 1"),
])
def test_bad_finish_arguments_stop_before_any_work(tmp_path, extra, message):
    res = finish(tiny_study(tmp_path), tmp_path / "out", *extra)
    assert res.returncode == 2 and message in res.stderr


def test_a_missing_study_is_named(tmp_path):
    res = finish(tiny_study(tmp_path), tmp_path / "nothing")
    assert res.returncode == 2 and "no finished study there" in res.stderr and "make cpu-study" in res.stderr


def test_the_committed_finish_is_complete_and_starts_from_the_committed_study():
    """data/cpu_study/lbfgs/summary.json holds every planned run of its controls with every seed, each starting
    from the error its study run ended with (the same weights)."""
    from test_cpu_study import STUDY

    from pinn.stages.study import plan
    cfg = load(ROOT / STUDY)
    ours = json.loads((ROOT / "data/cpu_study/lbfgs/summary.json").read_text())
    theirs = json.loads((ROOT / "data/cpu_study/summary.json").read_text())["pinn"]
    ends_only = json.loads((ROOT / "data/cpu_study/study.json").read_text())["ends_only"]
    controls = ours["settings"]["pinn"]["optimizers"]
    planned = [(p, d, c) for p, d, c in plan(cfg, ends_only) if c in controls]
    assert len(planned) >= 3 * 4 * 2
    for p, d, c in planned:
        m = ours["pinn"][p][str(d)][c]
        assert len(m["rel_l2_seeds"]) == len(cfg.seeds) == 3, (p, d, c)
        for start, end in zip(m["rel_l2_start_seeds"], theirs[p][str(d)][c]["rel_l2_seeds"], strict=True):
            assert start == end is None or start == pytest.approx(end, rel=1e-5), (p, d, c)   # None: diverged
        finite = [e for e in m["rel_l2_seeds"] if e is not None]
        assert m["rel_l2"] == (statistics.median(finite) if finite else None)
