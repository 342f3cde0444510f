"""The study's verdicts follow issue 21's rule: a verdict only where every seed agrees and the baseline is at full
strength (our AdamW within 1.5x of DeepXDE's median or inside its seed range); otherwise "no verdict" and why."""
from pinn.verdicts import derive, table


def _run(seeds):
    return {"rel_l2_seeds": seeds}


def _deepxde(by_depth):
    return {"deepxde": {"burgers": {str(d): {"rel_l2_lbfgs_seeds": s} for d, s in by_depth.items()}}}


def _find(rows, claim, depth):
    return next(r for r in rows if r.claim == claim and r.depth == depth)


def test_a_full_strength_baseline_and_separated_seeds_give_a_verdict():
    lbfgs = {"pinn": {"burgers": {
        "4": {"adamw": _run([0.010, 0.012, 0.011]), "stablegrad": _run([0.009, 0.011, 0.010])},
        "32": {"adamw": _run([0.10, 0.20, 0.15]), "stablegrad": _run([0.05, 0.10, 0.08]), "agc": _run([0.04, 0.2, 0.1])},
    }}}
    rows = derive(lbfgs, _deepxde({4: [0.010, 0.011, 0.012], 32: [0.09, 0.12, 0.30]}))
    assert _find(rows, "depth hurts AdamW (ours)", 32).verdict.startswith("yes")
    assert _find(rows, "depth hurts Adam (DeepXDE's own runs)", 32).verdict.startswith("yes")
    assert _find(rows, "StableGrad beats adamw", 32).verdict.startswith("yes")          # lower on every seed
    assert _find(rows, "StableGrad beats adamw", 4).verdict.startswith("yes")
    assert _find(rows, "StableGrad beats agc", 32).verdict == "no verdict: lower than agc on 2 of 3 seeds"
    assert "| StableGrad beats agc | burgers | 32 |" in table(rows)


def test_a_weak_or_unknown_baseline_gives_no_verdict_even_when_seeds_agree():
    lbfgs = {"pinn": {"burgers": {
        "4": {"adamw": _run([0.010, 0.012, 0.011]), "stablegrad": _run([0.009, 0.011, 0.010])},
        "8": {"adamw": _run([0.2, 0.3, 0.25]), "stablegrad": _run([0.01, 0.02, 0.03])},
        "16": {"adamw": _run([0.2, 0.3, 0.25]), "stablegrad": _run([0.01, 0.02, 0.03])},
    }}}
    rows = derive(lbfgs, _deepxde({4: [0.010, 0.011, 0.012], 8: [0.002, 0.003, 0.016]}))   # ours 83x weaker at 8
    for claim in ("depth hurts AdamW (ours)", "StableGrad beats adamw"):
        assert _find(rows, claim, 8).verdict.startswith("no verdict: baseline below full strength")
        assert _find(rows, claim, 16).verdict == ("no verdict: baseline strength unknown "
                                                  "(no DeepXDE run at this depth)")


def test_overlapping_seed_ranges_and_missing_seeds_give_no_verdict():
    lbfgs = {"pinn": {"burgers": {
        "4": {"adamw": _run([0.01, 0.05, 0.02])},
        "8": {"adamw": _run([0.03, 0.04, 0.02]), "stablegrad": _run([0.01, None, 0.02])},
    }}}
    rows = derive(lbfgs, _deepxde({4: [0.01, 0.02, 0.03], 8: [0.02, 0.03, 0.04]}))
    assert _find(rows, "depth hurts AdamW (ours)", 8).verdict == "no verdict: the seed ranges overlap"
    assert not [r for r in rows if r.claim.startswith("StableGrad")]   # a diverged seed: no paired claim at all
