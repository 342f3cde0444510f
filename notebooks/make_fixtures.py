"""Regenerate notebooks/fixtures/ from the pipeline outputs in data/ (run after `dvc repro`).

    python notebooks/make_fixtures.py [--data data] [--out notebooks/fixtures]
    python notebooks/make_fixtures.py --synthetic [--out notebooks/fixtures]

The fixtures are small copies of exactly the files the notebooks read (the lists in notebooks/_data.py), in
the layout of data/, so that the notebooks run in the test suite without the pipeline outputs:
- summary.json, the ablations and the runs' metrics.json files: verbatim;
- history.csv: every seed, at most 101 rows per seed (the first and last kept, evenly spaced between);
- seeds/seed<k>/grad_scales.json (the first seed only): numbers rounded to 4 significant digits; PINN: at
  most 41 records; CNN: only the first record and each epoch's last record are kept (epoch_end_records
  re-indexed to match), the per-epoch medians are the full run's;
- seeds/seed<k>/prediction.npz (Burgers, deepest depth, first seed): float32, every other time and every 4th
  space point.
`origin.json` records where they came from. `--synthetic` first writes a tiny made-up but format-correct run
tree (with pipeline/runs.py and pipeline/aggregate.py, like the stages) into a temporary folder and makes the
fixtures from it: for before the real outputs exist; the notebooks then say the numbers are not results.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # also puts the repository root on sys.path

from pipeline import runs
from pipeline.names import parse_variant, run_name

MAX_HISTORY_ROWS = 101     # per seed
MAX_PINN_RECORDS = 41


def _round(x, digits: int = 4):
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    if isinstance(x, list):
        return [_round(v, digits) for v in x]
    if isinstance(x, dict):
        return {k: _round(v, digits) for k, v in x.items()}
    return x


def _spaced(n: int, most: int) -> list[int]:
    """At most `most` indices of range(n), the first and last included, evenly spaced."""
    return list(range(n)) if n <= most else np.unique(np.linspace(0, n - 1, most).round().astype(int)).tolist()


def _history(src: Path) -> str:
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    by_seed: dict[str, list[dict]] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], []).append(r)
    rows = [rs[i] for rs in by_seed.values() for i in _spaced(len(rs), MAX_HISTORY_ROWS)]
    out = io.StringIO()
    if rows:
        w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return out.getvalue()


def _grad_scales(src: Path) -> dict:
    d = json.loads(src.read_text())
    ends = d.get("epoch_end_records")
    if ends:  # CNN: the first record and each epoch's last record
        keep = sorted({0, *(e - 1 for e in ends if e > 0)})
        d["epoch_end_records"] = [sum(1 for i in keep if i < e) for e in ends]
    else:     # PINN: evenly spaced records
        keep = _spaced(len(d["steps"]), MAX_PINN_RECORDS)
    for key in ("steps", "before", "after"):
        d[key] = [d[key][i] for i in keep]
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


def make(data: Path, out: Path, origin: dict) -> list[str]:
    """Copy what the notebooks read from `data` into `out` (replacing it); return the files written."""
    files: list[str] = []
    for part in ("pinn", "cnn"):
        needed = _data.files_for(part, data)
        missing = [f for f in needed if not (data / f).is_file()]
        if needed == ["summary.json"] or missing:
            first = missing[0] if missing else "summary.json settings (written by an older pipeline)"
            raise SystemExit(f"{data} lacks {max(len(missing), 1)} needed files (first: {first}); run `dvc repro`")
        files += needed
    files = list(dict.fromkeys(files))
    for sub in ("pinn", "cnn", "summary.json", _data.ORIGIN):
        p = out / sub
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    for rel in files:
        copy(data / rel, out / rel)
    runs.write_json(out / _data.ORIGIN, origin)
    return files


# -- synthetic outputs (before the real ones exist) -------------------------------------------------------
SYN_PINN = {"problems": ["burgers", "poisson"], "depths": [4, 8], "optimizers": ["adamw", "stablegrad", "clip"]}
SYN_CNN = {"archs": ["resnet50"], "variants": ["bn-adamw", "nobn-adamw", "nobn-stablegrad", "nobn-agc"]}
SYN_SEEDS = [0, 1]


def _recorder(layers: list[str], steps: list[int], before: np.ndarray, rescaled: bool,
              statistic: str = "rms") -> dict:
    """A GradScaleRecorder.to_dict(): `before` (records x layers); after = one reference scale per record
    (the last layer's) if `rescaled`, else the raw gradient."""
    after = np.repeat(before[:, -1:], before.shape[1], axis=1) if rescaled else before
    return {"statistic": statistic, "layers": layers, "steps": steps, "before": before.tolist(),
            "after": after.tolist()}


def synthetic_pinn(root: Path, rng: np.random.Generator, steps: int = 200) -> None:
    x, t = np.linspace(-1, 1, 64), np.linspace(0, 1, 26)
    for p in SYN_PINN["problems"]:
        ref = -np.sin(np.pi * x)[None, :] * np.exp(-2 * t)[:, None]                  # u[t, x]
        for d in SYN_PINN["depths"]:
            for o in SYN_PINN["optimizers"]:
                run = root / "pinn" / "runs" / run_name(p, d, o)
                per_seed, history = [], []
                for seed in SYN_SEEDS:
                    diverged = (p, d, o, seed) == ("poisson", 8, "clip", 1)
                    u = ref + rng.uniform(0.01, 0.1) * rng.standard_normal(ref.shape)
                    err = None if diverged else float(np.linalg.norm(u - ref) / np.linalg.norm(ref))
                    log_steps = list(range(0, steps + 1, 10)) if not diverged else list(range(0, 101, 10))
                    loss = np.exp(-np.array(log_steps) / rng.uniform(40, 80)) + 1e-3
                    history += [{"seed": seed, "step": s, "loss": float(v), "lr": 1e-3, "boundary_weight": 1.0}
                                for s, v in zip(log_steps, loss)]
                    layers = [f"net.{i}" for i in range(d)] + ["out"]
                    rec_steps = list(range(0, log_steps[-1] + 1, 20))
                    depth_profile = np.exp(np.linspace(-1.5, 0, d + 1))
                    drift = np.exp(-np.array(rec_steps) / 300.0)[:, None]
                    before = 1e-2 * depth_profile[None, :] * drift * rng.uniform(0.8, 1.25, (len(rec_steps), d + 1))
                    runs.write_json(runs.seed_dir(run, seed) / "grad_scales.json",
                                    _recorder(layers, rec_steps, before, o == "stablegrad"))
                    np.savez(runs.seed_dir(run, seed) / "prediction.npz", u=u, u_ref=ref, axis0=x, axis1=t)
                    per_seed.append({"seed": seed, "rel_l2": err, "final_loss": None if diverged else float(loss[-1]),
                                     "boundary_weight": 1.0, "wall_time_s": 1.0, "steps": log_steps[-1],
                                     "diverged": diverged, "problem": p, "depth": d, "optimizer": o,
                                     "device": "cpu", "gemm": "torch"})
                runs.write_run(run, per_seed, history, ("rel_l2", "final_loss", "boundary_weight"))
    p, d = "poisson", SYN_PINN["depths"][-1]
    rows = []
    for variant, opt in (("adamw, init=lsuv-jacobian", "adamw"), ("stablegrad, init=lsuv-jacobian", "stablegrad"),
                         ("stablegrad, statistic=std", "stablegrad")):
        for seed in SYN_SEEDS:
            rows.append({"problem": p, "depth": d, "variant": variant, "seed": seed, "optimizer": opt,
                         "init": "lsuv-jacobian", "reference": "output", "statistic": "rms", "bias": "shared",
                         "rel_l2": float(rng.uniform(0.01, 0.1)), "final_loss": float(rng.uniform(1e-3, 1e-2)),
                         "diverged": False, "wall_time_s": 1.0})
    variants = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == variant]
        stats = {k: {"median": float(np.median([r[k] for r in rs])), "min": min(r[k] for r in rs),
                     "max": max(r[k] for r in rs), "seeds": [r[k] for r in rs]} for k in ("rel_l2", "final_loss")}
        variants.append({"problem": p, "depth": d, "variant": variant, **stats, "n_seeds": len(rs),
                         "diverged_seeds": 0})
    settings = {"steps": steps, "width": 32, "seeds": SYN_SEEDS, "init": "lsuv-jacobian", "reference": "output",
                "statistic": "rms", "bias": "shared", "mode": "one-factor-at-a-time", "grid": None,
                "cases": [f"{p}:{d}"]}
    runs.write_json(root / "pinn" / "ablation" / f"{p}.json", {"settings": settings, "runs": rows,
                                                               "variants": variants})


