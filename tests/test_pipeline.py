"""The pipeline glue: the params gate stage, the one aggregate, dvc.yaml's dependencies, packaging."""
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, committed

from cnn import trainer as cnn_trainer
from pinn import trainer as pinn_trainer
from pipeline import aggregate, runs
from pipeline.params import read

DVC = Path(sys.executable).parent / "dvc"
needs_dvc = pytest.mark.skipif(not DVC.exists(), reason="dvc not installed in this environment")


def test_unknown_section_and_yaml_errors_are_one_line(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump({**committed(), "extra": {}}))
    with pytest.raises(ValueError, match=r"unknown top-level key\(s\) \['extra'\]"):
        read(p)
    p.write_text("pinn: {lr: [1,\n")
    with pytest.raises(ValueError, match=r"line \d+, column \d+: not valid YAML"):
        read(p)


def _write_run(folder: Path, seeds_values: dict, key: str, **extra):
    per_seed = [{"seed": s, key: v, "diverged": v is None, "wall_time_s": 1.0, **extra}
                for s, v in seeds_values.items()]
    runs.write_run(folder, per_seed, [{"seed": s, "step": 0, "loss": 1.0} for s in seeds_values], (key,))


def test_aggregate_reads_only_the_runs_params_ask_for(tmp_path):
    params = committed()
    params["pinn"].update(problems=["burgers"], depths=[4, 8], optimizers={"adamw": {}, "agc": {
        "clipping": 0.01, "eps": 1e-3}})
    params["cnn"].update(archs=["resnet50"], variants={"bn-adamw": {}, "nobn-adamw": {}})
    for depth in (4, 8, 32):  # 32 is stale: not in pinn.depths any more
        for i, opt in enumerate(("adamw", "agc")):
            _write_run(tmp_path / "pinn" / f"burgers-{depth}-{opt}", {0: 0.1 / (depth + i), 1: 0.3}, "rel_l2")
    _write_run(tmp_path / "cnn" / "resnet50-bn-adamw", {0: 0.9, 1: 0.7, 2: 0.8}, "test_acc")
    _write_run(tmp_path / "cnn" / "resnet50-nobn-adamw", {0: 0.2, 1: None, 2: 0.4}, "test_acc")
    summary = aggregate.collect(params, tmp_path / "pinn", tmp_path / "cnn")
    assert summary["settings"]["pinn"]["optimizers"] == ["adamw", "agc"]
    assert set(summary["pinn"]["burgers"]) == {"4", "8"}
    m = summary["pinn"]["burgers"]["8"]["agc"]
    assert m["rel_l2"] == pytest.approx((0.1 / 9 + 0.3) / 2) and m["rel_l2_seeds"] == [0.1 / 9, 0.3]
    assert summary["cnn"]["resnet50"]["nobn-adamw"]["diverged_seeds"] == 1
    header, rows = aggregate.cnn_rows(summary, ["bn-adamw", "nobn-adamw"])
    aggregate.write_tables(tmp_path / "t", header, rows, "caption")
    md = (tmp_path / "t.md").read_text()
    assert "80.0 [70.0–90.0] %" in md and "30.0 [20.0–40.0] % (collapsed in 1/3 seeds" in md
    header, rows = aggregate.pinn_rows(summary, ["adamw", "agc"])
    assert rows[0][:2] == ["burgers", "4"] and "[" in rows[0][2]


def _stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _files(deps) -> set[str]:
    return {d for d in deps if not d.startswith("data/")}


def test_each_training_stage_depends_on_exactly_the_sources_its_run_key_hashes():
    assert _files(_stages()["pinn_train"]["deps"]) == set(pinn_trainer.SOURCES)
    assert _files(_stages()["cnn_train"]["deps"]) == set(cnn_trainer.SOURCES)


def test_a_run_depends_on_its_own_controls_options_only():
    """Editing StableGrad's options must not retrain the AdamW (or any other) runs."""
    pinn = _stages()["pinn_train"]["params"]
    cnn = _stages()["cnn_train"]["params"]
    assert [p for p in pinn if p.startswith("pinn.optimizers")] == ["pinn.optimizers.${item.optimizer}"]
    assert [p for p in cnn if p.startswith("cnn.variants")] == ["cnn.variants.${item.variant}"]
    assert not any("stablegrad" in p for p in pinn + cnn)


def test_every_stage_waits_for_the_params_check():
    for name, stage in _stages().items():
        if name != "check_params":
            assert "data/params.checked" in stage["deps"] or "data/summary.json" in stage["deps"], name


