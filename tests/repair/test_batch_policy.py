"""Which rows each transaction of ``repair --apply`` writes, and how many (issue 14).

Rows are written in (port_id, host) order, whatever the plan's order (the read's
device_id order): a batch holds neighbouring rows of the table's primary key.

No ``--batch-size``: batches start at 500 and grow, at most doubling, toward 100 ms per
transaction, up to 2,000 rows; a transaction slower than that brings them back to 500.
``--batch-size N``: every batch is N rows, whatever the timings. The timings come from
a fake clock (each transaction "takes" what the test says), so nothing here depends on
the machine's speed.
"""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from testkit.repairkit import HYBRID, details, drifted_cloud, install

from vifdoctor.audit import judge_all
from vifdoctor.repair.apply import (
    ADAPTIVE_MAX,
    ADAPTIVE_START,
    CHANGED,
    WriteOptions,
    apply_changes,
    next_batch_size,
)
from vifdoctor.repair.plan import plan_changes, repair_codes
from vifdoctor.rules.plug import RuleContext
from vifdoctor.sources.neutron_db import NeutronDatabase

ROWS = 6000


def fake_clock(seconds_per_transaction: list[float]):
    """A monotonic clock read twice per transaction (at BEGIN, after COMMIT): the
    n-th transaction lasts seconds_per_transaction[n] (the last one repeats)."""
    durations = itertools.chain(
        seconds_per_transaction, itertools.repeat(seconds_per_transaction[-1])
    )
    now = [0.0]
    began = [True]

    def clock() -> float:
        if not began[0]:
            now[0] += next(durations)
        began[0] = not began[0]
        return now[0]

    return clock


def _plan(engine: sa.Engine):
    ctx = RuleContext()
    with NeutronDatabase(engine) as source:
        agents = source.agents(75)
        changes = list(
            plan_changes(judge_all(source.bindings(), agents, ctx), repair_codes([]), ctx)
        )
        return source.layout, changes


def _write(url: str, opts: WriteOptions, seconds: list[float]) -> tuple[list[int], dict]:
    """Plan the drifted rows and write them; the rows per batch, and the outcome's states."""
    engine = sa.create_engine(url)
    try:
        layout, changes = _plan(engine)
        sizes: list[int] = []
        outcome = apply_changes(
            engine, layout, changes, opts, progress=sizes.append, clock=fake_clock(seconds)
        )
    finally:
        engine.dispose()
    assert len(changes) == ROWS
    assert set(outcome.status.values()) == {CHANGED}
    assert outcome.batches == len(sizes)
    assert set(details(url).values()) == {HYBRID}
    return sizes, outcome.status


def test_batches_grow_while_transactions_are_fast(sqlite_url):
    install(sqlite_url, drifted_cloud(ROWS, hosts=8), "ocata")
    sizes, _ = _write(sqlite_url, WriteOptions(), [0.01])
    assert sizes == [500, 1000, 2000, 2000, 500]


def test_batches_come_back_when_a_transaction_is_slow(sqlite_url):
    install(sqlite_url, drifted_cloud(ROWS, hosts=8), "ocata")
    # 10 ms, 10 ms, then 400 ms for the 2,000-row batch: back to 500 (never fewer)
    sizes, _ = _write(sqlite_url, WriteOptions(), [0.01, 0.01, 0.4, 0.01])
    assert sizes == [500, 1000, 2000, 500, 1000, 1000]


def test_a_batch_size_given_is_every_batch_size(sqlite_url):
    install(sqlite_url, drifted_cloud(ROWS, hosts=8), "ocata")
    sizes, _ = _write(sqlite_url, WriteOptions(batch_size=700), [0.001])
    assert sizes == [700] * 8 + [400]


@pytest.mark.parametrize(
    ("size", "seconds", "expected"),
    [
        (500, 0.01, 1000),  # far under the target: at most twice as large
        (1000, 0.08, 1250),  # near it: proportional
        (2000, 0.001, ADAPTIVE_MAX),  # never above the cap
        (2000, 0.4, ADAPTIVE_START),  # slow: back, but never below the start
        (1000, 0.12, ADAPTIVE_START),  # over the target at all: back at once
        (500, 0.0, 1000),  # a clock too coarse to see it: doubled
    ],
)
def test_next_batch_size(size, seconds, expected):
    assert next_batch_size(size, seconds) == expected


def test_rows_are_written_in_key_order_whatever_the_plan_order(sqlite_url):
    """The plan reversed, batches of 3, stopped after the first: the three rows written
    are the three first keys, not the plan's three first rows."""
    install(sqlite_url, drifted_cloud(8), "ocata")
    engine = sa.create_engine(sqlite_url)
    try:
        layout, changes = _plan(engine)
        changes.reverse()
        keys = sorted((c.port_id, c.host) for c in changes)
        assert [(c.port_id, c.host) for c in changes] != keys
        sent: list[int] = []
        outcome = apply_changes(
            engine,
            layout,
            changes,
            WriteOptions(batch_size=3),
            should_stop=lambda: bool(sent),
            progress=sent.append,
        )
    finally:
        engine.dispose()
    assert outcome.interrupted and sent == [3]
    written = {k for k, state in outcome.status.items() if state == CHANGED}
    assert written == set(keys[:3])
    assert {k for k, v in details(sqlite_url).items() if v == HYBRID} == set(keys[:3])
    # the outcome keeps the plan's order
    assert list(outcome.status) == [(c.port_id, c.host) for c in changes]
