"""The `cnn:` section of params.yaml (and the optional `cnn_imagenet:`): one dataclass, validated before any
work starts. params.yaml is the one place of the values: every key is required.

Architectures: any torchvision classification builder (`torchvision.models.list_models`) that has BatchNorm
layers and runs on `image_size` with the chosen stem, with and without BatchNorm (checked on the meta device),
e.g. resnet50, efficientnet_v2_s, resnet18, mobilenet_v3_small. Variants: `<bn|nobn>-<control>`
(pipeline/names.py). The batch size and the validation split are checked against the training set's size where
it is known without reading the data (digits, cifar100). Data paths, and the size of an ImageNet folder, are not
checked here but by the stage that reads them (cnn/data.py), so a machine without ImageNet can still run
everything else.

    python -m cnn.config params.yaml      # exits 2 with one line naming the key
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import torch

from cnn.data import training_images
from cnn.models import available_archs, why_not_trainable
from pipeline import validate as v
from pipeline.controls import OPTIONS as CONTROL_OPTIONS
from pipeline.controls import BaseSettings
from pipeline.names import CNN_VARIANTS, parse_variant
from pipeline.params import exits_on_bad_input, read

DATASETS = ("digits", "cifar100", "imagenet")
STEMS = ("imagenet", "cifar")
DEVICES = ("auto", "cpu", "cuda")
AMP = ("bf16", "fp16", "none")
CLASSES = {"digits": 10, "cifar100": 100, "imagenet": 1000}


@dataclass
class CollapseConfig:
    # A run has collapsed when its loss is not finite, or when its training accuracy stays below
    # `chance_factor` x chance for `patience` consecutive epochs (counted from the first epoch).
    patience: int
    chance_factor: float


@dataclass
class CnnConfig:
    archs: list
    variants: dict             # <bn|nobn>-<control> -> the control's options, e.g. {bn-adamw: {}, nobn-agc: {...}}
    dataset: str
    data_root: str
    imagenet_path: str | None
    download: bool
    image_size: int
    stem: str
    train_subset: int          # 0 = the whole training set; n > 0 = n (seeded) samples
    val_fraction: float        # 0 = no validation split; f in (0, 0.5]: a fixed held-out part of the training set
    epochs: int
    batch_size: int            # global (split over DDP processes)
    lr: float
    weight_decay: float
    warmup_epochs: int
    label_smoothing: float
    seeds: list
    num_workers: int
    device: str
    amp: str
    channels_last: bool
    record_every: int
    collapse: CollapseConfig
    seed: int = 0              # the seed of one run (set per run from `seeds`; not a params.yaml key)

    @property
    def num_classes(self) -> int:
        return CLASSES[self.dataset]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def base(self) -> BaseSettings:
        return BaseSettings(self.lr, weight_decay=self.weight_decay)

    def run_settings(self, arch: str, variant: str) -> dict:
        """What one seed's run reads (not the lists of runs, not the other controls' options)."""
        shared = {k: x for k, x in self.to_dict().items() if k not in ("archs", "variants", "seeds", "num_workers")}
        return {**shared, "arch": arch, "variant": variant, "options": self.variants[variant]}


def _device(key, value):
    value = v.choice(*DEVICES)(key, value)
    if value == "cuda" and not torch.cuda.is_available():
        v.fail(key, value, "auto | cpu (CUDA is not available on this machine)")
    return value


def _arch(key, value):
    if value not in available_archs():
        v.fail(key, value, "a torchvision classification model builder, e.g. resnet50 | efficientnet_v2_s | "
               "resnet18 (torchvision.models.list_models(module=torchvision.models))")
    return value


SPEC = {
    "archs": v.list_of(_arch),
    "variants": v.mapping_of(v.choice(*CNN_VARIANTS),
                             lambda key, name: v.sub(CONTROL_OPTIONS[parse_variant(name)[1]])),
    "dataset": v.choice(*DATASETS),
    "data_root": v.path,
    "imagenet_path": v.optional_path,
    "download": v.boolean,
    "image_size": v.integer(8),
    "stem": v.choice(*STEMS),
    "train_subset": v.integer(0),
    "val_fraction": v.number(0, 0.5),
    "epochs": v.integer(1),
    "batch_size": v.integer(1),
    "lr": v.number(0, 10, lo_open=True),
    "weight_decay": v.number(0, 10),
    "warmup_epochs": v.integer(0),
    "label_smoothing": v.number(0, 1),
    "seeds": v.seeds,
    "num_workers": v.integer(0),
    "device": _device,
    "amp": v.choice(*AMP),
    "channels_last": v.boolean,
    "record_every": v.integer(1),
    "collapse": v.sub({"patience": v.integer(1), "chance_factor": v.number(1)}, CollapseConfig),
}


def validate(section, prefix: str = "cnn") -> CnnConfig:
    """The `cnn:` mapping as a CnnConfig, or BadInput (a ValueError) naming the full key."""
    checked = v.section(prefix, section, SPEC)
    cfg = CnnConfig(**checked, seed=checked["seeds"][0])
    if cfg.warmup_epochs >= cfg.epochs and cfg.warmup_epochs > 0:
        v.fail(f"{prefix}.warmup_epochs", cfg.warmup_epochs, f"fewer than `{prefix}.epochs` = {cfg.epochs}")
    if cfg.dataset == "imagenet" and not cfg.imagenet_path:
        v.fail(f"{prefix}.imagenet_path", cfg.imagenet_path,
               f"the ImageNet-1k root holding train/ and val/ (`{prefix}.dataset` is imagenet)")
    n = training_images(cfg.dataset, cfg.val_fraction, cfg.train_subset, key=f"{prefix}.val_fraction")
    if n is not None and cfg.batch_size > n:  # drop_last: a batch larger than the training set gives no step
        v.fail(f"{prefix}.batch_size", cfg.batch_size, f"an integer >= 1 and <= {n} (the training images of "
               f"{cfg.dataset} with val_fraction {cfg.val_fraction:g} and train_subset {cfg.train_subset})")
    for i, arch in enumerate(cfg.archs):
        why = why_not_trainable(arch, cfg.num_classes, cfg.image_size, cfg.stem, min(cfg.batch_size, 2))
        if why is not None:
            v.fail(f"{prefix}.archs[{i}]", arch, f"a torchvision classifier with BatchNorm that runs on "
                   f"{cfg.image_size} px images with stem {cfg.stem!r}; this one {why}")
    return cfg


def load(path="params.yaml", section: str = "cnn") -> CnnConfig:
    raw = read(path)
    if section not in raw:
        raise v.BadInput(f"params file {str(path)!r} has no `{section}:` section")
    return validate(raw[section], prefix=section)


@exits_on_bad_input
def main(argv=None) -> int:
    """Check `cnn:` and, if present, `cnn_imagenet:`."""
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else "params.yaml"
    sections = [s for s in ("cnn", "cnn_imagenet") if s == "cnn" or s in read(path)]
    for s in sections:
        load(path, s)
    print(f"{path}: {' and '.join(sections)} section{'s' if len(sections) > 1 else ''} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
