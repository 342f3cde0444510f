"""The grid runner (pipeline/grid.py) every PINN study uses: a run's overrides reach its settings, a result is
kept exactly when its key matches, a finished seed is kept however the command ends, and the worker processes
end with their parent (SIGKILL, SIGINT/SIGTERM to the parent, Ctrl-C to the group) without starting a queued run.
"""
from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, committed

from pipeline import grid
from pipeline.grid import Run
from pipeline.validate import BadInput


def test_overrides_set_the_shared_settings_and_the_controls_options(pinn_cfg):
    cfg = pinn_cfg(optimizers={"agc": {"clipping": 0.01, "eps": 1e-3, "lr": 3e-3}, "adamw": {}})
    run = Run.of("poisson", 4, "agc", 1, lr=1e-4, steps=7, clipping=0.5)
    c = grid.configure(cfg, run)
    assert (c.steps, c.lr) == (7, 1e-4) and c.optimizers == {"agc": {"clipping": 0.5, "eps": 1e-3}}   # its lr gives way
    assert c.control("agc")[1].lr == 1e-4
    eps = grid.configure(cfg, Run.of("poisson", 4, "agc", 1, eps=0.5))                  # AGC's eps, not Adam's
    assert eps.optimizers["agc"]["eps"] == 0.5 and eps.eps == cfg.eps
    assert run.name == "poisson-4-agc-clipping=0.5-lr=0.0001-steps=7" and Run("poisson", 4, "agc", 1).name == "poisson-4-agc"
    with pytest.raises(BadInput, match="clip_norm is neither a pinn setting nor an option of pinn.optimizers.agc"):
        grid.configure(cfg, Run.of("poisson", 4, "agc", 1, clip_norm=1.0))


def double(runs):
    for run in runs:
        yield {"value": 2 * run.seed}


def test_a_result_is_kept_exactly_when_its_key_matches(tmp_path):
    runs = [Run("poisson", d, "adamw", s) for d in (2, 4) for s in (0, 1)]
    keys = {r: f"k{r.depth}{r.seed}" for r in runs}
    path_of = lambda r: tmp_path / r.name / f"seed{r.seed}.json"
    kept, todo = grid.split(runs, keys, path_of)
    assert kept == {} and todo == [runs[:2], runs[2:]]            # one group per run, its seeds together
    records = grid.execute(todo, keys, path_of, double, jobs=1)
    assert records[runs[3]] == {"value": 2, "key": "k41"} == grid.read_record(path_of(runs[3]))

    keys[runs[1]] = "changed"                                       # settings, points or code of one seed changed
    path_of(runs[2]).write_text("{truncated")                       # an unreadable result
    kept, todo = grid.split(runs, keys, path_of)
    assert set(kept) == {runs[0], runs[3]} and todo == [[runs[1]], [runs[2]]]
    kept, todo = grid.split(runs, keys, path_of, whole_groups=True)
    assert set(kept) == set() and todo == [runs[:2], runs[2:]]    # a worker that rewrites the whole run


def tiny_study(tmp_path, steps=10**7):
    p = copy.deepcopy(committed("params_cpu_study.yaml"))
    p["pinn"].update(problems=["poisson"], depths=[1, 2, 3], steps=steps, seeds=[0], compile=False,
                     log_every=1000, checkpoint_every=10**6, grad_scale_every=1000, optimizers={"adamw": {}},
                     points={"poisson": {"domain": 32, "boundary": 8}})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(p, sort_keys=False))
    return path


def children(pid: int) -> list[int]:
    """The worker processes of `pid` (spawned multiprocessing children), from /proc."""
    out = []
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmd:
            out.append(int(d.name))
    return out


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_study(tmp_path, new_group=False):
    """The study driver, 3 long runs on 2 workers; returns (process, its workers, out) once both train."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "pinn.stages.study", "--params", str(tiny_study(tmp_path)),
                             "--out", str(out), "--jobs", "2"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=new_group)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        workers = children(proc.pid)
        if len(workers) == 2 and len(list((out / "logs").glob("*.log"))) == 2:
            return proc, workers, out
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("the workers did not start")


def gone(workers, wait=20.0) -> bool:
    deadline = time.monotonic() + wait
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not any(alive(w) for w in workers)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigkill_of_the_parent_leaves_no_worker(tmp_path):
    proc, workers, _ = start_study(tmp_path)
    proc.kill()
    proc.communicate()
    assert gone(workers), [w for w in workers if alive(w)]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("how", ["SIGINT to the parent", "Ctrl-C to the group"])   # SIGTERM: the same handler
def test_an_interrupt_stops_the_workers_starts_no_queued_run_and_exits_in_one_line(tmp_path, how):
    proc, workers, out = start_study(tmp_path, new_group=how.endswith("group"))
    if how.endswith("group"):
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT if "SIGINT" in how else signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [line for line in err.splitlines() if "stopped by" in line] == [
        (f"stopped by {'SIGTERM' if 'SIGTERM' in how else 'SIGINT'}: 0 runs finished and kept, 3 not finished "
         "(no queued run started); run the command again to resume")]
    assert gone(workers)
    time.sleep(1.0)
    assert sorted(f.stem for f in (out / "logs").glob("*.log")) == ["poisson-2-adamw", "poisson-3-adamw"]  # not 1


def half(runs):
    """Two seeds: the first finishes, the second stops the command as Ctrl-C would."""
    yield {"value": runs[0].seed}
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    yield {"value": runs[1].seed}


def test_a_finished_seed_is_kept_when_the_command_is_stopped(tmp_path, capsys):
    runs = [Run("poisson", 2, "adamw", s) for s in (0, 1)]
    keys = {r: "k" for r in runs}
    path_of = lambda r: tmp_path / r.name / f"seed{r.seed}.json"
    with pytest.raises(SystemExit) as stop:
        grid.execute([runs], keys, path_of, half, jobs=1)
    assert stop.value.code == 128 + signal.SIGINT and "1 runs finished and kept" in capsys.readouterr().err
    kept, todo = grid.split(runs, keys, path_of)
    assert list(kept) == [runs[0]] and todo == [[runs[1]]]          # a rerun resumes at the second seed
