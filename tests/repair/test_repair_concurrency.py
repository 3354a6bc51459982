"""``vifdoctor repair`` against a live MariaDB: killed mid-run, and blocked by a row lock.

Both run the real command in a separate process, because what is checked is
what the server keeps when that process dies or waits: whole batches only,
and retries after lock wait timeouts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pymysql
import pytest
from testkit import dbfixtures
from testkit.repairkit import (
    HYBRID,
    backups,
    bindings,
    dbname_of,
    drifted_cloud,
    install,
    install_demo,
    mariadb_root,
    spawn,
    subprocess_argv,
)

from vifdoctor.demo.incident import EMPTY_DETAIL_PORT_IDS

pytestmark = pytest.mark.mariadb

PORTS = 1000
BATCH = 50


def _wait_for(
    what: str,
    check,
    timeout: float = 60.0,
    proc: subprocess.Popen | None = None,
    every: float = 0.05,
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"vifdoctor exited ({proc.returncode}) before {what}")
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}")


def _hybrid_rows(dbname: str) -> int:
    # Autocommit connection: every count sees what is committed now.
    return mariadb_root(
        f"SELECT COUNT(*) FROM `{dbname}`.ml2_port_bindings WHERE vif_details = %s", HYBRID
    )[0][0]


def _lock_waits(dbname: str) -> int:
    """Transactions waiting for a row lock in ``dbname``.

    MariaDB refreshes information_schema.innodb_trx only when it was not read for
    0.1 s, hence the slower polling (``every``) where this is the check.
    """
    return mariadb_root(
        "SELECT COUNT(*) FROM information_schema.innodb_trx t "
        "JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
        "WHERE t.trx_state = 'LOCK WAIT' AND p.db = %s",
        dbname,
    )[0][0]


def test_sigkill_mid_repair_leaves_whole_batches_and_is_recoverable(mariadb_url, tmp_path):
    install(mariadb_url, drifted_cloud(PORTS), "ocata")
    dbname = dbname_of(mariadb_url)
    before = bindings(mariadb_url)
    assert len(before) == PORTS and {r["vif_details"] for r in before.values()} == {""}
    folder = tmp_path / "bk"
    argv = [
        "repair",
        "--neutron-db",
        mariadb_url,
        "--apply",
        "--batch-size",
        str(BATCH),
        "--max-rate",
        "200",
        "--backup-dir",
        str(folder),
    ]

    proc = spawn(*argv, cwd=tmp_path, log=tmp_path / "first")
    try:
        _wait_for("the first batch", lambda: _hybrid_rows(dbname), proc=proc)
        time.sleep(1.0)  # ~200 rows/s: a few more batches, and the run far from done
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    after = bindings(mariadb_url)
    changed = [k for k in before if after[k] != before[k]]
    assert 0 < len(changed) < PORTS
    assert len(changed) % BATCH == 0
    for k in changed:
        assert after[k] == {**before[k], "vif_details": HYBRID}
    # The batches are consecutive slices of the plan, which the backup lists in order:
    # the rows written are exactly the first whole batches.
    [first] = backups(folder)
    planned = [
        (r["original"]["port_id"], r["original"]["host"])
        for r in json.loads(first.read_text())["rows"]
    ]
    assert len(planned) == PORTS
    assert set(changed) == set(planned[: len(changed)])

    # The same command again finishes the job.
    done = subprocess.run(
        subprocess_argv(*argv),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    finished = bindings(mariadb_url)
    assert {r["vif_details"] for r in finished.values()} == {HYBRID}
    assert all(finished[k] == {**before[k], "vif_details": HYBRID} for k in before)

    # The first backup restores every original row.
    restore = subprocess.run(
        subprocess_argv(
            "rollback",
            str(first),
            "--neutron-db",
            mariadb_url,
            "--apply",
            "--backup-dir",
            str(tmp_path / "rb"),
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert restore.returncode == 0, restore.stderr
    assert bindings(mariadb_url) == before


def test_row_lock_is_waited_out_with_retries(mariadb_url, tmp_path):
    install_demo(mariadb_url)
    dbname = dbname_of(mariadb_url)
    before = bindings(mariadb_url)
    locked = EMPTY_DETAIL_PORT_IDS[3]

    locker = pymysql.connect(
        host=dbfixtures.MARIADB_HOST,
        port=dbfixtures.MARIADB_PORT,
        user=dbfixtures.MARIADB_USER,
        database=dbname,
        autocommit=False,
    )
    proc = None
    try:
        with locker.cursor() as cur:
            cur.execute("START TRANSACTION")
            cur.execute("SELECT * FROM ml2_port_bindings WHERE port_id = %s FOR UPDATE", (locked,))
            assert cur.rowcount == 1
        proc = spawn(
            "repair",
            "--neutron-db",
            mariadb_url,
            "--apply",
            "--lock-wait-timeout",
            "1",
            "--retries",
            "5",
            "-f",
            "json",
            "--backup-dir",
            str(tmp_path / "bk"),
            cwd=tmp_path,
            log=tmp_path / "run",
        )
        _wait_for(
            "vifdoctor to wait on the row lock", lambda: _lock_waits(dbname), proc=proc, every=0.3
        )
        time.sleep(2.0)  # at least one 1 s lock wait timeout, then a retry
        assert proc.poll() is None
        # Still nothing committed: the batch with the locked row is all or nothing.
        assert {
            r["vif_details"]
            for k, r in bindings(mariadb_url).items()
            if k[0] in EMPTY_DETAIL_PORT_IDS
        } == {""}
    finally:
        locker.rollback()
        locker.close()
        if proc is not None:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
    err = (tmp_path / "run.err").read_text()
    assert proc.returncode == 0, err
    doc = json.loads((tmp_path / "run.out").read_text())
    assert doc["outcome"]["retries"] > 0
    assert doc["outcome"]["changed"] == 6 and doc["outcome"]["failed"] == 0
    after = bindings(mariadb_url)
    for k, row in before.items():
        want = HYBRID if k[0] in EMPTY_DETAIL_PORT_IDS else row["vif_details"]
        assert after[k] == {**row, "vif_details": want}


def test_ctrl_c_stops_after_the_running_batch(mariadb_url, tmp_path):
    """SIGINT (Ctrl-C) finishes the running batch, stops, exits 130; a re-run completes."""
    install(mariadb_url, drifted_cloud(PORTS), "ocata")
    dbname = dbname_of(mariadb_url)
    before = bindings(mariadb_url)
    argv = [
        "repair",
        "--neutron-db",
        mariadb_url,
        "--apply",
        "--batch-size",
        str(BATCH),
        "--max-rate",
        "200",
        "--backup-dir",
        str(tmp_path / "bk"),
    ]
    proc = spawn(*argv, cwd=tmp_path, log=tmp_path / "run")
    try:
        _wait_for("the first batch", lambda: _hybrid_rows(dbname), proc=proc)
        proc.send_signal(signal.SIGINT)
    finally:
        proc.wait(timeout=30)
    err = (tmp_path / "run.err").read_text()
    assert proc.returncode == 130, err
    assert "stopping after the current batch" in err
    assert "Interrupted" in (tmp_path / "run.out").read_text()
    after = bindings(mariadb_url)
    changed = [k for k in before if after[k] != before[k]]
    assert 0 < len(changed) < PORTS and len(changed) % BATCH == 0
    assert all(after[k] == {**before[k], "vif_details": HYBRID} for k in changed)

    done = subprocess.run(
        subprocess_argv(*argv),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {r["vif_details"] for r in bindings(mariadb_url).values()} == {HYBRID}
