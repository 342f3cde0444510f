"""The Burgers reference (Cole-Hopf + Gauss-Hermite) against its known values."""
import numpy as np

from pinn.points import generate
from pinn.problems import burgers


def test_max_gradient_matches_published_value():
    # The steepest gradient sits at x = 0 (odd symmetry); search t finely around 1.6038/pi.
    t = np.linspace(0.50, 0.52, 4001)
    ux = np.abs(burgers.exact_ux(0.0, t))
    i = int(np.argmax(ux))
    assert abs(ux[i] - 152.00516) < 1e-3
    assert abs(t[i] - 1.6038 / np.pi) < 1e-4


def test_max_gradient_is_at_x0_on_a_fine_grid():
    x = np.linspace(-0.02, 0.02, 801)
    t = np.linspace(0.505, 0.515, 51)
    ux = np.abs(burgers.exact_ux(x[None, :], t[:, None]))
    j, i = np.unravel_index(np.argmax(ux), ux.shape)
    assert abs(x[i]) < 1e-9 and abs(ux[j, i] - 152.005) < 0.01


def test_analytic_ux_matches_finite_differences():
    x, t, h = np.array([-0.5, 0.1, 0.7]), 0.3, 1e-6
    fd = (burgers.exact(x + h, t) - burgers.exact(x - h, t)) / (2 * h)
    np.testing.assert_allclose(burgers.exact_ux(x, t), fd, rtol=1e-6, atol=1e-6)


def test_initial_and_boundary_conditions():
    x = np.linspace(-1, 1, 41)
    np.testing.assert_allclose(burgers.exact(x, 0.0), -np.sin(np.pi * x), atol=1e-12)
    np.testing.assert_allclose(burgers.exact(np.array([-1.0, 1.0]), 0.7), 0.0, atol=1e-12)


def test_quadrature_is_converged():
    x, t = np.linspace(-1, 1, 64), np.array([0.25, 0.5, 0.99])
    a = burgers.exact(x[None, :], t[:, None], n_quad=80)
    b = burgers.exact(x[None, :], t[:, None], n_quad=300)
    assert np.abs(a - b).max() < 1e-9


def test_reference_on_the_standard_grid():
    d = generate("burgers", 16, 8)
    x, t = d["axes"]
    assert x.shape == (256,) and t.shape == (100,)
    assert x[0] == -1 and x[-1] == 1 and abs(t[-1] - 0.99) < 1e-12
    assert d["test_u"].shape == (100, 256)
    # odd in x; the shock at x = 0 has formed by t = 0.99
    np.testing.assert_allclose(d["test_u"], -d["test_u"][:, ::-1], atol=1e-10)
    assert d["test_u"][-1, 127] > 0.3 and d["test_u"][-1, 128] < -0.3
