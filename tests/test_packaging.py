"""The library installs as a library: the wheel holds `stablegrad` alone, requires torch alone (its baselines'
packages are the `baselines` extra, the experiments' the `pipeline` extra), and installed into a fresh
virtualenv that sees torch and nothing else it runs a StableGrad step.

How, without downloading torch: the wheel is built offline (`pip wheel --no-build-isolation --no-index`) from a
copy of pyproject.toml, README.md and stablegrad/; the fresh venv (no pip, no packages) gets one .pth file
naming a folder of links to torch's distribution and those it requires (its Requires-Dist closure, read from
the installed metadata), so that `pip --python <venv> install --no-index <wheel>` must resolve the wheel's
requirements from what that venv sees: a requirement beyond torch fails the install. The step then runs in
isolated mode (-I) from an empty folder, so neither this checkout nor the project's venv can be imported.

What this proves: the wheel's files and Requires-Dist; the install succeeds offline with only torch's closure
visible; `import stablegrad` and a StableGrad(AdamW) step work there; dvc, matplotlib, scipy, scikit-learn,
tqdm, pyyaml, torchvision, platformdirs, numpy, timm and pytorch-optimizer are not even importable there; a
baseline needing the extra says how to install it. What it does not: that pip would fetch and install torch
itself from the index (torch is linked in, not installed), nor the oldest versions the lower bounds allow.
"""
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import distribution

import pytest
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.slow

PIPELINE_ONLY = ("dvc", "matplotlib", "scipy", "sklearn", "tqdm", "yaml", "torchvision", "platformdirs", "numpy",
                 "timm", "pytorch_optimizer", "pinn", "cnn", "pipeline", "paper_figures")

STEP = f"""
import importlib.util, sys
import torch
import stablegrad
from stablegrad import StableGrad
assert stablegrad.__file__.startswith(sys.prefix), stablegrad.__file__
present = [m for m in {PIPELINE_ONLY!r} if importlib.util.find_spec(m) is not None]
assert not present, present
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
opt = StableGrad(torch.optim.AdamW(model.parameters(), lr=1e-2), model)
before = [p.detach().clone() for p in model.parameters()]
model(torch.randn(16, 2)).square().mean().backward()
opt.step()
assert all(torch.isfinite(p).all() and not torch.equal(p, q) for p, q in zip(model.parameters(), before))
try:
    stablegrad.muon(model)
except ModuleNotFoundError as e:
    assert "stablegrad[baselines]" in str(e), e
else:
    raise AssertionError("muon built without timm")
print("stepped", sorted(m for m in sys.modules if m.split(".")[0] in {PIPELINE_ONLY!r}))
"""


def requirement_closure(name: str) -> list:
    """The installed distributions `name` needs: its Requires-Dist, recursively, markers (and extras)
    evaluated for this interpreter."""
    done: dict[str, set] = {}
    todo = [(name, frozenset())]
    while todo:
        dist_name, extras = todo.pop()
        key = canonicalize_name(dist_name)
        if key in done and extras <= done[key]:
            continue
        done.setdefault(key, set()).update(extras)
        for text in distribution(dist_name).requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (*extras, "")):
                todo.append((req.name, frozenset(req.extras)))
    return [distribution(n) for n in done]


def top_level_entries(dist) -> set[str]:
    """The site-packages entries a distribution installed (packages, modules, its .dist-info)."""
    return {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] != ".."}


def run(*cmd, **kw):
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_the_wheel_alone_installs_with_torch_only_and_runs_a_stablegrad_step(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    shutil.copytree(ROOT / "stablegrad", src / "stablegrad", ignore=shutil.ignore_patterns("__pycache__"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        "-w", str(tmp_path / "dist"), str(src))
    (wheel,) = (tmp_path / "dist").glob("stablegrad-*.whl")

    with zipfile.ZipFile(wheel) as z:
        assert {n.split("/")[0] for n in z.namelist()} == {"stablegrad", wheel.name.split("-py")[0] + ".dist-info"}
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    reqs = [Requirement(line.split(":", 1)[1].strip()) for line in meta.splitlines()
            if line.startswith("Requires-Dist:")]
    plain = {r.name for r in reqs if r.marker is None}
    extra = lambda e: {r.name for r in reqs if r.marker is not None and r.marker.evaluate({"extra": e})}
    assert plain == {"torch"}
    assert extra("baselines") - plain == {"timm", "pytorch-optimizer"}
    assert {"dvc", "matplotlib", "scipy", "scikit-learn", "tqdm", "pyyaml", "torchvision", "platformdirs",
            "numpy", "stablegrad"} <= extra("pipeline")

    env, visible = tmp_path / "venv", tmp_path / "torch_only"
    run(sys.executable, "-m", "venv", "--without-pip", str(env))
    visible.mkdir()
    for dist in requirement_closure("torch"):
        site = dist.locate_file("")
        for entry in top_level_entries(dist) - {"__pycache__"}:
            if (site / entry).exists() and not (visible / entry).exists():
                (visible / entry).symlink_to(site / entry)
    (site_packages,) = env.glob("lib/python*/site-packages")
    (site_packages / "torch_only.pth").write_text(str(visible) + "\n")
    py = str(env / "bin" / "python")
    run(sys.executable, "-m", "pip", "--python", py, "install", "--no-index", "-q", str(wheel))

    out = run(py, "-I", "-c", STEP, cwd=tmp_path).stdout
    assert out.strip() == "stepped []"
