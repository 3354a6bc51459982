"""Binding tables whose ``vif_details`` (and ``profile``) are BLOBs, as vendor and legacy
schemas have them on MariaDB: the repair reports what it really committed, the backup
holds the exact bytes, and rollback restores them byte for byte.

Issue 13: the repair committed the rows but said "nothing was written" (exit 3), the
backup held the Python repr ``b'...'``, and rollback could not restore the rows.
"""

from __future__ import annotations

import base64
import json

import pytest
from testkit.repairkit import (
    HYBRID,
    bindings,
    cli,
    drifted_cloud,
    execute,
    install,
    port_uuid,
    rollback_apply,
)

NOT_UTF8 = b"\xff\xfe{\x00bad"


@pytest.mark.parametrize("layout", ["icehouse", "ocata"])
def test_blob_repair_backup_and_rollback_are_exact(mariadb_url, tmp_path, capsys, layout):
    install(mariadb_url, drifted_cloud(12), layout)
    execute(
        mariadb_url, "ALTER TABLE ml2_port_bindings MODIFY vif_details BLOB, MODIFY profile BLOB"
    )
    # a row the repair must not touch: details that are not even UTF-8
    execute(
        mariadb_url,
        "UPDATE ml2_port_bindings SET vif_details = :v, profile = :v WHERE port_id = :p",
        v=NOT_UTF8,
        p=port_uuid(0),
    )
    # a row with details that need only ovs_hybrid_plug, spacing kept byte for byte
    execute(
        mariadb_url,
        "UPDATE ml2_port_bindings SET vif_details = :v WHERE port_id = :p",
        v='{"port_filter":  true, "é": "\\u00e9"}'.encode(),
        p=port_uuid(1),
    )
    # a BLOB column allows NULL: judged as empty details, written, restored as NULL
    execute(
        mariadb_url,
        "UPDATE ml2_port_bindings SET vif_details = NULL WHERE port_id = :p",
        p=port_uuid(2),
    )
    before = bindings(mariadb_url)
    code, out, err = cli(
        capsys,
        "repair",
        "--neutron-db",
        mariadb_url,
        "--apply",
        "--backup-dir",
        str(tmp_path / "bk"),
        "-f",
        "json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["outcome"]["changed"] == 11 and doc["outcome"]["failed"] == 0
    after = bindings(mariadb_url)
    changed = {k for k in before if before[k] != after[k]}
    assert len(changed) == 11
    assert all(
        after[k]["vif_details"]
        in (
            HYBRID.encode(),
            json.dumps({"port_filter": True, "é": "é", "ovs_hybrid_plug": True}).encode(),
        )
        for k in changed
    )
    [backup] = sorted((tmp_path / "bk").glob("*.json"))
    text = backup.read_text()
    assert "b'" not in text and 'b\\"' not in text
    rows = json.loads(text)["rows"]
    stored = {r["original"]["port_id"]: r["original"]["vif_details"] for r in rows}
    assert stored[port_uuid(2)] is None  # JSON null: neither "" nor tagged bytes
    one = stored[port_uuid(1)]
    assert (
        base64.b64decode(one["base64"])
        == before[next(k for k in before if k[0] == port_uuid(1))]["vif_details"]
    )
    code, out, err = rollback_apply(capsys, backup, mariadb_url, str(tmp_path / "rb"))
    assert code == 0, err
    assert json.loads(out)["outcome"]["changed"] == 11
    assert bindings(mariadb_url) == before
