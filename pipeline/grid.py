"""The one grid runner of the PINN studies (pinn.stages.study, select, ablation, finish): which runs are kept,
which are computed, and the worker processes that compute them.

A study declares its runs (`Run`: problem, depth, control, seed and setting overrides), the run key of each
(pinn/trainer.py `run_key`, or one built on it), where each run's per-seed result file lives, and a worker
function `work(runs) -> one record per run` over the seeds of one group (same problem, depth, control and
overrides; a later change may train them together). Then:

- `split` keeps every run whose result file holds its key and groups the others;
- `execute` hands the groups to `jobs` worker processes (inline when jobs == 1) and writes each record with its
  key, atomically, as soon as it is computed: an interrupted study keeps every finished seed and a rerun
  resumes (the drivers' workers resume from their checkpoints where the checkpoint's key matches).

Stopping. The workers end when their parent ends: PR_SET_PDEATHSIG (Linux), else a watchdog thread polling
the parent's pid. They ignore SIGINT; SIGINT or SIGTERM to the parent (or Ctrl-C to the whole group) starts no
queued run, ends the running workers, and exits non-zero with one line on stderr, no traceback.
"""
from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from pipeline import runs
from pipeline.controls import OPTIONS as CONTROL_OPTIONS
from pipeline.names import run_name
from pipeline.validate import BadInput

REPO = runs.REPO


@dataclasses.dataclass(frozen=True)
class Run:
    """One seed of one run. `overrides`: sorted (key, value) pairs of settings this run changes (`configure`)."""
    problem: str
    depth: int
    control: str
    seed: int
    overrides: tuple = ()

    @classmethod
    def of(cls, problem: str, depth: int, control: str, seed: int, **overrides) -> Run:
        return cls(problem, depth, control, seed, tuple(sorted(overrides.items())))

    @property
    def name(self) -> str:
        """The group's readable name: burgers-16-stablegrad[-key=value...]."""
        return run_name(self.problem, self.depth, self.control, *(f"{k}={v}" for k, v in self.overrides))

    @property
    def group(self) -> tuple:
        return dataclasses.astuple(dataclasses.replace(self, seed=-1))


def configure(cfg, run: Run):
    """The settings of `run`: `cfg` (a PinnConfig) with its overrides. An option of the run's control (AGC's
    `clipping` or `eps`, StableGrad's `reference`, ...) sets that option; any other key is a setting of the config
    (steps, lr, init, schedule, ...) and replaces the shared one and any the control sets for itself. Only the
    run's own control is left in `optimizers`."""
    mine = cfg.optimizers[run.control]
    own = {k: v for k, v in run.overrides if k in CONTROL_OPTIONS[run.control]}
    shared = {k: v for k, v in run.overrides if k not in own}
    unknown = sorted(set(shared) - {f.name for f in dataclasses.fields(cfg)})
    if unknown:
        raise BadInput(f"{run.name}: {', '.join(unknown)} is neither a pinn setting nor an option of "
                       f"pinn.optimizers.{run.control} ({', '.join(mine) or 'none'})")
    options = {**{k: x for k, x in mine.items() if k not in shared}, **own}
    return dataclasses.replace(cfg, **shared, optimizers={run.control: options})


# -- the resume rule -----------------------------------------------------------------------------------------
def seed_file(folder: str | Path, run: Run) -> Path:
    """The usual place of a run's result: <folder>/<run name>/seed<k>.json (its checkpoint: .pt beside it)."""
    return Path(folder) / run.name / f"seed{run.seed}.json"


