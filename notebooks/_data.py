"""Where the notebooks read the pipeline outputs from, and the few helpers they share.

Importing this module makes the repository root importable (the experiment packages pinn, cnn, pipeline and
paper_figures run from the root and are not installed), so a notebook imports ``_data`` first.

A notebook reads ``data/`` (the outputs of ``dvc repro``) when every file it needs is there, and otherwise the
small committed copies in ``notebooks/fixtures/`` (same layout as ``data/``: ``summary.json``,
``pinn/runs/...``, ``pinn/ablation/<problem>.json``, ``cnn/runs/...``; regenerated from ``data/`` by
``python notebooks/make_fixtures.py``). The lists of runs come from ``summary.json`` ``settings``; the run
folders are read with the readers of ``pipeline/runs.py``.

    STABLEGRAD_NOTEBOOK_DATA=auto      (default) data/ if complete, else the fixtures
    STABLEGRAD_NOTEBOOK_DATA=fixtures  always the fixtures (what the test suite must also pass with)
    STABLEGRAD_NOTEBOOK_DATA=data      always data/ (an error if a file is missing)
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.names import run_name  # (importable once the root is on sys.path)

DATA = ROOT / "data"
FIXTURES = ROOT / "notebooks" / "fixtures"
ORIGIN = "origin.json"   # in the fixtures: where they were made from ("data" or "synthetic")
ENV = "STABLEGRAD_NOTEBOOK_DATA"


def first_seed(metrics: dict | None):
    """The first seed of a run's summary metrics (the seed whose per-seed files the notebooks read)."""
    seeds = (metrics or {}).get("seeds") or []
    return seeds[0] if seeds else None


def pinn_grid(summary: dict) -> tuple[list[str], list[int], list[str]]:
    """(problems, depths ascending, optimizers) of summary.json settings.pinn."""
    s = summary["settings"]["pinn"]
    return list(s["problems"]), sorted(int(d) for d in s["depths"]), list(s["optimizers"])


def cnn_grid(summary: dict) -> tuple[list[str], list[str]]:
    """(archs, variants) of summary.json settings.cnn."""
    s = summary["settings"]["cnn"]
    return list(s["archs"]), list(s["variants"])


def ablation_problems(base: Path) -> list[str]:
    """The problems with an ablation (base/pinn/ablation/<problem>.json)."""
    return sorted(f.stem for f in (Path(base) / "pinn" / "ablation").glob("*.json"))


def _seed_file(run: str, metrics: dict | None, name: str) -> list[str]:
    seed = first_seed(metrics)
    return [f"{run}/metrics.json"] if seed is None else [f"{run}/seeds/seed{seed}/{name}"]


def pinn_files(summary: dict, ablations: list[str]) -> list[str]:
    """Every file (relative to data/) that the PINN notebook reads, given summary.json and the problems with
    an ablation (at least one is needed)."""
    problems, depths, optimizers = pinn_grid(summary)
    done = summary.get("pinn", {})
    metrics = lambda p, d, o: done.get(p, {}).get(str(d), {}).get(o)
    run = lambda p, d, o: f"pinn/runs/{run_name(p, d, o)}"
    files = ["summary.json"]
    files += [f"pinn/ablation/{p}.json" for p in ablations] or ["pinn/ablation/<problem>.json"]
    files += [f"{run(p, d, o)}/metrics.json" for p in problems for d in depths for o in optimizers]
    if depths:
        deep = max(depths)
        for p in problems:
            for o in optimizers:
                files += [f"{run(p, deep, o)}/history.csv"]
                files += _seed_file(run(p, deep, o), metrics(p, deep, o), "grad_scales.json")
        if "burgers" in problems:
            for o in optimizers:
                files += _seed_file(run("burgers", deep, o), metrics("burgers", deep, o), "prediction.npz")
    return list(dict.fromkeys(files))


