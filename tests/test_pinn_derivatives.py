"""Forward-propagated input derivatives equal nested torch.autograd.grad."""
import pytest
import torch

from pinn import gemm
from pinn.derivatives import autograd_derivatives, rational_tanh, value_and_derivatives
from pinn.gemm import onednn_available
from pinn.model import MLP


@pytest.fixture(autouse=True)
def _gemm_cache(tmp_path, monkeypatch):
    # gemm="auto" measures and caches: keep that out of the user's cache folder.
    monkeypatch.setenv(gemm.CACHE_ENV, str(tmp_path))
    gemm._MEMO.clear()
    yield
    gemm._MEMO.clear()


NEEDS_ONEDNN = pytest.mark.skipif(not onednn_available(), reason="no oneDNN")
GEMMS = ["aten", "auto", pytest.param("onednn", marks=NEEDS_ONEDNN)]


@pytest.mark.parametrize("dtype,tol,gemm", [(torch.float64, 1e-10, "aten"), (torch.float32, 1e-5, "aten"),
                                            pytest.param(torch.float32, 1e-5, "onednn", marks=NEEDS_ONEDNN)])
@pytest.mark.parametrize("activation", ["tanh", "sin"])
@pytest.mark.parametrize("second", [(0,), (0, 1), (1,)])
@pytest.mark.parametrize("n_deriv,n_first", [(None, None), (40, None), (30, 52), (0, 20)])
def test_matches_autograd(dtype, tol, gemm, activation, second, n_deriv, n_first):
    # Rows [0, n_deriv): value, first and second derivatives; [n_deriv, n_first): value and first; the rest:
    # the value alone.
    torch.manual_seed(0)
    model = MLP(2, 24, 6, activation=activation, lower=[-1.0, 0.0], upper=[1.0, 2.0]).to(dtype)
    x = torch.rand(64, 2, dtype=dtype) * torch.tensor([2.0, 2.0], dtype=dtype) - torch.tensor([1.0, 0.0],
                                                                                              dtype=dtype)
    u, du, d2u = value_and_derivatives(model, x, second, n_deriv, gemm=gemm, n_first=n_first)
    ua, dua, d2ua = autograd_derivatives(model, x, second)
    n = 64 if n_deriv is None else n_deriv
    n1 = n if n_first is None else n_first
    scale = lambda t: tol * max(1.0, t.abs().max().item())
    assert u.shape == (64,) and du.shape == (n1, 2) and set(d2u) == set(second)
    assert (u - ua).abs().max() <= scale(ua)
    assert (du - dua[:n1]).abs().max() <= scale(dua)
    for k in second:
        assert d2u[k].shape == (n,)
        assert n == 0 or (d2u[k] - d2ua[k][:n]).abs().max() <= scale(d2ua[k])
    assert (u - model(x)[:, 0]).abs().max() <= scale(ua)


def _loss_grads(model, x, fn, **kw):
    # A loss that reads every output: u everywhere, du on the first-derivative rows, d2u on the residual rows.
    model.zero_grad()
    u, du, d2u = fn(model, x, (0, 1), **kw)
    n, n1 = d2u[0].shape[0], du.shape[0]
    res = (u[:n] * du[:n, 1] + d2u[0] ** 2 - d2u[1]).square().mean()
    (res + (du[n:, 0] - u[n:n1]).square().mean() + u[n1:].square().mean()).backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("n_deriv,n_first", [(None, None), (30, None), (20, 35)])
