"""The one aggregate: every run's metrics.json -> data/summary.json + the result tables (markdown, LaTeX, CSV).
Every figure and notebook reads data/summary.json (and the run folders, through pipeline/runs.py).

    python -m pipeline.aggregate --params params.yaml --pinn-runs data/pinn/runs --cnn-runs data/cnn/runs \
        --summary data/summary.json --tables paper_figures

Only the runs that the current params.yaml asks for are read (a depth removed from `pinn.depths` is not
reported even if its old outputs are still on disk). summary.json keys:
`pinn.<problem>.<depth>.<optimizer>.{rel_l2 (median over seeds), rel_l2_seeds, rel_l2_min, rel_l2_max,
diverged, ...}` and `cnn.<arch>.<variant>.{test_acc, test_acc_seeds, diverged, ...}`, plus `settings` (the
lists of runs, so that readers need not parse params.yaml).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

from pipeline.names import run_name
from pipeline.params import exits_on_bad_input, read
from pipeline.runs import read_metrics


def settings(params: dict) -> dict:
    """The lists of runs of a (validated) params mapping: what the aggregate reports, in params order."""
    pinn, cnn = params.get("pinn", {}), params.get("cnn", {})
    return {"pinn": {"problems": list(pinn.get("problems", [])), "depths": list(pinn.get("depths", [])),
                     "optimizers": list(pinn.get("optimizers", {}))},
            "cnn": {"archs": list(cnn.get("archs", [])), "variants": list(cnn.get("variants", {}))}}


def collect(params: dict, pinn_runs: Path, cnn_runs: Path) -> dict:
    """data/summary.json's content: the runs the params ask for that have a metrics.json."""
    s = settings(params)
    summary: dict = {"settings": s, "pinn": {}, "cnn": {}}
    for problem in s["pinn"]["problems"]:
        for depth in s["pinn"]["depths"]:
            for opt in s["pinn"]["optimizers"]:
                m = read_metrics(pinn_runs / run_name(problem, depth, opt))
                if m is not None:
                    summary["pinn"].setdefault(problem, {}).setdefault(str(depth), {})[opt] = m
    for arch in s["cnn"]["archs"]:
        for variant in s["cnn"]["variants"]:
            m = read_metrics(cnn_runs / run_name(arch, variant))
            if m is not None:
                summary["cnn"].setdefault(arch, {})[variant] = m
    return summary


def _fmt_err(m: dict | None) -> str:
    """'1.23e-01' for one seed; 'median [min–max]' over several, with how many seeds diverged."""
    if m is None:
        return "–"
    v = m.get("rel_l2")
    text = "n/a" if v is None or not math.isfinite(v) else f"{v:.2e}"
    n = len(m.get("seeds", [0]))
    if n > 1 and m.get("rel_l2_min") is not None:
        text += f" [{m['rel_l2_min']:.2e}–{m['rel_l2_max']:.2e}]"
    if m.get("diverged"):
        text += f" (diverged in {m.get('diverged_seeds', 1)}/{n} seeds)" if n > 1 else " (diverged)"
    return text


def _fmt_acc(m: dict | None) -> str:
    """'76.1 %' for one seed; 'median [min–max] %' over several, with how many seeds collapsed."""
    if m is None:
        return "–"
    n = len(m.get("seeds", [0]))
    text = f"{100 * m['test_acc']:.1f} %"
    if n > 1 and m.get("test_acc_min") is not None:
        text = f"{100 * m['test_acc']:.1f} [{100 * m['test_acc_min']:.1f}–{100 * m['test_acc_max']:.1f}] %"
    if m.get("diverged"):
        epoch = m.get("diverged_epoch")
        seeds = f" in {m.get('diverged_seeds', 1)}/{n} seeds" if n > 1 else ""
        text += f" (collapsed{seeds}" + (f", from epoch {epoch})" if epoch is not None else ")")
    return text


def pinn_rows(summary: dict, optimizers: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["problem", "depth", *[f"rel. L2, {o}" for o in optimizers]]
    rows = []
    for problem, by_depth in summary["pinn"].items():
        for depth in sorted(by_depth, key=int):
            rows.append([problem, depth, *[_fmt_err(by_depth[depth].get(o)) for o in optimizers]])
    return header, rows


def cnn_rows(summary: dict, variants: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["architecture", *[f"test acc., {v}" for v in variants]]
    rows = [[arch, *[_fmt_acc(by_var.get(v)) for v in variants]] for arch, by_var in summary["cnn"].items()]
    return header, rows


def write_tables(stem: Path, header: list[str], rows: list[list[str]], caption: str) -> None:
    """stem.md (GitHub markdown), stem.tex (a LaTeX tabular) and stem.csv."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    esc = lambda s: s.replace("%", r"\%").replace("_", r"\_").replace("±", r"$\pm$").replace("–", "--")
    tex = [r"\begin{table}[t]", r"\centering", r"\caption{" + esc(caption) + "}",
           r"\begin{tabular}{" + "l" * len(header) + "}", r"\toprule", " & ".join(map(esc, header)) + r" \\",
           r"\midrule", *[" & ".join(map(esc, r)) + r" \\" for r in rows], r"\bottomrule", r"\end{tabular}",
           r"\end{table}"]
    stem.with_suffix(".tex").write_text("\n".join(tex) + "\n")
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


@exits_on_bad_input
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--pinn-runs", type=Path, default=Path("data/pinn/runs"))
    ap.add_argument("--cnn-runs", type=Path, default=Path("data/cnn/runs"))
    ap.add_argument("--summary", type=Path, default=Path("data/summary.json"))
    ap.add_argument("--tables", type=Path, default=Path("paper_figures"))
    args = ap.parse_args()
    summary = collect(read(args.params), args.pinn_runs, args.cnn_runs)
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if summary["settings"]["pinn"]["problems"]:   # a params file without a section gets no table for it
        write_tables(args.tables / "table_pinn_errors",
                     *pinn_rows(summary, summary["settings"]["pinn"]["optimizers"]),
                     "PINN relative L2 error on the test grid, matched depth, per gradient control: median "
                     "[min–max] over the seeds of pinn.seeds.")
    if summary["settings"]["cnn"]["archs"]:
        write_tables(args.tables / "table_cnn_accuracy", *cnn_rows(summary, summary["settings"]["cnn"]["variants"]),
                     "Test accuracy with BatchNorm and without it, per gradient control: median [min–max] over "
                     "the seeds of cnn.seeds.")
    n_pinn = sum(len(o) for d in summary["pinn"].values() for o in d.values())
    n_cnn = sum(len(v) for v in summary["cnn"].values())
    print(f"aggregated {n_pinn} PINN runs and {n_cnn} CNN runs into {args.summary}")


if __name__ == "__main__":
    main()