def synthetic_cnn(root: Path, rng: np.random.Generator, epochs: int = 3, per_epoch: int = 2) -> None:
    convs = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.conv2", "fc"]
    bns = ["bn1", "layer1.0.bn1", "layer1.0.bn2", "layer2.0.bn1", "layer2.0.bn2"]
    for a in SYN_CNN["archs"]:
        for v in SYN_CNN["variants"]:
            bn, control = parse_variant(v)
            run = root / "cnn" / "runs" / run_name(a, v)
            per_seed, history = [], []
            for seed in SYN_SEEDS:
                collapse = 2 if (v, seed) == ("nobn-agc", 1) else None
                done = collapse or epochs
                acc = np.clip(np.linspace(0.3, 0.9 if bn else 0.6, done) + rng.normal(0, 0.03, done), 0, 1)
                if collapse:
                    acc[-1] = 0.1
                loss = np.exp(-np.arange(1, done + 1) / 2) * 2.3
                history += [{"seed": seed, "epoch": e + 1, "loss": float(loss[e]), "train_acc": float(acc[e]),
                             "val_acc": float(acc[e]), "test_acc": float(acc[e]), "lr": 3e-3, "time_s": 1.0,
                             "grad_scale_min": 1e-9, "grad_scale_max": 1e-2} for e in range(done)]
                layers = sorted(convs + bns, key=lambda n: n.replace("bn", "conv")) if bn else convs
                n_rec = done * per_epoch
                profile = np.ones(len(layers)) * 1e-3 if bn else np.logspace(-10, -2, len(layers))
                before = profile[None, :] * rng.uniform(0.7, 1.4, (n_rec, len(layers)))
                rec = _recorder(layers, list(range(0, n_rec * 5, 5)), before, control == "stablegrad")
                ends = [per_epoch * (e + 1) for e in range(done)]
                rec["epoch_end_records"] = ends
                for key in ("before", "after"):
                    rows = np.array(rec[key])
                    rec[f"per_epoch_median_{key}"] = [np.median(rows[e - per_epoch:e], axis=0).tolist() for e in ends]
                runs.write_json(runs.seed_dir(run, seed) / "grad_scales.json", rec)
                per_seed.append({"arch": a, "variant": v, "dataset": "digits", "stem": "imagenet", "image_size": 32,
                                 "test_acc": float(acc[-1]), "train_acc": float(acc[-1]), "val_acc": float(acc[-1]),
                                 "val_fraction": 0.1, "final_loss": float(loss[-1]), "diverged": bool(collapse),
                                 "diverged_epoch": collapse,
                                 "diverged_reason": "training accuracy near chance" if collapse else None,
                                 "epochs": done, "epochs_planned": epochs, "wall_time_s": 1.0, "lr": 3e-3,
                                 "batch_size": 64, "weight_decay": 0.05, "seed": seed, "amp": "none",
                                 "device": "cpu", "world_size": 1})
            summary = runs.write_run(run, per_seed, history, ("test_acc", "val_acc", "train_acc", "final_loss"))
            collapsed = [m for m in per_seed if m["diverged"]]
            summary["diverged_epoch"] = collapsed[0]["diverged_epoch"] if collapsed else None
            summary["diverged_reason"] = collapsed[0]["diverged_reason"] if collapsed else None
            summary["epochs"] = min(m["epochs"] for m in per_seed)
            runs.write_json(run / "metrics.json", summary)


def synthetic(root: Path, seed: int = 0) -> None:
    """A tiny made-up data/ tree in the pipeline's layout, summary.json included."""
    from pipeline.aggregate import collect

    rng = np.random.default_rng(seed)
    synthetic_pinn(root, rng)
    synthetic_cnn(root, rng)
    summary = collect({"pinn": SYN_PINN, "cnn": SYN_CNN}, root / "pinn" / "runs", root / "cnn" / "runs")
    (root / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=_data.DATA)
    ap.add_argument("--out", type=Path, default=_data.FIXTURES)
    ap.add_argument("--synthetic", action="store_true", help="made-up outputs, for before the real ones exist")
    args = ap.parse_args(argv)
    if args.synthetic:
        with tempfile.TemporaryDirectory() as tmp:
            synthetic(Path(tmp))
            files = make(Path(tmp), args.out, {"source": "synthetic"})
    else:
        files = make(args.data, args.out, {"source": "data"})
    total = sum((args.out / f).stat().st_size for f in files)
    print(f"wrote {len(files)} files to {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
