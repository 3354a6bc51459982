"""Pausing Python's cyclic garbage collector over work that makes no reference cycles,
and not freeing, object by object, what a process about to exit still holds."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Cyclic GC off for the block, then as it was (a caller may have stopped it already).

    For runs that allocate millions of short-lived objects and no cycles (a plan, a
    repair, an audit): the collector's passes over them cost a fifth of such runs
    (issue 14), for nothing to free; reference counting frees them all the same.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: What keep_until_exit was given; None: callers free as usual (the library, tests).
_kept: list[object] | None = None


def free_at_exit() -> None:
    """From here on, :func:`keep_until_exit` keeps what it is given: the process ends by
    ``os._exit`` (vifdoctor.cmd.main.run_as_command), which frees nothing one by one."""
    global _kept
    if _kept is None:
        _kept = []


def keep_until_exit(value: object) -> None:
    """Hold ``value`` until the process exits, when :func:`free_at_exit` was called.

    A 100,000-row repair's report (its changes, their bindings and texts) took 0.2-0.5 s
    to free object by object at the end of a run (issue 14), for a process that then
    exits. Elsewhere (vifdoctor as a library, the tests' in-process runs) it is freed
    as usual.
    """
    if _kept is not None:
        _kept.append(value)
