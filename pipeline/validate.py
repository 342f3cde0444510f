"""One validation helper for every params.yaml section (pinn, cnn, the gradient controls).

A section is declared as a dict ``{key: check}``; ``section(prefix, raw, spec, cls)`` checks that every key is
present and known and builds the dataclass ``cls``. A check is a function ``(key, value) -> value`` that
returns the (possibly converted) value or raises ``ValueError`` with one line naming the full key, the value
and what is allowed::

    params: `pinn.lr` = 'abc' is not valid; allowed: a finite number > 0

Numbers written the YAML 1.1 way (``1e-3`` without a dot reads as a string) are accepted everywhere and
converted; NaN and inf never are. Lists never hold a value twice.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields

Check = Callable[[str, object], object]


class BadInput(ValueError):
    """A value of params.yaml or of a stage's command line that is not allowed (one line, names the key)."""


def fail(key: str, value, allowed: str):
    raise BadInput(f"params: `{key}` = {value!r} is not valid; allowed: {allowed}")


def choice(*allowed: str) -> Check:
    def check(key, value):
        if not isinstance(value, str) or value not in allowed:
            fail(key, value, " | ".join(allowed))
        return value
    return check


def boolean(key, value):
    if not isinstance(value, bool):
        fail(key, value, "true | false")
    return value


def integer(lo: int = 0, hi: int | None = None) -> Check:
    what = f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "")

    def check(key, value):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
            fail(key, value, what)
        return value
    return check


MAX_SEED = 2**32 - 1  # what every seeded generator takes (torch, NumPy, Python) and the CNN seed arithmetic keeps


def seeds(key, value):
    """A list of distinct seeds, each an integer in [0, MAX_SEED]."""
    return list_of(integer(0, MAX_SEED))(key, value)


def number(lo: float = 0.0, hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Check:
    """A finite float in [lo, hi] (open ends as asked); numeric strings such as "1e-3" are converted."""
    what = (f"a finite number {'>' if lo_open else '>='} {lo:g}"
            + (f" and {'<' if hi_open else '<='} {hi:g}" if hi is not None else ""))

    def check(key, value):
        v = value
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                fail(key, value, what)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            fail(key, value, what)
        ok = (v > lo if lo_open else v >= lo) and (hi is None or (v < hi if hi_open else v <= hi))
        if not ok:
            fail(key, value, what)
        return float(v)
    return check


def optional_path(key, value):
    if value is not None and (not isinstance(value, str) or not value):
        fail(key, value, "null or a path (string)")
    return value


def path(key, value):
    if not isinstance(value, str) or not value:
        fail(key, value, "a path (string)")
    return value


def list_of(each: Check, min_len: int = 1, max_len: int | None = None) -> Check:
    """A list of ``min_len``.. items, each checked by ``each``, without repeated values."""
    what = f"a list of {min_len}{'' if max_len is None else f'..{max_len}'}+ distinct values"

    def check(key, value):
        if not isinstance(value, list) or len(value) < min_len or (max_len is not None and len(value) > max_len):
            fail(key, value, what)
        out = [each(f"{key}[{i}]", v) for i, v in enumerate(value)]
        seen = set()
        for i, v in enumerate(out):
            if repr(v) in seen:
                fail(f"{key}[{i}]", value[i], f"a value not already in `{key}` (each value once)")
            seen.add(repr(v))
        return out
    return check


def pair(each: Check) -> Check:
    def check(key, value):
        if not isinstance(value, list) or len(value) != 2:
            fail(key, value, "a list of two values")
        return [each(f"{key}[{i}]", v) for i, v in enumerate(value)]
    return check


def section(prefix: str, raw, spec: dict[str, Check], cls=None, optional: tuple[str, ...] = ()):
    """Check the mapping ``raw`` against ``spec`` (every key required except ``optional`` ones, no unknown
    key) and return ``cls(**checked)`` (or the checked dict when ``cls`` is None)."""
    if raw is None and not spec:
        raw = {}
    if not isinstance(raw, dict):
        raise BadInput(f"params: `{prefix}` must be a mapping with the keys {', '.join(spec) or '(none)'}, "
                         f"got {raw!r}")
    for key in raw:
        if key not in spec:
            raise BadInput(f"params: unknown key `{prefix}.{key}`; allowed keys: {', '.join(spec) or '(none)'}")
    missing = [k for k in spec if k not in raw and k not in optional]
    if missing:
        raise BadInput(f"params: `{prefix}` lacks the key `{prefix}.{missing[0]}` (required: {', '.join(spec)})")
    out = {k: spec[k](f"{prefix}.{k}", raw[k]) for k in spec if k in raw}
    if cls is None:
        return out
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in out.items() if k in names})


def mapping_of(key_check: Check, value_check: Callable[[str, str], Check], min_len: int = 1) -> Check:
    """A mapping of ``min_len``.. entries whose keys pass ``key_check`` and whose values pass
    ``value_check(key, name)`` (the check may depend on the entry's name)."""
    def check(key, value):
        if not isinstance(value, dict) or len(value) < min_len:
            fail(key, value, f"a mapping of at least {min_len} entr{'y' if min_len == 1 else 'ies'} name: {{options}}")
        return {key_check(f"{key}.{name}", name): value_check(f"{key}.{name}", name)(f"{key}.{name}", sub)
                for name, sub in value.items()}
    return check


def sub(spec: dict[str, Check], cls=None, optional: tuple[str, ...] = ()) -> Check:
    """A check for a nested section."""
    return lambda key, value: section(key, value, spec, cls, optional)
