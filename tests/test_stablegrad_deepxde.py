"""DeepXDE accepts a StableGrad in ``Model.compile`` and trains its Burgers example with it.

DeepXDE picks its backend at import and changes global torch state, so it runs in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("deepxde")

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import torch
    import deepxde as dde
    from stablegrad import StableGrad

    torch.manual_seed(0)
    np.random.seed(0)
    dde.config.set_random_seed(0)
    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 0.99))

    def pde(x, y):
        dy_x = dde.grad.jacobian(y, x, i=0, j=0)
        dy_t = dde.grad.jacobian(y, x, i=0, j=1)
        dy_xx = dde.grad.hessian(y, x, i=0, j=0)
        return dy_t + y * dy_x - 0.01 / np.pi * dy_xx

    bc = dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
    data = dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=1000, num_boundary=40, num_initial=80)
    net = dde.nn.FNN([2] + [20] * 3 + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    opt = StableGrad(torch.optim.Adam(net.parameters(), lr=1e-3), net)
    model.compile(opt, lr=1e-3)
    assert model.opt is opt
    losshistory, _ = model.train(iterations=ITERATIONS, display_every=ITERATIONS // 4, verbose=0)
    first, last = np.sum(losshistory.loss_train[0]), np.sum(losshistory.loss_train[-1])
    print("RESULT", json.dumps({"first": float(first), "last": float(last), "steps": model.train_state.step}))
""")


def test_deepxde_trains_burgers_with_stablegrad():
    env = {**os.environ, "DDE_BACKEND": "pytorch", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT.replace("ITERATIONS", "400")], check=False, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["steps"] == 400
    assert result["last"] < 0.3 * result["first"], result
