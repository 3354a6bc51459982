"""The audit runs with cyclic GC off (issue 14) and leaves the collector as it found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

from vifdoctor.audit import run_audit
from vifdoctor.collector import no_cyclic_gc
from vifdoctor.model import Binding
from vifdoctor.rules.plug import RuleContext


def test_run_audit_streams_with_cyclic_gc_off_then_restores_it() -> None:
    seen: list[bool] = []

    def bindings() -> Iterator[Binding]:
        seen.append(gc.isenabled())
        yield from ()

    assert gc.isenabled()
    report = run_audit(bindings(), {}, RuleContext(), schema={}, assumptions=[])
    assert seen == [False]
    assert gc.isenabled() and report.rows == 0


def test_a_collector_stopped_by_the_caller_stays_stopped() -> None:
    gc.disable()
    try:
        with no_cyclic_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with no_cyclic_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