def cnn_files(summary: dict) -> list[str]:
    """Every file (relative to data/) that the CNN notebook reads, given summary.json."""
    archs, variants = cnn_grid(summary)
    files = ["summary.json"]
    for a in archs:
        for v in variants:
            run = f"cnn/runs/{run_name(a, v)}"
            files += [f"{run}/metrics.json", f"{run}/history.csv"]
            files += _seed_file(run, summary.get("cnn", {}).get(a, {}).get(v), "grad_scales.json")
    return list(dict.fromkeys(files))


def files_for(part: str, base: Path) -> list[str]:
    """The files (relative to base) that the notebook of `part` needs, from base/summary.json; just
    ["summary.json"] if it is missing or from an older pipeline (no settings)."""
    f = Path(base) / "summary.json"
    summary = json.loads(f.read_text()) if f.is_file() else {}
    if "settings" not in summary:
        return ["summary.json"]
    return pinn_files(summary, ablation_problems(base)) if part == "pinn" else cnn_files(summary)


def _missing(part: str, base: Path) -> list[str]:
    f = Path(base) / "summary.json"
    if f.is_file() and "settings" not in json.loads(f.read_text()):
        return ["summary.json (written by an older pipeline: no settings)"]
    return [rel for rel in files_for(part, base) if not (Path(base) / rel).is_file()]


@dataclass
class Source:
    """Where one notebook's inputs are: ``base`` is data/ or notebooks/fixtures/ (same layout)."""

    part: str
    base: Path
    mode: str                                              # "data" | "fixtures"
    missing: list[str] = field(default_factory=list)       # files of data/ that were missing

    def __truediv__(self, rel: str) -> Path:
        return self.base / rel

    def summary(self) -> dict:
        return json.loads((self.base / "summary.json").read_text())

    def run(self, *parts) -> Path:
        """The folder of one run of this part: src.run("burgers", 16, "adamw"), src.run("resnet50", "bn-adamw")."""
        return self.base / self.part / "runs" / run_name(*parts)

    def origin(self) -> dict:
        """For the fixtures: what they were made from ({"source": "data" | "synthetic", ...})."""
        f = self.base / ORIGIN
        return json.loads(f.read_text()) if self.mode == "fixtures" and f.is_file() else {"source": self.mode}

    def describe(self) -> str:
        where = os.path.relpath(self.base, ROOT)
        if self.mode == "data":
            return f"reading the pipeline outputs in {where}/"
        why = (f"{len(self.missing)} of the needed files are missing from data/ "
               f"(first: {self.missing[0]})" if self.missing else f"{ENV}=fixtures")
        text = (f"reading the small committed FIXTURES in {where}/ ({why}); "
                "run `dvc repro` (or `dvc pull`) for the full outputs")
        if self.origin().get("source") == "synthetic":
            text += ("\nNOTE: these fixtures are SYNTHETIC (format-correct made-up numbers, written by "
                     "`python notebooks/make_fixtures.py --synthetic`): the numbers below are not results")
        return text


def source(part: str) -> Source:
    """The Source for ``part`` ("pinn" or "cnn"), following STABLEGRAD_NOTEBOOK_DATA (see the module doc)."""
    if part not in ("pinn", "cnn"):
        raise ValueError(f"part must be 'pinn' or 'cnn', not {part!r}")
    mode = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if mode not in ("auto", "data", "fixtures"):
        raise ValueError(f"{ENV}={mode!r}: use auto, data or fixtures")
    missing = _missing(part, DATA)
    if mode == "data" and missing:
        raise FileNotFoundError(f"{ENV}=data but data/ lacks {missing[:5]} ({len(missing)} files)")
    if mode != "fixtures" and not missing:
        return Source(part, DATA, "data")
    src = Source(part, FIXTURES, "fixtures", missing if mode == "auto" else [])
    absent = _missing(part, FIXTURES)
    if absent:
        raise FileNotFoundError(f"the fixtures in {FIXTURES} lack {absent[:5]}: run notebooks/make_fixtures.py")
    return src


def read_json(path: Path):
    """A JSON file that is not a run's (summary.json, an ablation)."""
    return json.loads(Path(path).read_text())


def fmt(x, spec: str = ".3e") -> str:
    return "-" if x is None else format(x, spec)


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table (display it with ``IPython.display.Markdown``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
