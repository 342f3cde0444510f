"""One place for the look of every paper figure: colours, labels, saving."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# The same colour for the same optimizer in every figure.
COLORS = {
    "adamw": "#d62728",          # red: plain AdamW (BN-free for CNNs)
    "nobn-adamw": "#d62728",
    "stablegrad": "#1f77b4",     # blue: AdamW + StableGrad
    "nobn-stablegrad": "#1f77b4",
    "bn-adamw": "#7f7f7f",       # grey: the BatchNorm reference
}
LABELS = {
    "adamw": "AdamW",
    "stablegrad": "AdamW + StableGrad",
    "bn-adamw": "with BN, AdamW",
    "nobn-adamw": "no BN, AdamW",
    "nobn-stablegrad": "no BN, AdamW + StableGrad",
}

plt.rcParams.update({
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
    "legend.fontsize": 9,
})


def save(fig, stem: str | Path) -> None:
    """Write `stem`.png and `stem`.pdf (stem without suffix) and close the figure."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".png"), bbox_inches="tight")
    fig.savefig(stem.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)
