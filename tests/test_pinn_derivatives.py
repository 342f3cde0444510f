"""Forward-propagated input derivatives equal nested torch.autograd.grad."""
import pytest
import torch

from pinn.derivatives import autograd_derivatives, value_and_derivatives
from pinn.model import MLP


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("activation", ["tanh", "sin"])
@pytest.mark.parametrize("second", [(0,), (0, 1), (1,)])
def test_matches_autograd(dtype, tol, activation, second):
    torch.manual_seed(0)
    model = MLP(2, 24, 6, activation=activation, lower=[-1.0, 0.0], upper=[1.0, 2.0]).to(dtype)
    x = torch.rand(64, 2, dtype=dtype) * torch.tensor([2.0, 2.0], dtype=dtype) - torch.tensor([1.0, 0.0],
                                                                                              dtype=dtype)
    u, du, d2u = value_and_derivatives(model, x, second)
    ua, dua, d2ua = autograd_derivatives(model, x, second)
    scale = lambda t: tol * max(1.0, t.abs().max().item())
    assert (u - ua).abs().max() <= scale(ua)
    assert (du - dua).abs().max() <= scale(dua)
    assert set(d2u) == set(second)
    for k in second:
        assert (d2u[k] - d2ua[k]).abs().max() <= scale(d2ua[k])
    assert torch.equal(u, model(x)[:, 0]) or (u - model(x)[:, 0]).abs().max() <= scale(ua)


def test_weight_gradients_match_autograd():
    # The loss gradient through the forward-propagated derivatives equals the nested-autograd one.
    torch.manual_seed(1)
    model = MLP(2, 16, 4).double()
    x = torch.rand(50, 2, dtype=torch.float64)

    def grads(fn):
        model.zero_grad()
        u, du, d2u = fn(model, x, (0, 1))
        (u * du[:, 1] + d2u[0] ** 2 - d2u[1]).square().mean().backward()
        return [p.grad.clone() for p in model.parameters()]

    for a, b in zip(grads(value_and_derivatives), grads(autograd_derivatives)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
