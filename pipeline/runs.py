"""The run contract shared by the PINN and CNN stages: names and layout, run key, checkpoints, seed summary.

One run (`pinn_train@burgers-16-stablegrad`, `cnn_train@resnet50-nobn-agc`) trains every seed of the params
file and writes

    <run>/metrics.json                   the summary: each value's median, min and max over seeds,
                                         `<key>_seeds` (per seed, in seed order), `seeds`, `diverged_seeds`
    <run>/history.csv                    every logged row of every seed, first column `seed`
    <run>/seeds/seed<k>/metrics.json     one seed's own metrics
    <run>/seeds/seed<k>/grad_scales.json the per-layer gradient scales (GradScaleRecorder.to_dict())
    <run>/seeds/seed<k>/...              anything else per seed (a PINN's prediction.npz)

Checkpoints (`<ckpt>/seed<k>.pt`, outside the DVC outputs) hold plain types and tensors only, are loaded
with `weights_only=True`, and are resumed only when their run key matches: a hash of the settings the run
reads, its training data and the source files it executes, so a code change retrains instead of reusing a
stale result. One that cannot be read, or whose contents do not fit the run, is set aside (`<ckpt>.unreadable`)
with one line, and the run starts afresh.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
import os
import pickle
import statistics
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


# -- layout ----------------------------------------------------------------------------------------------
def seed_dir(run: str | Path, seed: int) -> Path:
    return Path(run) / "seeds" / f"seed{seed}"


def checkpoint_path(ckpt_dir: str | Path | None, seed: int) -> Path | None:
    return None if ckpt_dir is None else Path(ckpt_dir) / f"seed{seed}.pt"


# -- run key ---------------------------------------------------------------------------------------------
# The library files every run executes, for run keys (and, as in dvc.yaml, its deps).
SHARED_SOURCES = ("stablegrad", "pipeline/runs.py", "pipeline/controls.py", "pipeline/names.py",
                  "pipeline/params.py", "pipeline/validate.py")


def source_files(paths) -> list[Path]:
    """The .py files of `paths` (files, or folders searched recursively; relative to the repository root),
    sorted, for `run_key`."""
    out = []
    for p in paths:
        p = REPO / p
        out += [p] if p.is_file() else [f for f in p.rglob("*.py") if "__pycache__" not in f.parts]
    return sorted(out)


def run_key(settings: dict, data=(), sources=()) -> str:
    """Hash of what determines a run: `settings` (JSON-able), the training `data` (arrays, tensors or bytes)
    and the contents of the `sources` files."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for a in data:
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        h.update(np.ascontiguousarray(a).tobytes() if isinstance(a, np.ndarray) else bytes(a))
    for f in sources:
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


# -- checkpoints -----------------------------------------------------------------------------------------
def save_checkpoint(path: str | Path | None, key: str, state: dict) -> None:
    """Write `state` (plain types and tensors) with its run key, atomically."""
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"key": key, **state}, tmp)
    os.replace(tmp, path)


def _set_aside(path: Path, why: str, err: Exception, log) -> None:
    """Move a checkpoint that cannot be used to `<path>.unreadable` and say so in one line."""
    if isinstance(err, pickle.UnpicklingError):  # torch's message advises weights_only=False: it would run the file
        detail = "not made of plain types and tensors only; refused, nothing in it was run"
    else:
        detail = (str(err).splitlines() or [""])[0][:200]
    aside = path.with_name(path.name + ".unreadable")
    os.replace(path, aside)
    log(f"checkpoint {path} {why} ({type(err).__name__}: {detail}); moved to {aside}, starting the run afresh")


def load_checkpoint(path: str | Path | None, key: str, map_location=None, log=print) -> dict | None:
    """The state saved at `path` if it exists, is readable and has run key `key`; else None.

    An unreadable file (truncated, empty, not a checkpoint, or holding anything but plain types and
    tensors) is named, moved aside to `<path>.unreadable` and the run starts afresh; one from other settings,
    data or code is ignored (and overwritten by the next save)."""
    if path is None or not Path(path).is_file():
        return None
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
        if not isinstance(state, dict) or "key" not in state:
            raise ValueError("not a checkpoint of this project")
    except Exception as err:  # noqa: BLE001 -- any unreadable file: set aside, never crash the stage
        _set_aside(path, "is unreadable", err, log)
        return None
    if state["key"] != key:
        log(f"checkpoint {path} is from other settings, data or code; starting the run afresh")
        return None
    return state


