"""Where the notebooks read the pipeline outputs from, and the few helpers they share.

A notebook reads ``data/`` (the outputs of ``dvc repro``) when every file it needs is there, and otherwise the
small committed copies in ``notebooks/fixtures/`` (same layout as ``data/``, regenerated from ``data/`` by
``python notebooks/make_fixtures.py``). Only part of ``data/`` is in git (metrics, histories, summaries),
so a fresh clone without ``dvc pull`` / ``dvc repro`` uses the fixtures.

    STABLEGRAD_NOTEBOOK_DATA=auto      (default) data/ if complete, else the fixtures
    STABLEGRAD_NOTEBOOK_DATA=fixtures  always the fixtures (what the test suite must also pass with)
    STABLEGRAD_NOTEBOOK_DATA=data      always data/ (an error if a file is missing)
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
FIXTURES = ROOT / "notebooks" / "fixtures"
ENV = "STABLEGRAD_NOTEBOOK_DATA"

CNN_ARCHS = ("resnet50", "efficientnet_v2_s")
CNN_VARIANTS = ("bn-adamw", "nobn-adamw", "nobn-stablegrad")
CNN_FILES = ("metrics.json", "history.csv", "grad_scales.json")


def pinn_grid(summary: dict) -> tuple[list[str], list[int], list[str]]:
    """(problems, depths ascending, optimizers) of a PINN summary.json."""
    problems = list(summary)
    depths = sorted({int(d) for p in problems for d in summary[p]})
    optimizers = sorted({o for p in problems for d in summary[p] for o in summary[p][d]},
                        key=lambda o: (o != "adamw", o))
    return problems, depths, optimizers


def pinn_files(summary: dict) -> list[str]:
    """Every file (relative to data/pinn) that the PINN notebook reads, given its summary.json."""
    problems, depths, optimizers = pinn_grid(summary)
    deepest = max(depths)
    files = ["summary.json", "ablation.json"]
    files += [f"runs/{p}-{d}-{o}/metrics.json" for p in problems for d in depths for o in optimizers]
    for p in problems:
        for o in optimizers:
            files += [f"runs/{p}-{deepest}-{o}/history.csv", f"runs/{p}-{deepest}-{o}/grad_scales.json"]
    if "burgers" in problems:
        files += [f"runs/burgers-{deepest}-{o}/prediction.npz" for o in optimizers]
    return files


def cnn_files() -> list[str]:
    """Every file (relative to data/cnn) that the CNN notebook reads."""
    return [f"runs/{a}-{v}/{f}" for a in CNN_ARCHS for v in CNN_VARIANTS for f in CNN_FILES]


@dataclass
class Source:
    """Where one notebook's inputs are: ``base`` is data/<part> or notebooks/fixtures/<part>."""

    part: str
    base: Path
    mode: str                                              # "data" | "fixtures"
    missing: list[str] = field(default_factory=list)       # files of data/<part> that were missing

    def __truediv__(self, rel: str) -> Path:
        return self.base / rel

    def describe(self) -> str:
        where = os.path.relpath(self.base, ROOT)
        if self.mode == "data":
            return f"reading the pipeline outputs in {where}/"
        why = (f"{len(self.missing)} of the needed files are missing from data/{self.part}/ "
               f"(first: {self.missing[0]})" if self.missing else f"{ENV}=fixtures")
        return (f"reading the small committed FIXTURES in {where}/ ({why}); "
                "run `dvc repro` (or `dvc pull`) for the full outputs")


def _files_for(part: str, base: Path) -> list[str] | None:
    if part == "cnn":
        return cnn_files()
    summary = base / "summary.json"
    return pinn_files(json.loads(summary.read_text())) if summary.is_file() else None


def source(part: str) -> Source:
    """The Source for ``part`` ("pinn" or "cnn"), following STABLEGRAD_NOTEBOOK_DATA (see the module doc)."""
    if part not in ("pinn", "cnn"):
        raise ValueError(f"part must be 'pinn' or 'cnn', not {part!r}")
    mode = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if mode not in ("auto", "data", "fixtures"):
        raise ValueError(f"{ENV}={mode!r}: use auto, data or fixtures")
    base = DATA / part
    files = _files_for(part, base)
    missing = ["summary.json"] if files is None else [f for f in files if not (base / f).is_file()]
    if mode == "data" and missing:
        raise FileNotFoundError(f"{ENV}=data but data/{part}/ lacks {missing[:5]} ({len(missing)} files)")
    if mode != "fixtures" and not missing:
        return Source(part, base, "data")
    src = Source(part, FIXTURES / part, "fixtures", missing if mode == "auto" else [])
    absent = [f for f in (_files_for(part, src.base) or ["summary.json"]) if not (src.base / f).is_file()]
    if absent:
        raise FileNotFoundError(f"the fixtures in {src.base} lack {absent[:5]}: run notebooks/make_fixtures.py")
    return src


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def read_csv(path: Path) -> dict[str, list[float]]:
    """Columns of a CSV file as lists of floats (empty cells as NaN)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) if r[k] not in ("", None) else float("nan") for r in rows] for k in rows[0]} \
        if rows else {}


def fmt(x, spec: str = ".3e") -> str:
    return "-" if x is None else format(x, spec)


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table (display it with ``IPython.display.Markdown``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
