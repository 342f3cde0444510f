"""The `pinn:` section of params.yaml as dataclasses, validated before any work starts."""
from dataclasses import asdict, dataclass, field, fields

from pinn.problems import PROBLEMS
from stablegrad.options import BIAS_MODES as BIASES
from stablegrad.options import REFERENCES, STATISTICS, Options

OPTIMIZERS = ("adamw", "stablegrad")
ACTIVATIONS = ("tanh", "sin")
INITS = ("gain", "lsuv", "lsuv-jacobian")
SCHEDULES = ("constant", "cosine")
DTYPES = ("float32", "float64")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Points:
    domain: int = 2000     # collocation points inside the domain
    boundary: int = 200    # boundary (and, for time-dependent problems, initial) points


@dataclass
class StableGradOptions:  # the library's own defaults (stablegrad.options.Options); params.yaml sets each one
    reference: str = Options.reference
    statistic: str = Options.statistic
    bias: str = Options.bias


@dataclass
class Ablation:
    problems: list = field(default_factory=lambda: ["poisson"])
    depths: list = field(default_factory=lambda: [16])
    steps: int = 1000


@dataclass
class PinnConfig:
    problems: list = field(default_factory=lambda: list(PROBLEMS))
    depths: list = field(default_factory=lambda: [4, 8, 16])
    optimizers: list = field(default_factory=lambda: list(OPTIMIZERS))
    width: int = 32
    activation: str = "tanh"
    init: str = "gain"
    steps: int = 2000
    lr: float = 1e-3
    eps: float = 1e-8
    weight_decay: float = 0.0
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "cosine"
    final_lr_factor: float = 0.1
    boundary_weight: float = 1.0
    seeds: list = field(default_factory=lambda: [0])
    dtype: str = "float32"
    device: str = "auto"
    threads: int = 1            # torch CPU threads (1 is robust when other jobs share the cores)
    compile: bool = False       # torch.compile the loss (forward + backward)
    checkpoint_every: int = 500
    log_every: int = 10
    grad_scale_every: int = 50
    diverge_factor: float = 1e6
    points: dict = field(default_factory=dict)          # problem -> Points
    stablegrad: StableGradOptions = field(default_factory=StableGradOptions)
    ablation: Ablation = field(default_factory=Ablation)

    def to_dict(self) -> dict:
        return asdict(self)


def _fail(key, msg):
    raise ValueError(f"params.yaml: {key}: {msg}")


def _check_type(key, value, kind):
    if kind is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        _fail(key, f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return float(value) if kind is float else value


def _choice(key, value, allowed):
    if value not in allowed:
        _fail(key, f"unknown value {value!r}; allowed: {', '.join(allowed)}")
    return value


def _positive(key, value, kind=int):
    value = _check_type(key, value, kind)
    if not value > 0:
        _fail(key, f"must be > 0, got {value!r}")
    return value


def _list(key, value, each, allow_empty=False):
    if not isinstance(value, list) or (not value and not allow_empty):
        _fail(key, f"expected a non-empty list, got {value!r}")
    return [each(f"{key}[{i}]", v) for i, v in enumerate(value)]


def _section(key, raw, cls, checks):
    """Build dataclass `cls` from dict `raw`, checking each present key with checks[name]."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        _fail(key, f"expected a mapping, got {raw!r}")
    names = [f.name for f in fields(cls)]
    for k in raw:
        if k not in names:
            _fail(f"{key}.{k}", f"unknown key; allowed keys: {', '.join(names)}")
    return cls(**{k: checks[k](f"{key}.{k}", v) for k, v in raw.items()})


def _non_negative(key, v):
    v = _check_type(key, v, float)
    if v < 0:
        _fail(key, f"must be >= 0, got {v!r}")
    return v


def _seed(key, v):
    v = _check_type(key, v, int)
    if v < 0:
        _fail(key, f"must be >= 0, got {v!r}")
    return v


def _betas(key, v):
    b = _list(key, v, lambda k, x: _check_type(k, x, float))
    if len(b) != 2 or not all(0 <= x < 1 for x in b):
        _fail(key, f"expected two numbers in [0, 1), got {v!r}")
    return b


def _problem(key, v):
    return _choice(key, v, tuple(PROBLEMS))


def _points(key, raw):
    if not isinstance(raw, dict):
        _fail(key, f"expected a mapping problem -> {{domain, boundary}}, got {raw!r}")
    out = {}
    for name, sub in raw.items():
        _problem(f"{key}.{name}", name)
        out[name] = _section(f"{key}.{name}", sub, Points,
                             {"domain": _positive, "boundary": lambda k, v: _positive(k, v)})
        if out[name].boundary < 4:
            _fail(f"{key}.{name}.boundary", "must be >= 4")
    return out


CHECKS = {
    "problems": lambda k, v: _list(k, v, _problem),
    "depths": lambda k, v: _list(k, v, _positive),
    "optimizers": lambda k, v: _list(k, v, lambda kk, x: _choice(kk, x, OPTIMIZERS)),
    "width": _positive,
    "activation": lambda k, v: _choice(k, v, ACTIVATIONS),
    "init": lambda k, v: _choice(k, v, INITS),
    "steps": _positive,
    "lr": lambda k, v: _positive(k, v, float),
    "eps": lambda k, v: _positive(k, v, float),
    "weight_decay": _non_negative,
    "betas": _betas,
    "schedule": lambda k, v: _choice(k, v, SCHEDULES),
    "final_lr_factor": lambda k, v: _positive(k, v, float),
    "boundary_weight": lambda k, v: _positive(k, v, float),
    "seeds": lambda k, v: _list(k, v, _seed),
    "dtype": lambda k, v: _choice(k, v, DTYPES),
    "device": lambda k, v: _choice(k, v, DEVICES),
    "threads": _positive,
    "compile": lambda k, v: _check_type(k, v, bool),
    "checkpoint_every": _positive,
    "log_every": _positive,
    "grad_scale_every": _positive,
    "diverge_factor": lambda k, v: _positive(k, v, float),
    "points": _points,
    "stablegrad": lambda k, v: _section(k, v, StableGradOptions, {
        "reference": lambda kk, x: _choice(kk, x, REFERENCES),
        "statistic": lambda kk, x: _choice(kk, x, STATISTICS),
        "bias": lambda kk, x: _choice(kk, x, BIASES),
    }),
    "ablation": lambda k, v: _section(k, v, Ablation, {
        "problems": lambda kk, x: _list(kk, x, _problem),
        "depths": lambda kk, x: _list(kk, x, _positive),
        "steps": _positive,
    }),
}


def validate(section: dict) -> PinnConfig:
    """Check the `pinn:` section; raise ValueError naming the full key and the allowed values."""
    cfg = _section("pinn", section, PinnConfig, CHECKS)
    for name in cfg.problems:
        cfg.points.setdefault(name, Points())
    return cfg
