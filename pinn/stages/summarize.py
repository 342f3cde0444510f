"""Collect every run's metrics.json into data/pinn/summary.json and a markdown table.

    python -m pinn.stages.summarize --params params.yaml --runs data/pinn/runs --out data/pinn/summary

summary.json: {problem: {depth: {optimizer: {rel_l2, final_loss, diverged, wall_time_s, ...}}}}
(the shape that data/summary.json holds under `pinn`).
"""
import argparse
import json
from pathlib import Path

from pipeline.params import load_section


def collect(cfg, runs) -> dict:
    out = {}
    for p in cfg.problems:
        for d in cfg.depths:
            for o in cfg.optimizers:
                f = Path(runs) / f"{p}-{d}-{o}" / "metrics.json"
                if f.exists():
                    m = json.loads(f.read_text())
                    out.setdefault(p, {}).setdefault(str(d), {})[o] = {
                        k: m[k] for k in ("rel_l2", "rel_l2_seeds", "final_loss", "diverged", "wall_time_s", "steps")}
    return out


def table(summary, optimizers) -> str:
    fmt = lambda m: "diverged" if m.get("rel_l2") is None else f"{m['rel_l2']:.3e}"
    lines = ["| problem | depth | " + " | ".join(optimizers) + " |", "| --- | --- |" + " --- |" * len(optimizers)]
    for p, by_depth in summary.items():
        for d, by_opt in sorted(by_depth.items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {p} | {d} | " + " | ".join(fmt(by_opt.get(o, {})) for o in optimizers) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True, help="output stem: writes <out>.json and <out>.md")
    args = ap.parse_args(argv)
    cfg = load_section(args.params, "pinn")
    summary = collect(cfg, args.runs)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    out.with_suffix(".md").write_text("Relative L2 error on the test grid (median over seeds)\n\n"
                                      + table(summary, cfg.optimizers))
    print(table(summary, cfg.optimizers))


if __name__ == "__main__":
    main()