@needs_dvc
def test_dvc_yaml_resolves_with_readable_stage_names():
    proc = subprocess.run([str(DVC), "stage", "list"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    params = committed()
    for depth in params["pinn"]["depths"]:
        for opt in params["pinn"]["optimizers"]:
            assert f"pinn_train@burgers-{depth}-{opt}" in names
    for variant in params["cnn"]["variants"]:
        assert f"cnn_train@resnet50-{variant}" in names
    assert {"check_params", "aggregate", "pinn_ablation@poisson"} <= set(names)


@needs_dvc
@pytest.mark.slow
def test_a_bad_value_stops_dvc_repro_before_any_output_is_removed(tmp_path):
    """Defect: validation ran inside each stage, after DVC had removed that stage's outputs."""
    work = tmp_path / "repo"
    for item in ("pinn", "cnn", "pipeline", "stablegrad", "paper_figures", "dvc.yaml", "params.yaml"):
        src = ROOT / item
        (shutil.copytree(src, work / item, ignore=shutil.ignore_patterns("__pycache__")) if src.is_dir()
         else shutil.copy(src, work / item))
    (work / "data").mkdir()
    params = committed()
    params["pinn"]["points"]["poisson"] = {"domain": 32, "boundary": 8}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {"PATH": f"{DVC.parent}:/usr/bin:/bin", "HOME": str(tmp_path), "DVC_NO_ANALYTICS": "1"}

    def sh(*cmd):
        return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)

    assert sh("git", "init", "-q").returncode == 0 and sh(str(DVC), "init", "-q").returncode == 0
    first = sh(str(DVC), "repro", "pinn_generate@poisson")
    assert first.returncode == 0, first.stderr + first.stdout
    out = work / "data" / "pinn" / "poisson" / "collocation.npz"
    before = out.read_bytes()
    params["pinn"]["points"]["poisson"]["domain"] = "abc"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    bad = sh(str(DVC), "repro", "pinn_generate@poisson")
    assert bad.returncode != 0
    assert "pinn.points.poisson.domain" in bad.stderr + bad.stdout
    assert out.read_bytes() == before                      # the last results are still there


def test_only_the_library_is_installed(tmp_path):
    """`pip install` of this repo must not put pinn, cnn, pipeline, paper_figures into site-packages."""
    pytest.importorskip("setuptools")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("stablegrad-*.whl"))
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"stablegrad"}


def test_make_repro_names_a_bad_key_before_dvc_parses_dvc_yaml(tmp_path):
    """Issue 22, defect 2: `pinn.depths: 4` (a scalar) made DVC fail first ("'Value' object is not iterable",
    from the `matrix` of dvc.yaml) without naming the key. `make repro` checks the params file before `dvc repro`;
    this runs that check (the Makefile target) with this interpreter."""
    raw = committed()
    raw["pinn"]["depths"] = 4
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = subprocess.run(["make", "-s", "check-params", f"BIN={Path(sys.executable).parent}", f"PARAMS={params}"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "error: params: `pinn.depths` = 4 is not valid; allowed: a list" in proc.stderr
    ok = subprocess.run(["make", "-s", "check-params", f"BIN={Path(sys.executable).parent}"], cwd=ROOT,
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr


_IMPORTED = r"""
import importlib, json, sys
from pathlib import Path
root = Path(sys.argv[1])
import matplotlib, numpy, scipy, torch, torchvision  # noqa: E401,F401 -- third-party: imported once, shared

def ours():
    files = {}
    for name, m in list(sys.modules.items()):
        f = getattr(m, "__file__", None)
        if f and Path(f).resolve().is_relative_to(root) and "site-packages" not in Path(f).parts:
            files[name] = Path(f).resolve().relative_to(root).as_posix()
    return files

out = {}
for module in sys.argv[2:]:
    for name in ours():
        del sys.modules[name]
    importlib.import_module(module)
    out[module] = sorted(set(ours().values()))
print(json.dumps(out))
"""


def _stage_modules() -> dict[str, list[str]]:
    return {name: re.findall(r"python -m ([\w.]+)", stage["cmd"]) for name, stage in _stages().items()}


def test_every_stage_depends_on_every_repository_file_it_executes():
    """Issue 22, defect 3: editing pinn/points.py reran nothing (pinn_generate did not depend on it). Each stage's
    modules are imported afresh and the repository files they load must be in the stage's deps (a folder dep
    covers its files; empty __init__.py files are left out), and every file dep must be one of them."""
    modules = _stage_modules()
    proc = subprocess.run([sys.executable, "-c", _IMPORTED, str(ROOT.resolve()),
                           *sorted({m for ms in modules.values() for m in ms})],
                          cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    for name, stage in _stages().items():
        deps = [d.rstrip("/") for d in stage["deps"] if d.endswith(".py") or (ROOT / d).is_dir()]
        deps = [d for d in deps if not d.startswith("data/")]
        executed = {f for m in modules[name] for f in loaded[m] if (ROOT / f).stat().st_size > 0}
        missing = sorted(f for f in executed if not any(f == d or f.startswith(d + "/") for d in deps))
        assert not missing, f"{name}: deps lack {missing}"
        unused = sorted(d for d in deps if not any(f == d or f.startswith(d + "/") for f in executed))
        assert not unused, f"{name}: deps name {unused}, which the stage does not execute"
