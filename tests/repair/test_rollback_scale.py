"""Rollback is linear in the backup's size: no slower than the repair that made it.

Issue 13: each restored row was looked up in a list of the due rows (``c in due``),
so a 30,000-row rollback took 133 s after a 2.8 s repair.
"""

from __future__ import annotations

import time

from testkit.repairkit import cli, details, drifted_cloud, install, rollback_apply

ROWS = 8000


def test_rollback_takes_no_longer_than_the_repair(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    install(url, drifted_cloud(ROWS), "ocata")
    before = details(url)
    started = time.monotonic()
    code, out, err = cli(
        capsys,
        "repair",
        "--neutron-db",
        url,
        "--apply",
        "--backup-dir",
        str(tmp_path / "bk"),
        "-f",
        "json",
    )
    repair_s = time.monotonic() - started
    assert code == 0, err
    [backup] = sorted((tmp_path / "bk").glob("repair-*.json"))
    started = time.monotonic()
    code, out, err = rollback_apply(capsys, backup, url, str(tmp_path / "rb"))
    rollback_s = time.monotonic() - started
    assert code == 0, err
    assert details(url) == before
    # Same work both ways (read, back up, write, verify): allow noise, not a quadratic term.
    assert rollback_s < 1.5 * repair_s + 1.0, (rollback_s, repair_s)