def test_weight_gradients_match_autograd(n_deriv, n_first):
    # The loss gradient through the forward-propagated derivatives equals the nested-autograd one.
    torch.manual_seed(1)
    model = MLP(2, 16, 4).double()
    x = torch.rand(50, 2, dtype=torch.float64)
    n = 50 if n_deriv is None else n_deriv
    n1 = n if n_first is None else n_first

    def nested(model, x, second):
        u, du, d2u = autograd_derivatives(model, x, second)
        return u, du[:n1], {k: v[:n] for k, v in d2u.items()}

    ours = _loss_grads(model, x, value_and_derivatives, n_deriv=n_deriv, n_first=n_first)
    for a, b in zip(ours, _loss_grads(model, x, nested)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("gemm", GEMMS)
def test_float32_weight_gradients_match_float64(gemm):
    # float32 (on oneDNN or aten products) agrees with the float64 gradient to float32 accuracy.
    torch.manual_seed(2)
    model = MLP(2, 32, 6).double()
    x = torch.rand(200, 2, dtype=torch.float64)
    ref = _loss_grads(model, x, value_and_derivatives, n_deriv=150)
    got = _loss_grads(model.float(), x.float(), value_and_derivatives, n_deriv=150, gemm=gemm)
    for a, b in zip(got, ref):
        assert (a.double() - b).abs().max() <= 1e-4 * b.abs().max()


def test_bad_n_deriv_and_gemm_are_rejected():
    model = MLP(2, 8, 2)
    x = torch.rand(10, 2)
    with pytest.raises(ValueError, match="n_deriv"):
        value_and_derivatives(model, x, (0,), 11)
    with pytest.raises(ValueError, match=r"n_first must be in \[n_deriv = 5, 10\], got 4"):
        value_and_derivatives(model, x, (0,), 5, n_first=4)
    with pytest.raises(ValueError, match="n_first"):
        value_and_derivatives(model, x, (0,), 5, n_first=11)
    with pytest.raises(ValueError, match="gemm"):
        value_and_derivatives(model, x, (0,), gemm="blas")
    with pytest.raises(ValueError, match="float32 CPU"):
        value_and_derivatives(model.double(), x.double(), (0,), gemm="onednn")


def test_rational_tanh_is_float32_accurate():
    z = torch.cat([torch.linspace(-20, 20, 100001), torch.logspace(-12, 0, 2001), -torch.logspace(-12, 0, 2001)])
    ref = torch.tanh(z.double())
    got = rational_tanh(z).double()
    assert (got - ref).abs().max() <= 4e-7                       # torch.tanh's own float32 error: ~3e-8
    small = z.abs() < 1e-2
    assert ((got - ref)[small] / ref[small]).abs().max() <= 4e-7  # relative accuracy near 0 (no cancellation)
    assert got.abs().max() <= 1 and torch.equal(rational_tanh(-z), -rational_tanh(z))
    assert rational_tanh(torch.tensor([float("inf"), -float("inf")])).tolist() == [1.0, -1.0]


@pytest.mark.parametrize("activation", ["tanh", "sin"])
def test_compiled_float32_pass_matches_float64_autograd(activation):
    # Under torch.compile float32 tanh is the rational approximation: values, derivatives and weight gradients
    # still agree with the float64 nested-autograd ones to float32 accuracy.
    torch.manual_seed(4)
    model = MLP(2, 24, 5, activation=activation, lower=[-1.0, 0.0], upper=[1.0, 2.0]).double()
    x = torch.rand(90, 2, dtype=torch.float64) * torch.tensor([2.0, 2.0], dtype=torch.float64) - torch.tensor(
        [1.0, 0.0], dtype=torch.float64)
    ua, dua, d2ua = autograd_derivatives(model, x, (0, 1))
    fn = torch.compile(value_and_derivatives, dynamic=False, fullgraph=True)
    u, du, d2u = fn(model.float(), x.float(), (0, 1), 60, gemm="aten", n_first=75)
    scale = lambda t: 1e-5 * max(1.0, t.abs().max().item())
    assert du.shape == (75, 2) and d2u[0].shape == (60,)
    assert (u.double() - ua).abs().max() <= scale(ua)
    assert (du.double() - dua[:75]).abs().max() <= scale(dua)
    for k in (0, 1):
        assert (d2u[k].double() - d2ua[k][:60]).abs().max() <= scale(d2ua[k])
    ref = _loss_grads(model.double(), x, value_and_derivatives, n_deriv=60, n_first=75)
    got = _loss_grads(model.float(), x.float(), fn, n_deriv=60, gemm="aten", n_first=75)
    for a, b in zip(got, ref):
        assert (a.double() - b).abs().max() <= 1e-4 * b.abs().max()


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("n_deriv,n_first", [(50, 50), (40, 52)])
def test_seeds_in_one_batched_pass_equal_separate_passes(compiled, n_deriv, n_first):
    # K models of one architecture through one batched pass (their weights stacked): each seed's values,
    # derivatives and weight gradients equal its own pass, to float64 rounding.
    torch.manual_seed(0)
    models = [MLP(2, 16, 4, lower=[-1.0, 0.0], upper=[1.0, 2.0]).double() for _ in range(3)]
    x = torch.rand(64, 2, dtype=torch.float64)
    vd = torch.compile(value_and_derivatives, dynamic=False) if compiled else value_and_derivatives

    def loss(u, du, d2u):
        return (u.square().mean(-1) + du.square().mean((-1, -2)) + d2u[0].square().mean(-1)).sum()

    u, du, d2u = vd(models, x, (0,), n_deriv, gemm="aten", n_first=n_first)
    assert u.shape == (3, 64) and du.shape == (3, n_first, 2) and d2u[0].shape == (3, n_deriv)
    loss(u, du, d2u).backward()
    batched = [[p.grad.clone() for p in m.parameters()] for m in models]
    for k, m in enumerate(models):
        m.zero_grad()
        uk, duk, d2uk = vd(m, x, (0,), n_deriv, gemm="aten", n_first=n_first)
        for got, want in ((u[k], uk), (du[k], duk), (d2u[0][k], d2uk[0])):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        loss(uk, duk, d2uk).backward()
        for got, p in zip(batched[k], m.parameters()):
            torch.testing.assert_close(got, p.grad, rtol=1e-11, atol=1e-12)


def test_models_of_different_architectures_are_not_batched():
    with pytest.raises(ValueError, match="one architecture"):
        value_and_derivatives([MLP(2, 16, 4), MLP(2, 16, 5)], torch.rand(8, 2), (0,))
    with pytest.raises(ValueError, match="input map"):
        value_and_derivatives([MLP(2, 16, 4), MLP(2, 16, 4, upper=[2.0, 2.0])], torch.rand(8, 2), (0,))
