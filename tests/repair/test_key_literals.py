"""The repair's key lists as SQL literals, not two bound parameters per row (issue 14).

SQLAlchemy's expanding tuple parameters, and the driver escaping each, cost about a
quarter of the write path at 100,000 rows. The keys are now rendered by the literals
``plan --sql`` uses (repair/literal.py), with a fast path for plain text that must
mean exactly what the full rendering means. That whatever a key holds still reaches the
right row on every backend is tests/repair/test_sql_hostile.py's ``repair --apply``.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from testkit.repairkit import HYBRID, details, drifted_cloud, install

from vifdoctor.audit import judge_all
from vifdoctor.repair.apply import CHANGED, WriteOptions, apply_changes
from vifdoctor.repair.literal import fast_literal, key_list, sql_literal
from vifdoctor.repair.plan import plan_changes, repair_codes
from vifdoctor.rules.plug import RuleContext
from vifdoctor.sources.neutron_db import NeutronDatabase

VALUES = [
    "00000000-0000-4000-8000-000000000001",
    "compute-01.example.org",
    "",
    "a b",
    "50%",
    "it's",
    "a\\b",
    "a\nb",
    "nul\x00",
    "\u202eevil",
    "h\u00f4te",
    "tab\tx",
    "semi;colon -- comment",
    'quote"d',
]


@pytest.mark.parametrize("dialect", ["mysql", "mariadb", "postgresql", "sqlite"])
@pytest.mark.parametrize("value", VALUES)
def test_fast_literal_is_the_full_literal(value, dialect):
    assert fast_literal(value, dialect) == sql_literal(value, dialect)


@pytest.mark.parametrize("dialect", ["mysql", "mariadb", "postgresql", "sqlite"])
def test_a_key_list_is_each_key_rendered_in_full(dialect):
    """The list's fast path (one match over every key's text) renders what each key's
    full literal renders, whether all keys are plain, one is not, or none is."""
    plain = [(VALUES[0], VALUES[1]), (VALUES[0], ""), ("a b", "50%")]
    for keys in (plain, [*plain, (VALUES[0], "it's")], [(v, w) for v in VALUES for w in VALUES]):
        full = ", ".join(f"({sql_literal(p, dialect)}, {sql_literal(h, dialect)})" for p, h in keys)
        assert key_list(keys, dialect) == full
    assert key_list([], dialect) == ""


def test_keys_are_not_bound_parameters(sqlite_url):
    install(sqlite_url, drifted_cloud(8), "ocata")
    engine = sa.create_engine(sqlite_url)
    sent: list[tuple[str, object]] = []
    sa.event.listen(
        engine,
        "before_cursor_execute",
        lambda conn, cur, stmt, params, *a: sent.append((stmt, params)),
    )
    ctx = RuleContext()
    try:
        with NeutronDatabase(engine) as source:
            agents = source.agents(75)
            changes = list(
                plan_changes(judge_all(source.bindings(), agents, ctx), repair_codes([]), ctx)
            )
            layout = source.layout
        sent.clear()
        outcome = apply_changes(engine, layout, changes, WriteOptions(batch_size=3))
    finally:
        engine.dispose()
    assert set(outcome.status.values()) == {CHANGED}
    assert set(details(sqlite_url).values()) == {HYBRID}
    writes = [(s, p) for s, p in sent if s.lstrip().upper().startswith(("UPDATE", "SELECT COUNT"))]
    assert len(writes) == 3 + 3  # three batches, each proved by one COUNT as it commits
    for statement, params in writes:
        # new text, stored text, status: three parameters, whatever the rows
        assert len(params) <= 3, statement
    for c in changes:
        assert any(f"'{c.port_id}'" in s for s, _ in writes if s.lstrip().startswith("UPDATE"))


def test_a_batch_is_grouped_by_pair_whether_it_holds_one_pair_or_several():
    """One (stored, new) pair takes its keys at C speed; several go row by row: the
    groups (each with its rows' keys, in order) are the same either way, and a row read
    as NULL keeps its own group (its guard is IS NULL)."""
    from typing import NamedTuple

    from vifdoctor.repair.apply import batch_params

    class Row(NamedTuple):
        port_id: str
        host: str
        stored: str | None
        new: str | None

    def by_loop(batch, size):
        groups: dict = {}
        for r in batch:
            groups.setdefault((r.stored, r.new), []).append((r.port_id, r.host))
        return [
            {"b_keys": keys[i : i + size], "b_stored": s, "b_new": n}
            for (s, n), keys in groups.items()
            for i in range(0, len(keys), size)
        ]

    one = [Row(f"p{i}", "h", "", "new") for i in range(5)]
    mixed = [Row(f"p{i}", "h", [None, "", "x"][i % 3], "new") for i in range(7)]
    for batch in (one, mixed, one[:1]):
        for size in (2, 1000):
            assert batch_params(batch, size) == by_loop(batch, size)
