"""The init / lr / option selection study (pinn/stages/select.py): the choice is the lowest held-out score,
an option grid reaches the runs, and bad arguments are one-line errors."""
from __future__ import annotations

import json
import math

import pytest

from pinn.stages.select import choose, main, parse_option
from pipeline.validate import BadInput


def row(case, init, lr, held, option=None, control="agc"):
    problem, depth = case
    return {"problem": problem, "depth": depth, "control": control, "init": init, "lr": lr, "seed": 0,
            "option": option or {}, "heldout_loss": held, "rel_l2": 0.5}


def test_choose_takes_the_lowest_mean_log_heldout_loss_and_a_diverged_case_never_wins():
    cases = [("poisson", 4), ("burgers", 4)]
    rows = [row(cases[0], "glorot", 1e-3, 1e-2, {"clipping": 0.01}), row(cases[1], "glorot", 1e-3, 1e-2, {"clipping": 0.01}),
            row(cases[0], "glorot", 1e-3, 1e-4, {"clipping": 0.04}), row(cases[1], "glorot", 1e-3, 1e-1, {"clipping": 0.04}),
            row(cases[0], "glorot", 1e-3, 1e-9, {"clipping": 0.16}), row(cases[1], "glorot", 1e-3, None, {"clipping": 0.16})]
    chosen = choose(rows)["agc"]
    assert chosen["option"] == {"clipping": 0.04}   # mean log10: -2.5 beats -2.0; a diverged case is +inf
    scores = {t["option"]["clipping"]: t["score"] for t in chosen["table"]}
    assert scores[0.04] == pytest.approx(-2.5) and scores[0.01] == pytest.approx(-2.0) and math.isinf(scores[0.16])


def test_an_option_grid_reaches_the_runs_and_a_rerun_keeps_them(tmp_path, params_file, capsys):
    params = params_file(pinn={"steps": 3, "log_every": 1})
    out = tmp_path / "sel"
    args = ["--params", str(params), "--out", str(out), "--cases", "poisson:1", "--controls", "agc", "--inits",
            "glorot", "--lrs", "1e-3", "--option", "agc.clipping=0.01,1e6"]
    main([*args, "--jobs", "1"])
    result = json.loads(out.with_suffix(".json").read_text())
    assert sorted(r["option"]["clipping"] for r in result["runs"]) == [0.01, 1e6]
    assert {r["control"] for r in result["runs"]} == {"agc"}
    held = {r["option"]["clipping"]: r["heldout_loss"] for r in result["runs"]}
    assert held[0.01] != held[1e6]          # the option changed the training (1e6: AGC never clips)
    assert result["chosen"]["agc"]["option"]["clipping"] in (0.01, 1e6)
    assert "clipping=0.01" in out.with_suffix(".md").read_text()
    capsys.readouterr()
    main([*args, "--lrs", "1e-3", "2e-3", "--jobs", "2"])      # the grid runner's pool; the kept runs by their key
    assert "2 runs kept, 2 to run (2 at once)" in capsys.readouterr().out
    again = json.loads(out.with_suffix(".json").read_text())["runs"]
    assert [r for r in again if r["lr"] == 1e-3] == result["runs"] and len(again) == 4


@pytest.mark.parametrize("text, message", [
    ("agc.clipping", "expected CONTROL.KEY=V1,V2"),
    ("agc.clipping=a,b", "expected CONTROL.KEY=V1,V2"),
    ("agc.lambda=0.1", "agc.lambda is not an option set in pinn.optimizers"),
    ("lamb.clipping=0.1", "lamb.clipping is not an option set"),
    ("agc.clipping=nan", "values must be finite"),
])
def test_bad_options_are_one_line_errors(pinn_cfg, text, message):
    with pytest.raises(BadInput, match=message):
        parse_option(text, pinn_cfg())


def test_a_schedule_grid_reaches_the_runs_and_a_bad_schedule_is_refused(tmp_path, params_file):
    params = params_file(pinn={"steps": 6, "log_every": 1, "final_lr_factor": 0.01})
    out = tmp_path / "sel"
    main(["--params", str(params), "--out", str(out), "--cases", "poisson:1", "--controls", "adamw", "--inits",
          "glorot", "--lrs", "3e-2", "--schedules", "constant", "cosine", "--jobs", "1"])
    result = json.loads(out.with_suffix(".json").read_text())
    held = {r["schedule"]: r["heldout_loss"] for r in result["runs"]}
    assert set(held) == {"constant", "cosine"} and held["constant"] != held["cosine"]   # the schedule trained
    assert result["chosen"]["adamw"]["schedule"] == min(held, key=held.get)
    assert "| cosine |" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit) as stop:
        main(["--params", str(params), "--out", str(out), "--cases", "poisson:1", "--schedules", "linear"])
    assert stop.value.code == 2
