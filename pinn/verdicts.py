"""The study's verdicts, derived by rule from its results after the L-BFGS finish (issue 21, part 5), never by hand.

For each claim and each (problem, depth) a row: the numbers (medians and per-seed values), the baseline's
strength at that depth (ours AdamW median / DeepXDE's median, both after L-BFGS) and a verdict, printed only if
1. every seed agrees: the two seed sets do not overlap (depth claim: every seed at the depth vs every seed at
   depth 4), or, paired by seed, every difference has one sign (control claims); and
2. the baseline is at full strength at that depth: our AdamW median within `STRENGTH` x DeepXDE's median or
   within DeepXDE's seed range (for the depth claim on DeepXDE's own runs, DeepXDE is the baseline).
Otherwise "no verdict" with the reason. Claims:
- depth: "deeper is worse than depth 4 for plain Adam" on our AdamW and on DeepXDE's own runs;
- stablegrad: "StableGrad beats AdamW at this depth";
- <control>: "StableGrad beats <control>" for each other control run at that depth (agc, lra, muon, soap).

    python -m pinn.verdicts --lbfgs data/cpu_study/lbfgs/summary.json --deepxde data/cpu_study/deepxde.json \
        --out data/cpu_study/verdicts.md
"""
from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

STRENGTH = 1.5      # our AdamW within 1.5x of DeepXDE's median (or inside its seed range): full strength
SHALLOW = 4         # the depth claim compares every depth with this one


@dataclass
class Verdict:
    claim: str
    problem: str
    depth: int
    numbers: str
    strength: str
    verdict: str


def _seeds(m: dict | None, key: str = "rel_l2") -> list[float] | None:
    values = None if m is None else m.get(f"{key}_seeds")
    return None if not values or any(v is None for v in values) else [float(v) for v in values]


def _fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3g} [{' / '.join(f'{x:.2g}' for x in xs)}]"


def strength(ours: list[float] | None, deepxde: list[float] | None) -> tuple[str, bool]:
    """(text, at full strength): ours AdamW / DeepXDE, medians after L-BFGS."""
    if ours is None or deepxde is None:
        return "unknown (no DeepXDE run)" if deepxde is None else "unknown (no AdamW run)", False
    ratio = statistics.median(ours) / statistics.median(deepxde)
    full = ratio <= STRENGTH or statistics.median(ours) <= max(deepxde)
    return f"{ratio:.2g}x DeepXDE's median", full


def _separated(worse: list[float], better: list[float]) -> bool:
    return min(worse) > max(better)


def depth_verdict(deep: list[float], shallow: list[float]) -> str:
    if _separated(deep, shallow):
        return "yes: every seed worse than every seed at depth 4"
    if _separated(shallow, deep):
        return "no: every seed better than every seed at depth 4"
    return "no verdict: the seed ranges overlap"


def paired_verdict(mine: list[float], theirs: list[float], other: str) -> str:
    if len(mine) != len(theirs):
        return "no verdict: different seeds"
    diffs = [a - b for a, b in zip(mine, theirs)]
    if all(d < 0 for d in diffs):
        return f"yes: lower than {other} on every seed"
    if all(d > 0 for d in diffs):
        return f"no: higher than {other} on every seed"
    return f"no verdict: lower than {other} on {sum(d < 0 for d in diffs)} of {len(diffs)} seeds"


def derive(lbfgs: dict, deepxde: dict) -> list[Verdict]:
    """Every claim at every (problem, depth) of `lbfgs` (pinn.stages.finish's summary.json) beside `deepxde`
    (benchmarks/deepxde_reference.py's output)."""
    out = []
    for problem, by_depth in lbfgs["pinn"].items():
        dxd = deepxde.get("deepxde", {}).get(problem, {})
        dxd_seeds = {int(d): _seeds(m, "rel_l2_lbfgs") for d, m in dxd.items()}
        for depth in sorted(int(d) for d in by_depth):
            runs = by_depth[str(depth)]
            adamw = _seeds(runs.get("adamw"))
            text, full = strength(adamw, dxd_seeds.get(depth))
            weak = (f"no verdict: baseline below full strength ({text})" if dxd_seeds.get(depth)
                    else "no verdict: baseline strength unknown (no DeepXDE run at this depth)")
            shallow = _seeds(by_depth.get(str(SHALLOW), {}).get("adamw"))
            if depth != SHALLOW and adamw and shallow:
                v = depth_verdict(adamw, shallow) if full else weak
                out.append(Verdict("depth hurts AdamW (ours)", problem, depth,
                                   f"{_fmt(adamw)} vs {_fmt(shallow)} at {SHALLOW}", text, v))
            d_deep, d_shallow = dxd_seeds.get(depth), dxd_seeds.get(SHALLOW)
            if depth != SHALLOW and d_deep and d_shallow:
                out.append(Verdict("depth hurts Adam (DeepXDE's own runs)", problem, depth,
                                   f"{_fmt(d_deep)} vs {_fmt(d_shallow)} at {SHALLOW}", "DeepXDE is the baseline",
                                   depth_verdict(d_deep, d_shallow)))
            sg = _seeds(runs.get("stablegrad"))
            if sg is None or adamw is None:
                continue
            for other in [c for c in runs if c != "stablegrad"]:
                theirs = _seeds(runs[other])
                if theirs is None:
                    out.append(Verdict(f"StableGrad beats {other}", problem, depth, "a seed diverged or is missing",
                                       text, "no verdict: incomplete seeds"))
                    continue
                v = paired_verdict(sg, theirs, other) if full else weak
                out.append(Verdict(f"StableGrad beats {other}", problem, depth, f"{_fmt(sg)} vs {_fmt(theirs)}",
                                   text, v))
    return out


def table(rows: list[Verdict]) -> str:
    head = "| claim | problem | depth | rel. L2 after L-BFGS, median [per seed] | baseline (ours AdamW / DeepXDE) | verdict |"
    lines = [head, "|---|---|---|---|---|---|"]
    lines += [f"| {r.claim} | {r.problem} | {r.depth} | {r.numbers} | {r.strength} | {r.verdict} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lbfgs", type=Path, required=True, help="pinn.stages.finish's summary.json")
    ap.add_argument("--deepxde", type=Path, required=True, help="benchmarks/deepxde_reference.py's output")
    ap.add_argument("--out", type=Path, required=True, help="the markdown table")
    args = ap.parse_args(argv)
    rows = derive(json.loads(args.lbfgs.read_text()), json.loads(args.deepxde.read_text()))
    args.out.write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
