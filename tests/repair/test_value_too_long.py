"""A planned value longer than the column (VARCHAR(4095)) is named and not written; the
rest of the plan proceeds (issue 13: one such row failed its whole batch, naming no port).
"""

from __future__ import annotations

import json

import pytest
from testkit.repairkit import HYBRID, bindings, cli, drifted_cloud, install, port_uuid

# Compact JSON that json.dumps re-serializes with ", " and ": ": it grows past 4095.
LONG = json.dumps({"port_filter": True, "pad": "x" * 4040}, separators=(",", ":"))


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_too_long_row_is_named_and_the_rest_repaired(backend, request, tmp_path, capsys):
    url = request.getfixturevalue(f"{backend}_url")
    cloud = drifted_cloud(6)
    cloud.ports[2].binding.vif_details = LONG
    install(url, cloud, "ocata")
    assert len(LONG) <= 4095
    code, out, err = cli(capsys, "plan", "--neutron-db", url, "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert [r["port_id"] for r in doc["not_planned_too_long"]] == [port_uuid(2)]
    assert port_uuid(2) not in {c["port_id"] for c in doc["changes"]}
    code, out, err = cli(
        capsys, "repair", "--neutron-db", url, "--apply", "--backup-dir", str(tmp_path / "bk")
    )
    assert code == 2, err
    assert f"port {port_uuid(2)}" in out and "fix this row by hand" in out
    after = {
        k[0]: r["vif_details"] for k, r in bindings(url).items() if r.get("status") == "ACTIVE"
    }
    assert after[port_uuid(2)] == LONG
    assert sum(1 for p, v in after.items() if v == HYBRID) == 5
