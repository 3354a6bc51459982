"""The verification's COUNT proof beside the writer (issue 14), on MariaDB and PostgreSQL.

Each batch that committed and matched every row is counted on a second connection
while the next batch is written (``apply.Prover``). What it proves must stay what the
count after the last batch proved: a row reads back the new text after its COMMIT, and
a row that does not (a trigger rewrites it) is re-read and reported failed with what it
holds. A prover that gets no connection leaves the counting to the writer's connection,
as before: it is never a reason to report a written row unknown.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from testkit.repairkit import HYBRID, details, drifted_cloud, execute, install

from vifdoctor.audit import judge_all
from vifdoctor.repair.apply import CHANGED, FAILED, WriteOptions, apply_changes
from vifdoctor.repair.plan import plan_changes, repair_codes
from vifdoctor.rules.plug import RuleContext
from vifdoctor.sources.neutron_db import NeutronDatabase

ROWS = 12
BATCH = 5  # batches of 5, 5 and 2
OTHER_VALUE = '{"port_filter": false}'


def _plan(engine: sa.Engine):
    ctx = RuleContext()
    with NeutronDatabase(engine) as source:
        agents = source.agents(75)
        changes = list(
            plan_changes(judge_all(source.bindings(), agents, ctx), repair_codes([]), ctx)
        )
        return source.layout, changes


def _rewriting_trigger(url: str, port_id: str) -> None:
    """The row of ``port_id`` holds OTHER_VALUE whatever an UPDATE writes into it."""
    if url.startswith("postgresql"):
        execute(
            url,
            "CREATE FUNCTION vd_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"NEW.vif_details := '{OTHER_VALUE}'; RETURN NEW; END $$",
            "CREATE TRIGGER vd_rewrite BEFORE UPDATE ON ml2_port_bindings FOR EACH ROW "
            f"WHEN (NEW.port_id = '{port_id}') EXECUTE FUNCTION vd_rewrite()",
        )
    else:
        execute(
            url,
            "CREATE TRIGGER vd_rewrite BEFORE UPDATE ON ml2_port_bindings FOR EACH ROW "
            f"SET NEW.vif_details = IF(NEW.port_id = '{port_id}', "
            f"'{OTHER_VALUE}', NEW.vif_details)",
        )


def _write(engine: sa.Engine, victim_index: int) -> tuple[dict, dict, set[str], tuple]:
    """Plan, plant the trigger on the row written ``victim_index``-th (key order), write.

    Returns the outcome's states and current values, the threads that checked out a
    connection during the write, and the victim's key.
    """
    layout, changes = _plan(engine)
    assert len(changes) == ROWS
    victim = sorted(changes, key=lambda c: (c.port_id, c.host))[victim_index]
    _rewriting_trigger(engine.url.render_as_string(hide_password=False), victim.port_id)
    threads: set[str] = set()

    @sa.event.listens_for(engine, "checkout")
    def checkout(*_args: object) -> None:
        threads.add(threading.current_thread().name)

    outcome = apply_changes(engine, layout, changes, WriteOptions(batch_size=BATCH))
    return outcome.status, outcome.current, threads, (victim.port_id, victim.host)


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_rows_are_proved_beside_the_writer_and_a_rewritten_row_is_failed(backend, request):
    """A trigger rewrites one row of the second batch: its batch matched every row, the
    prover's count falls short, the row is re-read and reported failed with what it
    holds; every other row is proved changed, by the prover's own connection."""
    url = request.getfixturevalue(f"{backend}_url")
    install(url, drifted_cloud(ROWS), "ocata")
    engine = sa.create_engine(url)
    try:
        status, current, threads, victim = _write(engine, victim_index=BATCH + 1)
    finally:
        engine.dispose()
    assert "vifdoctor-prover" in threads  # the counts ran on a connection of their own
    assert status[victim] == FAILED and current[victim] == OTHER_VALUE
    assert all(state == CHANGED for key, state in status.items() if key != victim)
    after = details(url)
    assert after[victim] == OTHER_VALUE
    assert all(value == HYBRID for key, value in after.items() if key != victim)


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_a_prover_without_a_connection_leaves_the_proof_to_the_writer(backend, request):
    """One connection in the pool, taken by the writer: the prover's checkout times out,
    and the writer counts every batch after the last one, as without a prover; the
    rewritten row is still found, the others are still proved changed (none unknown)."""
    url = request.getfixturevalue(f"{backend}_url")
    install(url, drifted_cloud(ROWS), "ocata")
    engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        status, current, threads, victim = _write(engine, victim_index=2)
    finally:
        engine.dispose()
    assert "vifdoctor-prover" not in threads  # it never got a connection
    assert status[victim] == FAILED and current[victim] == OTHER_VALUE
    assert all(state == CHANGED for key, state in status.items() if key != victim)
    assert details(url)[victim] == OTHER_VALUE


def test_a_writer_ahead_of_its_proofs_waits_for_them(monkeypatch):
    """At most Prover.AHEAD batches wait for their proof: a writer further ahead waits
    (the queue held every batch not yet counted, its memory growing with the rows)."""
    from contextlib import nullcontext

    from vifdoctor.repair import apply

    proving, release = threading.Event(), threading.Event()

    def slow_proof(conn, layout, table, rows, binary):
        proving.set()
        release.wait(30)
        return []

    monkeypatch.setattr(apply, "prove_counts", slow_proof)
    engine = type("Engine", (), {"connect": lambda self: nullcontext()})()
    prover = apply.Prover(engine, None, None, False)  # type: ignore[arg-type]
    ahead = apply.Prover.AHEAD + 2  # one being proved, AHEAD queued, one more waits
    writer = threading.Thread(target=lambda: [prover.submit([("p", i)]) for i in range(ahead)])
    writer.start()
    assert proving.wait(30)
    for _ in range(3000):
        if prover._queue.full():
            break
        threading.Event().wait(0.01)
    assert prover._queue.full() and writer.is_alive()  # waiting for room, not queued
    release.set()
    writer.join(30)
    assert not writer.is_alive()
    assert prover.result() == ([], [])  # every batch proved, none left to the writer
