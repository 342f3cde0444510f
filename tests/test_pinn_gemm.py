"""The oneDNN products of pinn.gemm equal torch.matmul, with derivatives of every order; the choice between
them is measured once, cached per CPU / PyTorch / shape, and honoured when forced."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pinn import gemm
from pinn.derivatives import gemm_for, stacked_rows, value_and_derivatives
from pinn.gemm import choose_gemm, gemm_choice, mm_nn, mm_nt, onednn_available, use_onednn
from pinn.model import MLP

pytestmark = pytest.mark.skipif(not onednn_available(), reason="PyTorch without oneDNN")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """A fresh cache folder and an empty in-process memo for every test (never the user's cache)."""
    monkeypatch.setenv(gemm.CACHE_ENV, str(tmp_path))
    gemm._MEMO.clear()
    yield tmp_path
    gemm._MEMO.clear()


@pytest.fixture
def fake_timer(monkeypatch):
    """Replace the micro-benchmark by canned timings; counts the measurements."""
    calls = []

    def measure(width, n_rows, dtype=torch.float32, **kw):
        calls.append((width, n_rows, dtype))
        return dict(fake_timer.timings)

    fake_timer = type("T", (), {"calls": calls, "timings": {"aten": 2e-3, "onednn": 1e-3}})
    monkeypatch.setattr(gemm, "measure_products", measure)
    return fake_timer

OPS = {  # op, the same product in torch, shapes of its two arguments
    "mm_nt": (mm_nt, lambda a, b: a @ b.t(), (37, 5), (3, 5)),
    "mm_nn": (mm_nn, lambda a, b: a @ b, (37, 3), (3, 5)),
    "g.T @ x": (lambda a, b: mm_nn(a.t(), b), lambda a, b: a.t() @ b, (37, 3), (37, 5)),
}


@pytest.mark.parametrize("name", OPS)
def test_product_and_its_first_and_second_derivatives(name):
    op, ref, sa, sb = OPS[name]
    torch.manual_seed(0)
    a, b = torch.randn(sa, requires_grad=True), torch.randn(sb, requires_grad=True)
    y, yr = op(a, b), ref(a, b)
    torch.testing.assert_close(y, yr)
    # first derivatives, then the derivative of a function of them (double backward)
    v = torch.randn_like(y)
    g = torch.autograd.grad((y * v).sum(), (a, b), create_graph=True)
    gr = torch.autograd.grad((yr * v).sum(), (a, b), create_graph=True)
    for x, xr in zip(g, gr):
        torch.testing.assert_close(x, xr)
    h = torch.autograd.grad(sum(x.sin().sum() for x in g), (a, b), allow_unused=True)
    hr = torch.autograd.grad(sum(x.sin().sum() for x in gr), (a, b), allow_unused=True)
    for x, xr in zip(h, hr):
        torch.testing.assert_close(x, xr)


def test_forced_choices_are_honoured(fake_timer):
    x32, x64 = torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.float64)
    fake_timer.timings = {"aten": 1e-3, "onednn": 2e-3}      # auto would take aten
    assert use_onednn(x32, "onednn") and choose_gemm("onednn", 50, 11360) == "onednn"
    assert not use_onednn(x32, "aten") and choose_gemm("aten", 50, 11360) == "aten"
    assert "forced" in gemm_choice("onednn", 50, 11360).reason
    assert not use_onednn(x64) and choose_gemm("auto", 50, 11360, torch.float64) == "aten"
    assert choose_gemm("auto", 50, 11360, torch.float32, "meta") == "aten"
    assert fake_timer.calls == []                                   # nothing forced or impossible is timed


def test_bad_choices_are_rejected():
    for bad in ("blas", "mkl", "", "ONEDNN"):
        with pytest.raises(ValueError, match="'auto', 'aten', 'onednn'"):
            choose_gemm(bad, 50, 1000)
    with pytest.raises(ValueError, match="float32 CPU"):
        choose_gemm("onednn", 50, 1000, torch.float64)


