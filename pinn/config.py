"""The `pinn:` section of params.yaml: one dataclass, validated before any work starts.

params.yaml is the one place of the values (every key is required; there are no second defaults here).
`python -m pinn.config params.yaml` checks the section and exits 2 with one line naming the key.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import torch

from pinn.problems import PROBLEMS
from pipeline import validate as v
from pipeline.controls import OPTIONS as CONTROL_OPTIONS
from pipeline.controls import BaseSettings
from pipeline.names import CONTROLS
from pipeline.params import exits_on_bad_input, raw_section
from stablegrad.init import SCHEMES

ACTIVATIONS = ("tanh", "sin")
SCHEDULES = ("constant", "cosine")
PER_CONTROL = ("lr", "init", "schedule")   # shared settings a control may set for its own runs
DTYPES = ("float32", "float64")
DEVICES = ("auto", "cpu", "cuda")
GEMMS = ("auto", "aten", "onednn")
INPUT_MAPS = ("box", "none")
SAMPLERS = ("lhs", "hammersley")
RESIDUAL_POINTS = ("domain", "all")
# Upper bounds: beyond them a run cannot be built or held in memory, and it would fail after DVC removed the
# stage's outputs (a width of 4096 at depth 1024 is already 17 G parameters).
MAX_WIDTH, MAX_DEPTH, MAX_POINTS = 4096, 1024, 10_000_000


@dataclass
class Points:
    domain: int      # collocation points inside the domain
    boundary: int    # boundary (and, for time-dependent problems, initial) points


@dataclass
class Conventions:
    """Where this project's PINN set-up may differ from DeepXDE's (each settled by measurement: docs/method.md,
    "Conventions against DeepXDE"; tests/test_deepxde_parity.py shows that with DeepXDE's choices the trainer
    reproduces DeepXDE's training loss step for step)."""
    input_map: str        # box: inputs mapped affinely from the domain box to [-1, 1]^d | none: raw (DeepXDE)
    sampler: str          # lhs: seeded Latin hypercube | hammersley: the Hammersley sequence (DeepXDE's default)
    residual_points: str  # domain: the residual on the collocation points | all: also on the boundary and
                          # initial points (DeepXDE's `train_x_all`)
    lbfgs_history: int    # curvature pairs of the L-BFGS finish (DeepXDE: 100)


@dataclass
class Ablation:
    problems: list
    depths: list
    steps: int


@dataclass
class PinnConfig:
    problems: list
    depths: list
    optimizers: dict        # gradient control -> its options (pipeline/controls.py), e.g. {adamw: {}, agc: {...}};
                            # each may also set its own `lr`, `init` and `schedule` (chosen per control:
                            # docs/method.md)
    width: int
    activation: str
    init: str
    steps: int
    lr: float
    eps: float
    weight_decay: float
    betas: list
    schedule: str
    final_lr_factor: float
    boundary_weight: float
    seeds: list
    dtype: str
    device: str
    threads: int
    compile: bool
    gemm: str
    checkpoint_every: int
    log_every: int
    grad_scale_every: int
    diverge_factor: float
    points: dict            # problem -> Points
    conventions: Conventions
    ablation: Ablation

    def to_dict(self) -> dict:
        return asdict(self)

    def control(self, name: str) -> tuple[str, BaseSettings, dict]:
        """(init, base optimizer settings, the control's own options) of the runs of control `name`: its
        `lr` and `init` where pinn.optimizers.<name> sets them, else the shared pinn.lr and pinn.init."""
        options = {k: x for k, x in self.optimizers[name].items() if k not in PER_CONTROL}
        lr, init = self.optimizers[name].get("lr", self.lr), self.optimizers[name].get("init", self.init)
        return init, BaseSettings(lr, tuple(self.betas), self.eps, self.weight_decay), options

    def schedule_of(self, name: str) -> str:
        """The lr schedule of control `name`'s runs: its own `schedule` if set, else pinn.schedule."""
        return self.optimizers[name].get("schedule", self.schedule)

    def run_settings(self, control: str) -> dict:
        """What one run reads: the shared settings and its own control's options (not the other controls',
        not the lists of runs, not how it is checkpointed or logged)."""
        shared = {k: x for k, x in self.to_dict().items() if k not in _NOT_RUN_SETTINGS}
        shared["conventions"] = {k: x for k, x in shared["conventions"].items() if k != "lbfgs_history"}  # finish's
        return {**shared, "control": control, "options": self.optimizers[control]}


_NOT_RUN_SETTINGS = ("problems", "depths", "optimizers", "seeds", "points", "ablation",
                     "checkpoint_every", "threads", "device", "gemm")


def _device(key, value):
    value = v.choice(*DEVICES)(key, value)
    if value == "cuda" and not torch.cuda.is_available():
        v.fail(key, value, "auto | cpu (CUDA is not available on this machine)")
    return value


PROBLEM = v.choice(*PROBLEMS)
DEPTHS = v.list_of(v.integer(1, MAX_DEPTH))


def _points(key, raw):
    if not isinstance(raw, dict) or not raw:
        v.fail(key, raw, "a mapping problem -> {domain, boundary}")
    spec = {"domain": v.integer(1, MAX_POINTS), "boundary": v.integer(4, MAX_POINTS)}
    out = {}
    for name, sub in raw.items():
        PROBLEM(f"{key}.{name}", name)
        out[name] = v.section(f"{key}.{name}", sub, spec, Points)
    return out


SPEC = {
    "problems": v.list_of(PROBLEM),
    "depths": DEPTHS,
    "optimizers": v.mapping_of(v.choice(*CONTROLS), lambda key, name: v.sub(
        {**CONTROL_OPTIONS[name], "lr": v.number(0, lo_open=True), "init": v.choice(*SCHEMES),
         "schedule": v.choice(*SCHEDULES)}, optional=PER_CONTROL)),
    "width": v.integer(1, MAX_WIDTH),
    "activation": v.choice(*ACTIVATIONS),
    "init": v.choice(*SCHEMES),
    "steps": v.integer(1),
    "lr": v.number(0, lo_open=True),
    "eps": v.number(0, lo_open=True),
    "weight_decay": v.number(0),
    "betas": v.pair(v.number(0, 1, hi_open=True)),
    "schedule": v.choice(*SCHEDULES),
    "final_lr_factor": v.number(0, 1, lo_open=True),
    "boundary_weight": v.number(0, lo_open=True),
    "seeds": v.seeds,
    "dtype": v.choice(*DTYPES),
    "device": _device,
    "threads": v.integer(1),
    "compile": v.boolean,
    "gemm": v.choice(*GEMMS),
    "checkpoint_every": v.integer(1),
    "log_every": v.integer(1),
    "grad_scale_every": v.integer(1),
    "diverge_factor": v.number(1, lo_open=True),
    "points": _points,
    "conventions": v.sub({"input_map": v.choice(*INPUT_MAPS), "sampler": v.choice(*SAMPLERS),
                          "residual_points": v.choice(*RESIDUAL_POINTS), "lbfgs_history": v.integer(1, 1000)},
                         Conventions),
    "ablation": v.sub({"problems": v.list_of(PROBLEM), "depths": DEPTHS,
                       "steps": v.integer(1)}, Ablation),
}


def validate(section) -> PinnConfig:
    """The `pinn:` mapping as a PinnConfig, or BadInput (a ValueError) naming the full key."""
    cfg = v.section("pinn", section, SPEC, PinnConfig)
    for name in cfg.problems + cfg.ablation.problems:
        if name not in cfg.points:
            v.fail("pinn.points", sorted(cfg.points), f"an entry for every problem run (missing: {name})")
    return cfg


def parse_case(text: str) -> tuple[str, int]:
    """"poisson:8" -> ("poisson", 8)."""
    problem, sep, depth = text.partition(":")
    if not sep or problem not in PROBLEMS or not depth.isdigit() or int(depth) <= 0:
        raise v.BadInput(f"--cases {text!r}: expected PROBLEM:DEPTH with DEPTH > 0; allowed problems: "
                         f"{', '.join(PROBLEMS)}")
    return problem, int(depth)


def load(path="params.yaml") -> PinnConfig:
    return validate(raw_section(path, "pinn"))


def check_pipeline(cfg: PinnConfig) -> None:
    """What dvc.yaml needs beyond a valid section (studies with their own params files do not): the
    pinn_ablation stages vary StableGrad's options and DVC reads `pinn.optimizers.stablegrad`."""
    if "stablegrad" not in cfg.optimizers:
        v.fail("pinn.optimizers", sorted(cfg.optimizers), "a `stablegrad` entry while `pinn.ablation` is set "
               "(the pinn_ablation stages of dvc.yaml vary StableGrad's options)")


@exits_on_bad_input
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else "params.yaml"
    check_pipeline(load(path))
    print(f"{path}: pinn section ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
