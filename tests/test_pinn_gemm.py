"""The oneDNN products of pinn.gemm equal torch.matmul, with derivatives of every order."""
import pytest
import torch

from pinn.derivatives import value_and_derivatives
from pinn.gemm import mm_nn, mm_nt, onednn_available, use_onednn
from pinn.model import MLP

pytestmark = pytest.mark.skipif(not onednn_available(), reason="PyTorch without oneDNN")

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


def test_choice_of_products():
    x32, x64 = torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.float64)
    assert use_onednn(x32) and use_onednn(x32, "onednn")
    assert not use_onednn(x64) and not use_onednn(x32, "aten")


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
