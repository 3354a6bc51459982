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