def resume(path: str | Path | None, key: str, restore, fresh=(), map_location=None, log=print) -> bool:
    """Resume a run from the checkpoint at `path` (read as `load_checkpoint` does): `restore(state)` loads it
    into the run. If its contents do not fit the run (`restore` raises: an entry missing, a tensor of another
    shape), every object of `fresh` (each with state_dict / load_state_dict: model, optimizer, ...) and the torch
    RNG are put back as they were, the file is set aside like an unreadable one, and the run starts afresh.
    True if the run was resumed."""
    state = load_checkpoint(path, key, map_location, log)
    if state is None:
        return False
    before, rng = [copy.deepcopy(x.state_dict()) for x in fresh], torch.get_rng_state()
    try:
        restore(state)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        for x, sd in zip(fresh, before):
            x.load_state_dict(sd)
        torch.set_rng_state(rng)
        _set_aside(Path(path), "does not fit this run", err, log)
        return False
    return True


# -- the per-seed outputs and the summary ----------------------------------------------------------------
def finite_or_none(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def summarize_seeds(per_seed: list[dict], keys: tuple[str, ...]) -> dict:
    """Over the seeds' metrics dicts: for each of `keys`, the median, min and max of the seeds that have a
    finite value (None if none has) and `<key>_seeds`; `seeds`; `diverged` (any seed) and `diverged_seeds`;
    `wall_time_s` summed; the other keys from the first seed."""
    out = {k: val for k, val in per_seed[0].items() if k not in keys and k != "seed"}
    out["seeds"] = [m["seed"] for m in per_seed]
    for key in keys:
        values = [finite_or_none(m.get(key)) for m in per_seed]
        known = [x for x in values if x is not None]
        out[key] = statistics.median(known) if known else None
        out[f"{key}_min"] = min(known) if known else None
        out[f"{key}_max"] = max(known) if known else None
        out[f"{key}_seeds"] = values
    out["diverged_seeds"] = sum(bool(m.get("diverged")) for m in per_seed)
    out["diverged"] = out["diverged_seeds"] > 0
    out["wall_time_s"] = round(sum(m.get("wall_time_s", 0.0) for m in per_seed), 2)
    return out


def write_json(path: str | Path, obj) -> None:
    """JSON with non-finite floats written as null (strict JSON for DVC and browsers)."""
    def clean(o):
        if isinstance(o, float):
            return o if math.isfinite(o) else None
        if isinstance(o, dict):
            return {k: clean(x) for k, x in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(x) for x in o]
        return o
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(clean(obj), indent=1) + "\n")


def write_study(stem: str | Path, payload: dict, markdown: str) -> None:
    """A study's results: `<stem>.json` (the payload) and `<stem>.md` (its table)."""
    stem = Path(stem)
    write_json(stem.with_suffix(".json"), payload)
    stem.with_suffix(".md").write_text(markdown)


def write_history(path: str | Path, rows: list[dict]) -> None:
    """CSV of `rows` (dicts with the same keys, `seed` first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        if not rows:
            return
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for row in rows:
            w.writerow({k: (f"{x:.6g}" if isinstance(x, float) else x) for k, x in row.items()})


def write_run(run: str | Path, per_seed: list[dict], history: list[dict], keys: tuple[str, ...]) -> dict:
    """Write `<run>/seeds/seed<k>/metrics.json`, `<run>/metrics.json` (summary) and `<run>/history.csv`;
    return the summary."""
    for m in per_seed:
        write_json(seed_dir(run, m["seed"]) / "metrics.json", m)
    summary = summarize_seeds(per_seed, keys)
    write_json(Path(run) / "metrics.json", summary)
    write_history(Path(run) / "history.csv", history)
    return summary


# -- readers (figures, notebooks) ------------------------------------------------------------------------
def read_metrics(run: str | Path) -> dict | None:
    f = Path(run) / "metrics.json"
    return json.loads(f.read_text()) if f.is_file() else None


def read_history(run: str | Path) -> dict[int, dict[str, np.ndarray]]:
    """{seed: {column: float array}} from `<run>/history.csv` (empty cells as NaN)."""
    f = Path(run) / "history.csv"
    if not f.is_file():
        return {}
    with open(f, newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_seed: dict[int, list[dict]] = {}
    for r in rows:
        by_seed.setdefault(int(r["seed"]), []).append(r)
    num = lambda x: float(x) if x not in ("", None) else math.nan
    return {s: {k: np.array([num(r[k]) for r in rs]) for k in rs[0] if k != "seed"} for s, rs in by_seed.items()}


def read_grad_scales(run: str | Path, seed: int | None = None) -> dict | None:
    """One seed's GradScaleRecorder dump (the first seed of the run by default), with `before`/`after` as
    float arrays (null -> NaN) and `steps` as an int array; None if missing or empty."""
    if seed is None:
        m = read_metrics(run)
        seed = m["seeds"][0] if m and m.get("seeds") else 0
    f = seed_dir(run, seed) / "grad_scales.json"
    if not f.is_file():
        return None
    d = json.loads(f.read_text())
    if not d.get("steps"):
        return None
    out = dict(d)
    for key in ("before", "after"):
        out[key] = np.array([[np.nan if x is None else x for x in row] for row in d[key]], dtype=float)
    out["steps"] = np.asarray(d["steps"])
    return out
