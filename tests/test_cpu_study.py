"""The converged CPU study (pinn/stages/study.py, params_cpu_study.yaml, data/cpu_study/): it runs the real
stages, keeps what is done even without checkpoints, rejects bad input before any work, and what is committed
is complete."""
from __future__ import annotations

import copy
import dataclasses
import json
import statistics
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import ROOT, committed

from pinn.config import load
from pinn.points import generate
from pinn.stages.study import plan
from pinn.trainer import PinnData, run_key

STUDY = "params_cpu_study.yaml"


def tiny_study(tmp_path):
    p = copy.deepcopy(committed(STUDY))
    p["pinn"].update(problems=["poisson"], depths=[1, 2, 3], steps=6, seeds=[0, 1], compile=False, log_every=2,
                     checkpoint_every=3, grad_scale_every=3,
                     optimizers={"adamw": {}, "lra": p["pinn"]["optimizers"]["lra"]})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(p, sort_keys=False))
    return path


def study(params, out, *extra):
    return subprocess.run([sys.executable, "-m", "pinn.stages.study", "--params", str(params), "--out", str(out),
                           "--jobs", "2", *extra], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_the_study_runs_the_stages_and_a_rerun_keeps_every_finished_run(tmp_path):
    params, out = tiny_study(tmp_path), tmp_path / "out"
    first = study(params, out, "--ends-only", "lra")
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads((out / "study.json").read_text())["runs"]["poisson-3-lra"]["status"] == "trained"
    summary = json.loads((out / "summary.json").read_text())
    runs = summary["pinn"]["poisson"]
    assert set(runs) == {"1", "2", "3"}
    assert set(runs["1"]) == set(runs["3"]) == {"adamw", "lra"} and set(runs["2"]) == {"adamw"}   # lra at the ends
    for by_control in runs.values():
        for m in by_control.values():
            assert len(m["rel_l2_seeds"]) == 2 and m["rel_l2"] == statistics.median(m["rel_l2_seeds"])
    for f in ("tables/table_pinn_errors.md", "figures/pinn_error_vs_depth.png", "figures/pinn_training_curves.png"):
        assert (out / f).stat().st_size > 0, f
    assert not (out / "tables" / "table_cnn_accuracy.md").exists()   # no cnn section, no CNN table

    # a fresh clone has the committed results but no checkpoints: nothing is retrained
    stamp = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/metrics.json")}
    subprocess.run(["rm", "-r", str(out / "checkpoints")], check=True)
    second = study(params, out, "--ends-only", "lra")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "5 runs kept, 0 to train" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp
    record = json.loads((out / "study.json").read_text())["runs"]["poisson-2-adamw"]
    assert record["status"] == "kept" and record["wall_time_s"] > 0   # the training time of the kept run

    # another setting changes every run key: every run is trained again
    raw = yaml.safe_load(params.read_text())
    raw["pinn"]["steps"] = 7
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    third = study(params, out, "--ends-only", "lra")
    assert third.returncode == 0, third.stderr[-2000:]
    assert "0 runs kept, 5 to train" in third.stdout


@pytest.mark.parametrize("extra, message", [
    (["--ends-only", "lamb"], "--ends-only lamb: not a key of pinn.optimizers"),
    (["--jobs", "0"], "--jobs must be >= 1"),
    (["--controls", "adamw", "nope"], "--controls nope: not a key of pinn.optimizers"),
])
def test_bad_study_arguments_stop_before_any_work(tmp_path, extra, message):
    out = tmp_path / "out"
    res = study(tiny_study(tmp_path), out, *extra)
    assert res.returncode == 2 and message in res.stderr
    assert not out.exists()


def test_the_committed_study_is_complete():
    """data/cpu_study/summary.json holds every run the study plans, each with every seed, in the key format of
    data/summary.json (rel_l2 = median of rel_l2_seeds)."""
    cfg = load(ROOT / STUDY)
    summary = json.loads((ROOT / "data/cpu_study/summary.json").read_text())
    study = json.loads((ROOT / "data/cpu_study/study.json").read_text())
    assert study["params"] == STUDY and study["controls"] == list(cfg.optimizers)   # the whole study, every control
    for problem, depth, control in plan(cfg, study["ends_only"]):
        m = summary["pinn"][problem][str(depth)][control]
        seeds = m["rel_l2_seeds"]
        assert len(seeds) == len(cfg.seeds) == 3, (problem, depth, control)
        finite = [e for e in seeds if e is not None]
        assert m["rel_l2"] == (statistics.median(finite) if finite else None)


def test_a_part_of_the_study_is_the_whole_restricted_to_its_controls(tmp_path):
    """--controls trains a part of the study: exactly the whole plan's runs of those controls, in the same order,
    each with the run key the whole study gives it (run_key reads a control's own options only), so the whole
    study keeps them."""
    cfg = load(tiny_study(tmp_path))
    whole = plan(cfg, ["lra"])
    part = plan(cfg, ["lra"], controls=["lra"])
    assert part == [r for r in whole if r[2] == "lra"] and {r[1] for r in part} == {1, 3}
    d = generate("poisson", 8, 4)
    data = PinnData(*(torch.as_tensor(d[k]) for k in ("domain", "boundary", "boundary_values")), None, None, None)
    only = dataclasses.replace(cfg, optimizers={"lra": cfg.optimizers["lra"]})
    assert run_key(only, "poisson", 3, "lra", 0, data) == run_key(cfg, "poisson", 3, "lra", 0, data)


def test_the_committed_baseline_check_is_what_its_seed_files_give(tmp_path):
    """data/cpu_study/baseline_check/table.md (more seeds at the cells below DeepXDE's strength, issue 21) is what
    benchmarks/baseline_strength.py prints from the committed seed files, every one of the study's settings (the
    script refuses a seed file of other settings)."""
    out = tmp_path / "table.md"
    run = subprocess.run([sys.executable, "benchmarks/baseline_strength.py", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert out.read_text() == (ROOT / "data/cpu_study/baseline_check/table.md").read_text()
