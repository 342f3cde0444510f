"""params.yaml, validated as a whole before any stage does work.

Every stage script calls `load(path)`; `python -m pipeline.params params.yaml` checks a file and exits 2
with one message naming the key and what is allowed. Each section is owned (and validated) by its package:
`pinn:` by `pinn.config`, `cnn:` by `cnn.config`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

SECTIONS = ("pinn", "cnn", "cnn_imagenet")  # cnn_imagenet: optional second CNN setting (paper scale)
REQUIRED = ("pinn", "cnn")


def read(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"params file {str(path)!r} does not exist")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with the sections {', '.join(SECTIONS)}")  # noqa: TRY004
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ValueError(f"params: unknown top-level key(s) {unknown}; allowed: {', '.join(SECTIONS)}")
    return raw


def load(path: str | Path = "params.yaml", check_paths: bool = True) -> dict:
    """{"pinn": PinnConfig, "cnn": CnnConfig[, "cnn_imagenet": CnnConfig]} from `path`, or ValueError naming the offending key."""
    from cnn.config import validate as validate_cnn
    from pinn.config import validate as validate_pinn

    raw = read(path)
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise ValueError(f"params file {str(path)!r} has no `{missing[0]}:` section (dvc.yaml reads it); "
                         f"required: {', '.join(REQUIRED)}")
    out = {"pinn": validate_pinn(raw.get("pinn")), "cnn": validate_cnn(raw.get("cnn"), check_paths=check_paths)}
    if "cnn_imagenet" in raw:
        out["cnn_imagenet"] = validate_cnn(raw["cnn_imagenet"], prefix="cnn_imagenet", check_paths=check_paths)
    return out


def load_section(path: str | Path = "params.yaml", key: str = "pinn", check_paths: bool = True):
    """The validated section `key` of `path`, after validating the whole file (so a bad `cnn:` value stops
    a PINN stage too, before any training starts)."""
    sections = load(path, check_paths=check_paths)
    if key not in sections:
        raise ValueError(f"params file {str(path)!r} has no `{key}:` section; allowed: {', '.join(SECTIONS)}")
    return sections[key]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else "params.yaml"
    try:
        load(path)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{path}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
