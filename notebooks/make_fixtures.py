"""Regenerate notebooks/fixtures/ from the pipeline outputs in data/ (run after `dvc repro`).

    python notebooks/make_fixtures.py [--data data] [--out notebooks/fixtures]

The fixtures are small copies of exactly the files the notebooks read (the lists in notebooks/_data.py), in
the layout of data/, so that the notebooks run in the test suite without the pipeline outputs:
- summaries, ablation and metrics.json files: verbatim;
- history.csv: verbatim (PINN: the first seed only, at most 101 rows);
- grad_scales.json: numbers rounded to 4 significant digits; PINN: the first seed only; CNN: only the
  first record and each epoch's last record are kept (epoch_end_records re-indexed to match), the
  per-epoch medians are the full run's;
- prediction.npz (Burgers, deepest depth): float32, every other time and every 4th space point.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data

MAX_HISTORY_ROWS = 101


def _round(x, digits: int = 4):
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    if isinstance(x, list):
        return [_round(v, digits) for v in x]
    if isinstance(x, dict):
        return {k: _round(v, digits) for k, v in x.items()}
    return x


def _history(src: Path) -> str:
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "seed" in rows[0]:
        rows = [r for r in rows if r["seed"] == rows[0]["seed"]]
    if len(rows) > MAX_HISTORY_ROWS:  # keep the first and last rows, evenly spaced in between
        keep = np.unique(np.linspace(0, len(rows) - 1, MAX_HISTORY_ROWS).round().astype(int))
        rows = [rows[i] for i in keep]
    out = io.StringIO()
    if rows:
        w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return out.getvalue()


def _grad_scales(src: Path) -> dict:
    d = json.loads(src.read_text())
    if "steps" not in d:  # PINN: {"<seed>": recorder dict}; keep the first seed
        seed = "0" if "0" in d else next(iter(d))
        return {seed: _round(d[seed])}
    ends = d.get("epoch_end_records")
    if ends:  # CNN: the first record and each epoch's last record
        keep = sorted({0, *(e - 1 for e in ends if e > 0)})
        for key in ("steps", "before", "after"):
            d[key] = [d[key][i] for i in keep]
        d["epoch_end_records"] = [sum(1 for i in keep if i < e) for e in ends]
    return _round(d)


def _prediction(src: Path, dst: Path) -> None:
    d = np.load(src)
    u, ref, x, t = d["u"], d["u_ref"], d["axis0"], d["axis1"]   # u[t, x]
    ts, xs = max(1, len(t) // 50), max(1, len(x) // 64)
    arrays = {"u": u[::ts, ::xs], "u_ref": ref[::ts, ::xs], "axis0": x[::xs], "axis1": t[::ts]}
    # like np.savez_compressed, but with fixed zip timestamps so that regenerating gives identical bytes
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(a, dtype=np.float32))
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.name == "history.csv":
        dst.write_text(_history(src))
    elif src.name == "grad_scales.json":
        dst.write_text(json.dumps(_grad_scales(src), separators=(",", ":")) + "\n")
    elif src.name == "prediction.npz":
        _prediction(src, dst)
    else:
        shutil.copyfile(src, dst)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=_data.DATA)
    ap.add_argument("--out", type=Path, default=_data.FIXTURES)
    args = ap.parse_args(argv)
    plan = {}
    for part in ("pinn", "cnn"):
        base = args.data / part
        files = _data.cnn_files() if part == "cnn" else _data.pinn_files(
            json.loads((base / "summary.json").read_text()))
        missing = [f for f in files if not (base / f).is_file()]
        if missing:
            raise SystemExit(f"{base} lacks {len(missing)} needed files (first: {missing[0]}); run `dvc repro`")
        plan[part] = files
    for part, files in plan.items():
        shutil.rmtree(args.out / part, ignore_errors=True)
        for rel in files:
            copy(args.data / part / rel, args.out / part / rel)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {sum(map(len, plan.values()))} files to {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
