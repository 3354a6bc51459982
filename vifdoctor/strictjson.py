"""Values every output format can carry, whatever the databases held.

JSON read from a column may hold NaN or Infinity (Python's parser accepts
them, strict JSON has no such thing) and nest as deep as the parser allows;
YAML's emitter recurses per level. :func:`dumps` emits strict JSON, turning
non-finite numbers into strings and cutting nesting past :data:`MAX_DEPTH`,
and only pays for the walk when the fast path refuses the value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 64
DEEP = f"(nested deeper than {MAX_DEPTH} levels: not shown)"


def strict(value: Any, depth: int = 0) -> Any:
    """``value`` with NaN/Infinity as strings and nesting below MAX_DEPTH replaced."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # 'nan', 'inf', '-inf'
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return DEEP
        return {k: strict(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            return DEEP
        return [strict(v, depth + 1) for v in value]
    return value


def dumps(value: Any, **kw: Any) -> str:
    """json.dumps, strict: never NaN/Infinity, never a RecursionError."""
    try:
        return json.dumps(value, allow_nan=False, default=str, **kw)
    except (ValueError, RecursionError):
        return json.dumps(strict(value), allow_nan=False, default=str, **kw)


_PROBE = {"b": [1, 2.5, None, True, "x\u00e9\n"], "a": {"z": "", "y": -0.0}}


def encoder(
    *,
    sort_keys: bool = False,
    separators: tuple[str, str] = (", ", ": "),
    allow_nan: bool = False,
) -> Callable[[Any], str]:
    """``json.JSONEncoder(default=str, ...).encode`` for many values, the same text.

    JSONEncoder builds its C encoder anew at every call: that setup was about half the
    cost of encoding a 100,000-row listing's rows (issue 14). Here it is built once.
    No circular check (rows have no cycles): a cycle ends in RecursionError, as nesting
    too deep does. Falls back to JSONEncoder where the C encoder is missing or differs.
    """
    item_separator, key_separator = separators
    plain = json.JSONEncoder(
        sort_keys=sort_keys, separators=separators, allow_nan=allow_nan, default=str
    ).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return plain
    try:
        fast = make(
            None,  # markers: no circular check
            str,  # default
            json.encoder.encode_basestring_ascii,
            None,  # indent
            key_separator,
            item_separator,
            sort_keys,
            False,  # skipkeys
            allow_nan,
        )

        def encode(value: Any) -> str:
            return "".join(fast(value, 0))

        if encode(_PROBE) != plain(_PROBE):
            return plain
    except (TypeError, ValueError):  # another Python's private signature
        return plain
    return encode
