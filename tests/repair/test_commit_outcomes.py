"""What a repair reports when a batch's COMMIT fails, or its outcome is unknown.

Real servers, real drivers, real failures, nothing mocked:

* a deferred constraint trigger (PostgreSQL) that raises at COMMIT: the batch is
  rolled back, and the re-read proves its rows unchanged ("failed");
* the repair's backend terminated (``pg_terminate_backend``) while a deferred
  trigger sleeps inside its COMMIT: the client loses its connection, the server
  rolls back, and the re-read (on a new connection) proves the rows unchanged;
* the connection lost right after the server ran the COMMIT (testkit.faultproxy,
  a TCP proxy that swallows the server's answer), on MariaDB and PostgreSQL: the
  client gets the same kind of error, but the re-read proves the rows written
  ("committed despite an error": changed), and the rows never sent stay pending;
* the same, with every new connection refused afterwards: the re-read fails, and
  every row a batch was sent for is reported unknown, never "nothing was written".

In each case the exit code is 2, every row's outcome is the truth the test reads
back on its own connection, and the backup restores every written row.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from testkit import dbfixtures
from testkit.faultproxy import commit_cutter
from testkit.repairkit import HYBRID, bindings, cli, drifted_cloud, execute, install, rollback_apply

BATCH = 3  # 8 rows: batches of 3, 3 and 2, in the plan's order


def _repair(capsys, url: str, backup_dir: Path) -> tuple[int, dict, str]:
    code, out, err = cli(
        capsys,
        "repair",
        "--neutron-db",
        url,
        "--apply",
        "--batch-size",
        str(BATCH),
        "--backup-dir",
        str(backup_dir),
        "-f",
        "json",
    )
    assert out, err  # a report, not a refusal
    return code, json.loads(out), err


def _results(doc: dict) -> list[str]:
    """Each planned row's outcome, in the order the batches wrote them."""
    return [c["result"] for c in doc["changes"]]


def _details_in_plan_order(url: str, doc: dict) -> list[str]:
    rows = bindings(url)
    return [rows[(c["port_id"], c["host"])]["vif_details"] for c in doc["changes"]]


def _rollback_restores(capsys, url: str, backup_dir: Path, before: dict, written: int) -> None:
    [backup] = sorted(backup_dir.glob("*.json"))
    code, out, err = rollback_apply(capsys, backup, url, str(backup_dir / "rollback"))
    assert code == 0, err
    assert json.loads(out)["outcome"]["changed"] == written
    assert bindings(url) == before


def _deferred_trigger(url: str, body: str) -> None:
    """A constraint trigger on ml2_port_bindings that runs ``body`` at COMMIT, for the
    second batch's rows only (its first row, in the plan's order)."""
    execute(
        url,
        "CREATE FUNCTION vd_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {body}; RETURN NULL; END $$",
    )


def _plan_order(capsys, url: str) -> list[dict]:
    code, out, err = cli(capsys, "plan", "--neutron-db", url, "-f", "json")
    assert code == 0, err
    return json.loads(out)["changes"]


def _on_row(url: str, port_id: str) -> None:
    execute(
        url,
        "CREATE CONSTRAINT TRIGGER vd_at_commit AFTER UPDATE ON ml2_port_bindings "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        f"WHEN (NEW.port_id = '{port_id}') EXECUTE FUNCTION vd_at_commit()",
    )


def test_a_commit_refused_at_commit_time_is_reported_failed(postgresql_url, tmp_path, capsys):
    install(postgresql_url, drifted_cloud(8), "ocata")
    before = bindings(postgresql_url)
    plan = _plan_order(capsys, postgresql_url)
    _deferred_trigger(postgresql_url, "RAISE EXCEPTION 'refused at commit by a test trigger'")
    _on_row(postgresql_url, plan[BATCH]["port_id"])  # the second batch fails at COMMIT

    code, doc, err = _repair(capsys, postgresql_url, tmp_path / "bk")
    assert code == 2, err
    assert _results(doc) == ["changed"] * 3 + ["failed"] * 3 + ["pending"] * 2
    outcome = doc["outcome"]
    assert (outcome["changed"], outcome["failed"], outcome["pending"]) == (3, 3, 2)
    assert "refused at commit by a test trigger" in outcome["errors"][0]
    # the re-read is the truth: the failed batch holds what it held
    assert _details_in_plan_order(postgresql_url, doc) == [HYBRID] * 3 + [""] * 5
    assert [c["current_details"] for c in doc["changes"][3:6]] == [""] * 3

    execute(postgresql_url, "DROP TRIGGER vd_at_commit ON ml2_port_bindings")
    _rollback_restores(capsys, postgresql_url, tmp_path / "bk", before, 3)


