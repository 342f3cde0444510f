"""The `cnn:` section of params.yaml: dataclasses and validation.

`validate(section)` turns the raw dict into a `CnnConfig` or raises one `ValueError` naming the full
key (e.g. `cnn.variants[2]`), the bad value and what is allowed, before any training starts.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from stablegrad.options import BIAS_MODES as BIASES
from stablegrad.options import REFERENCES, STATISTICS, Options

ARCHS = ("resnet50", "efficientnet_v2_s")
VARIANTS = ("bn-adamw", "nobn-adamw", "nobn-stablegrad")
DATASETS = ("digits", "cifar100", "imagenet")
STEMS = ("imagenet", "cifar")
DEVICES = ("auto", "cpu", "cuda")
AMP = ("bf16", "fp16", "none")


@dataclass
class StableGradConfig:  # the library's own defaults (stablegrad.options.Options); params.yaml sets each one
    reference: str = Options.reference
    statistic: str = Options.statistic
    bias: str = Options.bias


@dataclass
class CollapseConfig:
    # A run has collapsed when its loss is not finite, or when its training accuracy stays below
    # `chance_factor` x chance for `patience` consecutive epochs (counted from the first epoch).
    patience: int = 3
    chance_factor: float = 1.5


@dataclass
class CnnConfig:
    archs: list[str] = field(default_factory=lambda: list(ARCHS))
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    dataset: str = "digits"
    data_root: str = "data"
    imagenet_path: str | None = None
    download: bool = False
    image_size: int = 32
    stem: str = "imagenet"
    train_subset: int = 0          # 0 = the whole training set; n > 0 = the first n (seeded) samples
    val_fraction: float = 0.0      # 0 = no validation split; f in (0, 0.5]: a seeded held-out part of the
                                   # training set (never the test set), evaluated without augmentation
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 1
    label_smoothing: float = 0.0
    seeds: list[int] = field(default_factory=lambda: [0])  # one run per seed; metrics = median over them
    seed: int = 0                  # the seed of one run (set per run from `seeds`; not a params.yaml key)
    num_workers: int = 0
    device: str = "auto"
    amp: str = "bf16"
    channels_last: bool = True
    record_every: int = 5
    stablegrad: StableGradConfig = field(default_factory=StableGradConfig)
    collapse: CollapseConfig = field(default_factory=CollapseConfig)

    @property
    def num_classes(self) -> int:
        return {"digits": 10, "cifar100": 100, "imagenet": 1000}[self.dataset]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fail(key: str, value, allowed: str) -> None:
    raise ValueError(f"params: `{key}` = {value!r} is not valid; allowed: {allowed}")


def _check_choice(key: str, value, choices) -> None:
    if value not in choices:
        _fail(key, value, " | ".join(choices))


def _check_int(key: str, value, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        _fail(key, value, f"an integer >= {lo}")


def _check_float(key: str, value, lo: float, hi: float | None = None, lo_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (hi is None or value <= hi)
    if not ok:
        rng = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
        _fail(key, value, f"a number {rng}")


def _check_bool(key: str, value) -> None:
    if not isinstance(value, bool):
        _fail(key, value, "true | false")


def _check_keys(prefix: str, section: dict, allowed) -> None:
    if not isinstance(section, dict):
        raise ValueError(f"params: `{prefix}` must be a mapping, got {type(section).__name__}")  # noqa: TRY004
    for key in section:
        if key not in allowed:
            raise ValueError(f"params: unknown key `{prefix}.{key}`; allowed keys: {', '.join(sorted(allowed))}")


def _check_names(key: str, value, choices) -> list[str]:
    if not isinstance(value, list) or not value:
        _fail(key, value, f"a non-empty list of names from {' | '.join(choices)}")
    for i, name in enumerate(value):
        _check_choice(f"{key}[{i}]", name, choices)
    if len(set(value)) != len(value):
        _fail(key, value, "a list without repeated names")
    return list(value)


def _sub(prefix: str, raw, cls):
    raw = {} if raw is None else raw
    names = {f.name for f in dataclasses.fields(cls)}
    _check_keys(prefix, raw, names)
    return cls(**raw)


def validate(section: dict, prefix: str = "cnn", check_paths: bool = True) -> CnnConfig:
    """Validate the raw `cnn:` mapping; return a `CnnConfig` or raise `ValueError` naming the key."""
    section = {} if section is None else section
    top = {f.name for f in dataclasses.fields(CnnConfig)} - {"seed"}
    _check_keys(prefix, section, top)
    raw = dict(section)
    sg = _sub(f"{prefix}.stablegrad", raw.pop("stablegrad", None), StableGradConfig)
    col = _sub(f"{prefix}.collapse", raw.pop("collapse", None), CollapseConfig)
    cfg = CnnConfig(**raw, stablegrad=sg, collapse=col)
    p = prefix
    cfg.archs = _check_names(f"{p}.archs", cfg.archs, ARCHS)
    cfg.variants = _check_names(f"{p}.variants", cfg.variants, VARIANTS)
    _check_choice(f"{p}.dataset", cfg.dataset, DATASETS)
    _check_choice(f"{p}.stem", cfg.stem, STEMS)
    _check_choice(f"{p}.device", cfg.device, DEVICES)
    _check_choice(f"{p}.amp", cfg.amp, AMP)
    _check_choice(f"{p}.stablegrad.reference", sg.reference, REFERENCES)
    _check_choice(f"{p}.stablegrad.statistic", sg.statistic, STATISTICS)
    _check_choice(f"{p}.stablegrad.bias", sg.bias, BIASES)
    for key in ("image_size",):
        _check_int(f"{p}.{key}", getattr(cfg, key), 8)
    for key in ("epochs", "batch_size", "record_every"):
        _check_int(f"{p}.{key}", getattr(cfg, key), 1)
    for key in ("train_subset", "warmup_epochs", "num_workers"):
        _check_int(f"{p}.{key}", getattr(cfg, key), 0)
    if not isinstance(cfg.seeds, list) or not cfg.seeds or len(set(map(repr, cfg.seeds))) != len(cfg.seeds):
        _fail(f"{p}.seeds", cfg.seeds, "a non-empty list of distinct integers >= 0")
    for i, s in enumerate(cfg.seeds):
        _check_int(f"{p}.seeds[{i}]", s, 0)
    cfg.seed = cfg.seeds[0]
    _check_int(f"{p}.collapse.patience", col.patience, 1)
    _check_float(f"{p}.collapse.chance_factor", col.chance_factor, 1.0)
    _check_float(f"{p}.lr", cfg.lr, 0.0, 10.0, lo_open=True)
    _check_float(f"{p}.weight_decay", cfg.weight_decay, 0.0, 10.0)
    _check_float(f"{p}.label_smoothing", cfg.label_smoothing, 0.0, 1.0)
    _check_float(f"{p}.val_fraction", cfg.val_fraction, 0.0, 0.5)
    for key in ("download", "channels_last"):
        _check_bool(f"{p}.{key}", getattr(cfg, key))
    if not isinstance(cfg.data_root, str) or not cfg.data_root:
        _fail(f"{p}.data_root", cfg.data_root, "a directory path (string)")
    if cfg.warmup_epochs >= cfg.epochs and cfg.warmup_epochs > 0:
        _fail(f"{p}.warmup_epochs", cfg.warmup_epochs, f"fewer than {p}.epochs = {cfg.epochs}")
    if cfg.dataset == "imagenet":
        if not cfg.imagenet_path:
            raise ValueError(
                f"params: `{p}.dataset` is 'imagenet' but `{p}.imagenet_path` is not set; set it to the "
                "ImageNet-1k root that holds train/ and val/ class folders (ImageFolder layout)")
        if check_paths:
            for split in ("train", "val"):
                d = Path(cfg.imagenet_path) / split
                if not d.is_dir():
                    raise ValueError(
                        f"params: `{p}.imagenet_path` = {cfg.imagenet_path!r}: folder {str(d)!r} does not "
                        "exist; point it to the ImageNet-1k root with train/ and val/ class folders")
    elif cfg.imagenet_path is not None and not isinstance(cfg.imagenet_path, str):
        _fail(f"{p}.imagenet_path", cfg.imagenet_path, "null or a directory path")
    if cfg.dataset == "cifar100" and check_paths:
        from cnn.data import check_cifar_available

        check_cifar_available(cfg.data_root, cfg.download, key=f"{p}.download")
    return cfg
