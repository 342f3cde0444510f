"""One place for the look of every paper figure: colours, line styles, saving, and the summary's run lists.

Colours: one per gradient control (its record in pipeline/controls.py), the same in every figure; a CNN variant
`<bn|nobn>-<control>` takes its control's colour, except the BatchNorm reference `bn-adamw` (grey). BN
variants are dashed. Labels come from pipeline/names.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pipeline.controls import COLORS as CONTROL_COLORS
from pipeline.names import LABELS, parse_variant, variant_label

BN_REFERENCE = "bn-adamw"
BN_REFERENCE_COLOR = "#7f7f7f"  # grey: the BatchNorm reference (no control takes it)
assert BN_REFERENCE_COLOR not in CONTROL_COLORS.values()
STATISTIC_NAMES = {"rms": "RMS", "std": "std"}   # GradScaleRecorder statistics, as axis labels name them

plt.rcParams.update({
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
    "legend.fontsize": 9,
})


def _is_variant(name: str) -> bool:
    return name.startswith(("bn-", "nobn-"))


def color(name: str) -> str:
    """The colour of a gradient control ("stablegrad") or of a CNN variant ("nobn-stablegrad")."""
    if name == BN_REFERENCE:
        return BN_REFERENCE_COLOR
    control = parse_variant(name)[1] if _is_variant(name) else name
    return CONTROL_COLORS.get(control, "k")


def linestyle(name: str) -> str:
    """Dashed for a network with BatchNorm, solid otherwise."""
    return "--" if _is_variant(name) and parse_variant(name)[0] else "-"


def label(name: str) -> str:
    """The display name of a gradient control or a CNN variant (pipeline/names.py)."""
    return variant_label(name) if _is_variant(name) else LABELS.get(name, name)


def statistic_label(statistic: str) -> str:
    """The axis name of a GradScaleRecorder statistic: "rms" -> "weight-gradient RMS"."""
    return f"weight-gradient {STATISTIC_NAMES.get(statistic, statistic)}"


def one_statistic(records: dict) -> tuple[str | None, dict, list]:
    """One statistic per figure: (the statistic of the first record, the records of that statistic, the keys of
    those recorded with another one, which a figure leaves out and names). `records`: {key: recorder dict
    or None}; None entries are dropped."""
    present = {k: r for k, r in records.items() if r is not None}
    if not present:
        return None, {}, []
    statistic = next(iter(present.values())).get("statistic", "std")
    kept = {k: r for k, r in present.items() if r.get("statistic", "std") == statistic}
    return statistic, kept, [k for k in present if k not in kept]


def read_summary(path: str | Path) -> dict:
    """data/summary.json (pipeline/aggregate.py), with its `settings` (the lists of runs)."""
    summary = json.loads(Path(path).read_text())
    if "settings" not in summary:
        raise SystemExit(f"{path} has no `settings`: written by an older pipeline; rerun `dvc repro aggregate`")
    return summary


def save(fig, stem: str | Path) -> None:
    """Write `stem`.png and `stem`.pdf (stem without suffix) and close the figure; no creation date is embedded,
    so a rerun writes the same bytes."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".png"), bbox_inches="tight")  # PNG: no date by default
    fig.savefig(stem.with_suffix(".pdf"), bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(fig)