def test_a_backend_killed_inside_its_commit_is_reported_failed(postgresql_url, tmp_path, capsys):
    """The client sees its connection drop during COMMIT; the server rolled back."""
    install(postgresql_url, drifted_cloud(8), "ocata")
    before = bindings(postgresql_url)
    plan = _plan_order(capsys, postgresql_url)
    _deferred_trigger(postgresql_url, "PERFORM pg_sleep(60)")
    _on_row(postgresql_url, plan[BATCH]["port_id"])
    dbname = sa.engine.make_url(postgresql_url).database
    killed: list[int] = []

    def kill_the_sleeper() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            rows = dbfixtures._postgresql_execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event = 'PgSleep'",
                (dbname,),
            )
            for (pid,) in rows:
                dbfixtures._postgresql_execute("SELECT pg_terminate_backend(%s)", (pid,))
                killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_sleeper)
    killer.start()
    try:
        code, doc, err = _repair(capsys, postgresql_url, tmp_path / "bk")
    finally:
        killer.join()
    assert killed, "the repair's COMMIT never reached the sleeping trigger"
    assert code == 2, err
    assert _results(doc) == ["changed"] * 3 + ["failed"] * 3 + ["pending"] * 2
    assert "terminat" in doc["outcome"]["errors"][0]
    assert _details_in_plan_order(postgresql_url, doc) == [HYBRID] * 3 + [""] * 5

    execute(postgresql_url, "DROP TRIGGER vd_at_commit ON ml2_port_bindings")
    _rollback_restores(capsys, postgresql_url, tmp_path / "bk", before, 3)


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_a_commit_whose_answer_is_lost_is_re_read_as_changed(backend, request, tmp_path, capsys):
    """'Committed despite an error': the re-read finds the second batch written."""
    url = request.getfixturevalue(f"{backend}_url")
    install(url, drifted_cloud(8), "ocata")
    before = bindings(url)
    with commit_cutter(url, skip=1) as proxy:
        code, doc, err = _repair(capsys, proxy.url(url), tmp_path / "bk")
        assert proxy.cuts == 1
    # the write stopped after the error: the last batch was never sent, hence exit 2
    assert code == 2, err
    assert _results(doc) == ["changed"] * 6 + ["pending"] * 2
    outcome = doc["outcome"]
    assert (outcome["changed"], outcome["failed"], outcome["pending"]) == (6, 0, 2)
    assert len(outcome["errors"]) == 1 and "unknown" not in outcome
    assert _details_in_plan_order(url, doc) == [HYBRID] * 6 + [""] * 2

    _rollback_restores(capsys, url, tmp_path / "bk", before, 6)


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_a_commit_whose_answer_is_lost_and_no_re_read_is_unknown(
    backend, request, tmp_path, capsys
):
    """No re-read possible: every row a batch was sent for is unknown, none 'not written'."""
    url = request.getfixturevalue(f"{backend}_url")
    install(url, drifted_cloud(8), "ocata")
    before = bindings(url)
    with commit_cutter(url, skip=1, refuse_after=True) as proxy:
        code, doc, err = _repair(capsys, proxy.url(url), tmp_path / "bk")
        assert proxy.cuts == 1 and proxy.refused >= 1
    assert code == 2, err
    assert _results(doc) == ["unknown"] * 6 + ["pending"] * 2
    outcome = doc["outcome"]
    assert (outcome["unknown"], outcome["changed"], outcome["pending"]) == (6, 0, 2)
    assert outcome["errors"][-1].startswith("could not re-read the rows:")
    # unknown was the honest answer: both batches had committed
    assert _details_in_plan_order(url, doc) == [HYBRID] * 6 + [""] * 2

    _rollback_restores(capsys, url, tmp_path / "bk", before, 6)