@pytest.mark.parametrize("faster", ["aten", "onednn"])
def test_auto_measures_once_then_reads_the_cache(cache_dir, fake_timer, faster):
    fake_timer.timings = {"aten": 1e-3, "onednn": 3e-3} if faster == "aten" else {"aten": 3e-3, "onednn": 1e-3}
    first = gemm_choice("auto", 50, 11360)
    assert first.gemm == faster and len(fake_timer.calls) == 1
    assert "3.00x faster" in first.reason and "measured now" in first.reason
    entry, = json.loads((cache_dir / "gemm.json").read_text())["entries"].values()
    assert entry["gemm"] == faster and entry["torch"] == torch.__version__ and entry["cpu"] == gemm.cpu_model()
    gemm._MEMO.clear()                                              # a new process: reads the file
    second = gemm_choice("auto", 50, 11000)                         # same rows bucket
    assert second.gemm == faster and len(fake_timer.calls) == 1 and "cached in" in second.reason
    gemm_choice("auto", 50, 2000)                                   # another bucket: measured, added
    gemm_choice("auto", 32, 11360)                                  # another width
    assert len(fake_timer.calls) == 3
    assert len(json.loads((cache_dir / "gemm.json").read_text())["entries"]) == 3


def test_a_near_tie_keeps_aten(fake_timer):
    fake_timer.timings = {"aten": 1.00e-3, "onednn": 0.99e-3}
    assert choose_gemm("auto", 50, 11360) == "aten"


@pytest.mark.parametrize("content", ["{not json", "[]", '{"format": 1, "entries": {"k": 3}}',
                                     '{"format": 1, "entries": []}', ""])
def test_a_corrupt_cache_is_ignored_and_rewritten(cache_dir, fake_timer, content):
    (cache_dir / "gemm.json").write_text(content)
    assert choose_gemm("auto", 50, 11360) == "onednn" and len(fake_timer.calls) == 1
    data = json.loads((cache_dir / "gemm.json").read_text())
    assert data["format"] == 1 and len(data["entries"]) == 1


def test_the_cache_folder_comes_from_the_environment(cache_dir):
    assert gemm.cache_path() == cache_dir / "gemm.json"


def test_real_measurement_is_quick_and_complete(cache_dir):
    # The actual micro-benchmark (small shape): both libraries timed, one of them chosen, file written.
    c = gemm_choice("auto", 16, 256)
    assert c.gemm in ("aten", "onednn") and set(c.timings) == {"aten", "onednn"}
    assert all(t > 0 for t in c.timings.values()) and (cache_dir / "gemm.json").exists()


def test_value_and_derivatives_follows_the_choice(fake_timer):
    # "auto" in the derivative pass resolves through the same cache (eager and compiled), on its stacked rows.
    torch.manual_seed(0)
    model = MLP(2, 16, 3)
    x = torch.rand(40, 2)
    choice = gemm_for(model, x, (0,), 30)
    assert choice.gemm == "onednn" and fake_timer.calls == [(16, gemm.rows_bucket(stacked_rows(40, 2, 1, 30)),
                                                             torch.float32)]
    u = value_and_derivatives(model, x, (0,), 30)[0]
    u2 = torch.compile(value_and_derivatives, dynamic=False, fullgraph=True)(model, x, (0,), 30)[0]
    torch.testing.assert_close(u, u2)
    assert len(fake_timer.calls) == 1


def test_compiled_derivative_pass_equals_eager():
    # torch.compile keeps the custom ops as kernels; forward and weight gradients agree with eager.
    torch.manual_seed(3)
    model = MLP(2, 16, 4)
    x = torch.rand(80, 2)

    def loss(fn):
        model.zero_grad()
        u, du, d2u = fn(model, x, (0,), 60)
        (du[:, 1] + u[:60] * du[:, 0] - 0.01 * d2u[0]).square().mean().backward()
        return [p.grad.clone() for p in model.parameters()]

    eager = loss(value_and_derivatives)
    compiled = loss(torch.compile(value_and_derivatives, dynamic=False))
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_the_trace_time_choice_is_marked_as_torch_marks_it_and_eager_stages_skip_dynamo():
    # pinn.gemm marks its trace-time choice constant by hand (the flag torch.compiler.assume_constant_result
    # sets) so that an eager stage never imports torch._dynamo (2-3 s); if torch's decorator changes, this fails.
    def probe():
        return True

    marked = torch.compiler.assume_constant_result(probe)
    flags = {k: v for k, v in vars(marked).items() if k.startswith("_dynamo")}
    assert flags == {k: v for k, v in vars(gemm._resolve).items() if k.startswith("_dynamo")} != {}
    code = "import sys, pinn.trainer, pinn.stages.train; print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"
