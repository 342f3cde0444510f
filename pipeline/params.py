"""Reading params.yaml, and the one-line error every stage prints for bad input.

Each section is owned and validated by its wing (`pinn.config.load`, `cnn.config.load`); this module only
reads the file (a YAML error becomes one line naming the file and the line) and checks the top-level keys.
The whole-file check is the `check_params` stage of dvc.yaml, which every stage depends on, so a bad value
stops `dvc repro` before DVC removes any stage's outputs.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import yaml

from pipeline.validate import BadInput

SECTIONS = ("pinn", "cnn", "cnn_imagenet")  # cnn_imagenet: optional second CNN setting (paper scale)


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses a mapping with a repeated key (YAML keeps the last; DVC rejects the file)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key `{key}` appears twice in one mapping (DVC rejects such a file)",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read(path: str | Path = "params.yaml") -> dict:
    """The raw mapping of `path`, or ValueError with one line (missing file, YAML syntax, unknown section)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"params file {str(path)!r} does not exist")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise BadInput(f"{path}:{where}: not valid YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: expected a mapping with the sections {', '.join(SECTIONS)}")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise BadInput(f"params: unknown top-level key(s) {unknown}; allowed: {', '.join(SECTIONS)}")
    return raw


def raw_section(path: str | Path, key: str) -> dict:
    raw = read(path)
    if key not in raw:
        raise BadInput(f"params file {str(path)!r} has no `{key}:` section")
    return raw[key]


def exits_on_bad_input(main):
    """Decorator for a stage's `main`: bad input (`BadInput`: params or arguments) prints `error: <message>`
    on stderr and exits with status 2, without a traceback."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except BadInput as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
    return wrapper
