"""params.yaml `pinn:` validation: one clear line naming the key and what is allowed, before any work."""
import copy
import re
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, committed

from pinn.config import load, validate


def _with(**kw):
    return {**copy.deepcopy(committed()["pinn"]), **kw}


@pytest.mark.parametrize("edit, key, allowed", [
    ({"problems": ["burgers", "navier"]}, "pinn.problems[1]", "burgers | poisson | helmholtz"),
    ({"depths": [4, 0]}, "pinn.depths[1]", "an integer >= 1"),
    ({"depths": [4, 4]}, "pinn.depths[1]", "each value once"),
    ({"seeds": [0, 0]}, "pinn.seeds[1]", "each value once"),
    ({"problems": ["poisson", "poisson"]}, "pinn.problems[1]", "each value once"),
    ({"depths": "16"}, "pinn.depths", "a list"),
    ({"width": 0}, "pinn.width", "an integer >= 1"),
    ({"width": "wide"}, "pinn.width", "an integer"),
    ({"optimizers": {"adamw": {}, "sgd": {}}}, "pinn.optimizers.sgd", "adamw | stablegrad | clip | agc"),
    ({"optimizers": {"stablegrad": {"reference": "output", "statistic": "mad", "bias": "shared"}}},
     "pinn.optimizers.stablegrad.statistic", "std | rms"),
    ({"optimizers": {"agc": {"clipping": 0}}}, "pinn.optimizers.agc", "lacks"),
    ({"optimizers": {"agc": {"clipping": -1, "eps": 1e-3}}}, "pinn.optimizers.agc.clipping", "> 0"),
    ({"optimizers": {"lra": {"alpha": 1.0, "every": 10}}}, "pinn.optimizers.lra.alpha", "< 1"),
    ({"activation": "relu"}, "pinn.activation", "tanh"),
    ({"init": "xavier"}, "pinn.init", "glorot"),
    ({"lr": "abc"}, "pinn.lr", "a finite number > 0"),
    ({"lr": float("inf")}, "pinn.lr", "a finite number > 0"),
    ({"lr": ".inf"}, "pinn.lr", "a finite number > 0"),
    ({"eps": float("inf")}, "pinn.eps", "a finite number > 0"),
    ({"weight_decay": float("nan")}, "pinn.weight_decay", "a finite number >= 0"),
    ({"weight_decay": float("inf")}, "pinn.weight_decay", "a finite number >= 0"),
    ({"lr": -1e-3}, "pinn.lr", "> 0"),
    ({"compile": "yes"}, "pinn.compile", "true | false"),
    ({"gemm": "mkl"}, "pinn.gemm", "auto | aten | onednn"),
    ({"dtype": "float16"}, "pinn.dtype", "float32 | float64"),
    ({"points": {"burgers": {"domain": -5, "boundary": 10}}}, "pinn.points.burgers.domain", ">= 1"),
    ({"points": {"stokes": {"domain": 5, "boundary": 10}}}, "pinn.points.stokes", "burgers | poisson"),
    ({"ablation": {"problems": ["poisson"], "depths": [3.5], "steps": 5}}, "pinn.ablation.depths[0]", "integer"),
])
def test_bad_values_name_the_key_and_what_is_allowed(edit, key, allowed):
    with pytest.raises(ValueError, match=re.escape(f"`{key}`")) as e:
        validate(_with(**edit))
    assert allowed in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without CUDA")
def test_cuda_rejected_where_there_is_none():
    with pytest.raises(ValueError, match=r"`pinn.device` = 'cuda'.*CUDA is not available"):
        validate(_with(device="cuda"))


def test_unknown_and_missing_keys_are_named():
    with pytest.raises(ValueError, match=r"unknown key `pinn\.widht`; allowed keys: .*width"):
        validate({**_with(), "widht": 32})
    section = _with()
    del section["steps"]
    with pytest.raises(ValueError, match=r"lacks the key `pinn\.steps`"):
        validate(section)


def test_numeric_strings_are_numbers_in_both_sections():
    """YAML 1.1 reads 2e-3 as a string: both sections take it as the number it is."""
    from cnn.config import validate as validate_cnn

    assert validate(_with(lr="2e-3")).lr == 2e-3
    assert validate_cnn({**committed()["cnn"], "lr": "2e-3"}).lr == 2e-3


def test_committed_files_are_valid():
    assert max(load(ROOT / "params.yaml").depths) >= 16
    paper = load(ROOT / "params_paper.yaml")
    assert len(paper.seeds) >= 3 and max(paper.depths) > 16 and set(paper.optimizers) >= {"adamw", "stablegrad"}


