"""The names that params.yaml, the stages, the figures and the notebooks share (one place for each)."""
from __future__ import annotations

# Gradient controls: derived from their records in pipeline/controls.py (one record per control).
# For PINNs each is an entry of `pinn.optimizers`; for CNNs a variant is `<bn|nobn>-<control>`.
from pipeline.controls import CNN_CONTROLS, CONTROLS, LABELS  # noqa: F401 (re-exported)

CNN_VARIANTS = tuple(f"{bn}-{c}" for bn in ("bn", "nobn") for c in CNN_CONTROLS)
ARCH_LABELS = {"resnet50": "ResNet-50", "efficientnet_v2_s": "EfficientNetV2-S"}


def parse_variant(variant: str) -> tuple[bool, str]:
    """"nobn-stablegrad" -> (batchnorm=False, control="stablegrad")."""
    bn, sep, control = variant.partition("-")
    if not sep or bn not in ("bn", "nobn") or control not in CNN_CONTROLS:
        raise ValueError(f"unknown CNN variant {variant!r}; allowed: {' | '.join(CNN_VARIANTS)}")
    return bn == "bn", control


def variant_label(variant: str) -> str:
    bn, control = parse_variant(variant)
    return f"{'with' if bn else 'no'} BN, {LABELS[control]}"


def arch_label(arch: str) -> str:
    return ARCH_LABELS.get(arch, arch)


def run_name(*parts) -> str:
    """The folder name of one run: run_name("burgers", 16, "stablegrad") == "burgers-16-stablegrad"."""
    return "-".join(str(p) for p in parts)