def read_record(path: Path) -> dict | None:
    """A result file's record, or None (missing or unreadable: computed again)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(path: Path, record: dict) -> None:
    """Write atomically: a worker killed while writing leaves the old file or none."""
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    runs.write_json(tmp, record)
    os.replace(tmp, path)


def split(all_runs: list[Run], keys: dict, path_of, read=read_record,
          whole_groups: bool = False) -> tuple[dict, list[list[Run]]]:
    """({run: record} of the runs whose result file holds their key now, the other runs grouped by `Run.group`
    in first-seen order). `whole_groups`: a group with any run to compute is computed whole (a worker that
    rewrites every seed's files)."""
    kept, groups = {}, {}
    for run in all_runs:
        record = read(path_of(run))
        if record is not None and record.get("key") == keys[run]:
            kept[run] = record
        groups.setdefault(run.group, []).append(run)
    todo = [[r for r in g if whole_groups or r not in kept] for g in groups.values()
            if any(r not in kept for r in g)]
    for g in todo:
        for r in g:
            kept.pop(r, None)
    return kept, todo


# -- the workers ---------------------------------------------------------------------------------------------
def _compute(work, items) -> list[dict]:
    """In a worker: `work` over the group, each record written with its key as soon as it is yielded."""
    out = []
    for (run, key, path), record in zip(items, work([run for run, _, _ in items]), strict=True):
        record = {**record, "key": key}
        write_record(path, record)
        out.append(record)
    return out


def _die_with_parent() -> bool:
    try:   # prctl(PR_SET_PDEATHSIG, SIGKILL): the kernel kills this process when its parent ends
        return ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) == 0
    except (OSError, AttributeError, TypeError):   # not Linux: the watchdog instead
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _worker_start(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C reaches the whole group: the parent decides
    if not _die_with_parent():
        threading.Thread(target=_watch, args=(parent,), daemon=True).start()
    if os.getppid() != parent:                     # the parent ended before the above took hold
        os._exit(1)


class _Stop(BaseException):   # not an Exception: a failed-group handler must not swallow it
    pass


@contextmanager
def _stoppable():
    """SIGINT and SIGTERM raise _Stop in the main thread while inside."""
    def stop(signum, _frame):
        raise _Stop(signum)
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def execute(groups: list[list[Run]], keys: dict, path_of, work, jobs: int, records: dict | None = None,
            on_done=None) -> dict:
    """Compute `groups` with `work` (a picklable function: list of runs -> one JSON-able record per run), `jobs`
    groups at once. Each group's records (with their keys) go into `records` (e.g. the kept ones of `split`),
    which is returned, and then `on_done(group, its records)` is called, in the parent. A group that fails is
    named and the others go on; then the command exits 1 naming them. On SIGINT/SIGTERM it exits 128 + signal."""
    records = {} if records is None else records
    failed = _execute(groups, keys, path_of, work, jobs, records, on_done)
    if failed:
        raise SystemExit(f"{len(failed)} runs failed: {', '.join(failed)}")
    return records


def counter(total: int):
    """tick(text) prints `[n/total seconds] text`: one line per computed run."""
    t0, n = time.perf_counter(), [0]

    def tick(text: str) -> None:
        n[0] += 1
        print(f"[{n[0]}/{total} {time.perf_counter() - t0:.0f}s] {text}", flush=True)
    return tick


def _execute(groups, keys, path_of, work, jobs, records, on_done) -> list:
    failed = []
    tasks = [[(r, keys[r], path_of(r)) for r in g] for g in groups]
    for items in tasks:
        for _, _, path in items:
            path.parent.mkdir(parents=True, exist_ok=True)

    def finish(group, result):
        records.update(zip(group, result))
        if on_done is not None:
            on_done(group, result)

    pool, futures = None, {}
    try:
        with _stoppable():
            if jobs == 1 or not tasks:
                for group, items in zip(groups, tasks):
                    try:
                        finish(group, _compute(work, items))
                    except Exception as err:  # noqa: BLE001 -- one failed group does not stop the others
                        failed.append(_failure(group, err))
                return failed
            with _ignoring(signal.SIGINT):   # the workers start with SIGINT ignored (no KeyboardInterrupt)
                pool = ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=get_context("spawn"),
                                           initializer=_worker_start, initargs=(os.getpid(),))
                futures = {pool.submit(_compute, work, items): group for group, items in zip(groups, tasks)}
            for fut in as_completed(futures):
                try:
                    finish(futures[fut], fut.result())
                except Exception as err:  # noqa: BLE001
                    failed.append(_failure(futures[fut], err))
            pool.shutdown()
        return failed
    except _Stop as stop:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if pool is not None:
            for fut in futures:
                fut.cancel()
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        signum, items = stop.args[0], [item for t in tasks for item in t]
        kept = sum((read_record(path) or {}).get("key") == key for _, key, path in items)
        tqdm.write(f"stopped by {signal.Signals(signum).name}: {kept} runs finished and kept, {len(items) - kept} "
                   "not finished (no queued run started); run the command again to resume", file=sys.stderr)
        raise SystemExit(128 + signum) from None


@contextmanager
def _ignoring(sig):
    old = signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(sig, old)


def _failure(group, err) -> str:
    tqdm.write(f"error: {group[0].name} failed ({type(err).__name__}: {err})", file=sys.stderr)
    return group[0].name


def python_module(module: str, *args) -> None:
    """`python -m module args` from the repository root (a figure or the aggregation, in its own process)."""
    subprocess.run([sys.executable, "-m", module, *map(str, args)], check=True, cwd=REPO)