def test_run_settings_hold_only_the_runs_own_control():
    cfg = validate(_with())
    a = cfg.run_settings("adamw")
    assert a["options"] == {} and "optimizers" not in a and "depths" not in a
    assert cfg.run_settings("stablegrad")["options"] == cfg.optimizers["stablegrad"]


@pytest.mark.parametrize("text, where", [("pinn: [unclosed\n", "line"), ("pinn:\n  lr: 1\n lr: 2\n", "line")])
def test_yaml_syntax_error_is_one_line(tmp_path, text, where):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "pinn.config", str(path)], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and where in proc.stderr and "not valid YAML" in proc.stderr


def test_a_control_may_set_its_own_lr_and_init():
    cfg = validate(_with(optimizers={"adamw": {"lr": 3e-3, "init": "glorot"}, "agc": {"clipping": 0.01, "eps": 1e-3}}))
    init, base, options = cfg.control("adamw")
    assert (init, base.lr, options) == ("glorot", 3e-3, {})
    init, base, options = cfg.control("agc")
    assert (init, base.lr, options) == (cfg.init, cfg.lr, {"clipping": 0.01, "eps": 1e-3})
    with pytest.raises(ValueError, match=r"`pinn.optimizers.adamw.lr`"):
        validate(_with(optimizers={"adamw": {"lr": 0}}))


def test_a_control_may_set_its_own_schedule_and_its_runs_follow_it():
    from pinn.trainer import lr_lambda
    cfg = validate(_with(schedule="constant", optimizers={"adamw": {}, "stablegrad": {
        "reference": "output", "statistic": "rms", "bias": "shared", "schedule": "cosine"}}))
    assert (cfg.schedule_of("adamw"), cfg.schedule_of("stablegrad")) == ("constant", "cosine")
    assert "schedule" not in cfg.control("stablegrad")[2]          # not passed to the optimizer as an option
    end = cfg.steps
    assert lr_lambda(cfg, cfg.schedule_of("adamw"))(end) == 1.0
    assert lr_lambda(cfg, cfg.schedule_of("stablegrad"))(end) == pytest.approx(cfg.final_lr_factor)
    with pytest.raises(ValueError, match=r"`pinn.optimizers.adamw.schedule`.*constant \| cosine"):
        validate(_with(optimizers={"adamw": {"schedule": "linear"}}))


# -- issue 22, defects 1 and 8: values that passed the check and then killed a stage ---------------------------
@pytest.mark.parametrize("edit, key, allowed", [
    ({"width": 1_000_000_000}, "pinn.width", "<= 4096"),
    ({"depths": [4, 100_000]}, "pinn.depths[1]", "<= 1024"),
    ({"seeds": [18446744073709551616]}, "pinn.seeds[0]", f"<= {2**32 - 1}"),
    ({"points": {"burgers": {"domain": 10**12, "boundary": 10}}}, "pinn.points.burgers.domain", "<= 10000000"),
    ({"ablation": {"problems": ["poisson"], "depths": [10**6], "steps": 5}}, "pinn.ablation.depths[0]", "<= 1024"),
])
def test_values_that_would_kill_a_stage_are_refused_with_their_bound(edit, key, allowed):
    with pytest.raises(ValueError, match=re.escape(f"`{key}`")) as e:
        validate(_with(**edit))
    assert allowed in str(e.value) and "\n" not in str(e.value)


def test_a_duplicated_yaml_key_is_refused_naming_it(tmp_path):
    """DVC rejects a params file with a repeated key; the check must not let the last one win."""
    path = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text().replace("  lr: 3.0e-3", "  lr: 3.0e-3\n  lr: 1.0e-3", 1)
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "pinn.config", str(path)], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "`lr`" in proc.stderr and "twice" in proc.stderr and "line" in proc.stderr


def test_the_pipeline_check_wants_stablegrad_while_the_ablation_is_set(params_file):
    """dvc.yaml's pinn_ablation stages read `pinn.optimizers.stablegrad`: without it DVC removed the ablation's
    outputs, then failed on the missing parameter."""
    path = params_file(pinn={"optimizers": {"adamw": {}, "agc": {"clipping": 0.01, "eps": 1e-3}}})
    proc = subprocess.run([sys.executable, "-m", "pinn.config", str(path)], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert "`pinn.optimizers`" in proc.stderr and "a `stablegrad` entry while `pinn.ablation` is set" in proc.stderr
