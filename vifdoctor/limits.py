"""Bounds on numeric settings, checked before anything is read or written.

``float()`` accepts ``nan``, ``inf`` and ``1e300``: as an agent down time they
overflow the heartbeat arithmetic, and a ``--max-rate`` of ``1e-300`` made the
pacing sleep overflow only after the first batch was committed. Each bound is
far beyond any real use and says so in one line.
"""

from __future__ import annotations

import math

from vifdoctor.errors import VifdoctorError

MAX_AGENT_DOWN_TIME = 10 * 365 * 86400.0  # ten years, in seconds
MIN_RATE = 0.001  # rows per second: one row every ~17 minutes
MAX_RATE = 1e9


def check_agent_down_time(value: float, source: str = "--agent-down-time") -> float:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0 < value <= MAX_AGENT_DOWN_TIME
    ):
        raise VifdoctorError(
            f"{source} must be a number of seconds above 0 and at most "
            f"{MAX_AGENT_DOWN_TIME:.0f}, got {value!r}"
        )
    return float(value)


def check_max_rate(value: float | None) -> float | None:
    if value is None:
        return None
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not MIN_RATE <= value <= MAX_RATE
    ):
        raise VifdoctorError(
            f"--max-rate must be between {MIN_RATE} and {MAX_RATE:g} rows per second, got {value!r}"
        )
    return float(value)
