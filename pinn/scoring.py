"""How a PINN run is scored: its rel. L2 error on the test grid, none where it diverged."""
from __future__ import annotations

import numpy as np

from pinn.trainer import PinnData, RunResult, predict, rel_l2


def rel_l2_unless_diverged(res: RunResult, data: PinnData) -> tuple[np.ndarray, float | None]:
    """The run's prediction on the test grid and its rel. L2 error: None where the run diverged or the
    prediction is not finite (a diverged seed is recorded, never scored)."""
    pred = predict(res.model, data)
    return pred, (rel_l2(pred, data.reference) if np.isfinite(pred).all() and not res.diverged else None)
