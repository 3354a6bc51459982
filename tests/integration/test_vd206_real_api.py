"""INACTIVE bindings made by the real neutron 29.0.0 API, as Nova makes them in a live
migration (``POST /v2.0/ports/{id}/bindings``, then ``PUT .../bindings/{host}/activate``),
judged against nova 34.0.0's migration records and repaired in the database.

The proof that the repair helps: before it, Neutron refuses a new binding for the
destination (the port cannot be live-migrated there again); after it, the same call
succeeds. A migration still running keeps its binding throughout.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from testkit.migrationkit import write_cell
from testkit.neutron_server import NeutronServer, ovs_agent_configurations, running_server
from testkit.novakit import cli_json, vm_uuid

from vifdoctor.demo.nova import InstanceSpec, MigrationSpec

SRC, DST = "compute1", "compute2"
SERVICE = {"X-Roles": "admin,service"}  # Nova calls the bindings API with the service role
FAILED, RUNNING, COMPLETED = 1, 2, 3


def call(server: NeutronServer, method: str, path: str, body: dict | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{server.url}/v2.0{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **SERVICE},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
    return json.loads(text) if text else None


def bindings(server: NeutronServer, port: str) -> dict[str, str]:
    """host -> status, as the API lists the port's bindings."""
    return {
        b["host"]: b["status"] for b in call(server, "GET", f"/ports/{port}/bindings")["bindings"]
    }


def bind_for_migration(server: NeutronServer, port: str) -> int:
    """Nova's pre-live-migration call; the HTTP status Neutron answers."""
    try:
        call(server, "POST", f"/ports/{port}/bindings", {"binding": {"host": DST}})
        return 201
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.nova_real
def test_real_api_bindings_judged_and_repaired(
    neutron29_mariadb_url: str, nova34_cell_mariadb_url: str, tmp_path: Path
) -> None:
    with running_server(neutron29_mariadb_url, tmp_path) as server:
        server.add_agent(SRC, ovs_agent_configurations(True))
        server.add_agent(DST, ovs_agent_configurations(True))
        net = call(server, "POST", "/networks", {"network": {"name": "vd"}})["network"]["id"]
        call(
            server,
            "POST",
            "/subnets",
            {"subnet": {"network_id": net, "cidr": "10.9.0.0/24", "ip_version": 4}},
        )
        ports = {}
        for n in (FAILED, RUNNING, COMPLETED):
            ports[n] = call(
                server,
                "POST",
                "/ports",
                {
                    "port": {
                        "network_id": net,
                        "device_owner": "compute:nova",
                        "device_id": vm_uuid(n),
                        "binding:host_id": SRC,
                    }
                },
            )["port"]["id"]
            assert bind_for_migration(server, ports[n]) == 201  # INACTIVE on DST
        # the completed one was activated on DST; its source cleanup "failed"
        call(server, "PUT", f"/ports/{ports[COMPLETED]}/bindings/{DST}/activate")
        assert bindings(server, ports[COMPLETED]) == {SRC: "INACTIVE", DST: "ACTIVE"}
        assert bindings(server, ports[FAILED]) == {SRC: "ACTIVE", DST: "INACTIVE"}

        write_cell(
            nova34_cell_mariadb_url,
            [
                InstanceSpec(vm_uuid(FAILED), SRC),
                InstanceSpec(vm_uuid(RUNNING), SRC),
                InstanceSpec(vm_uuid(COMPLETED), DST),
            ],
            [
                MigrationSpec(vm_uuid(FAILED), SRC, DST, "failed"),
                MigrationSpec(vm_uuid(RUNNING), SRC, DST, "running"),
                MigrationSpec(vm_uuid(COMPLETED), SRC, DST, "completed"),
            ],
            icehouse=False,
        )
        nova = ("--nova-db", nova34_cell_mariadb_url)
        _, doc, _ = cli_json("audit", "--neutron-db", neutron29_mariadb_url, *nova)
        vd206 = {(f["port_id"], f["host"]) for f in doc["findings"] if f["code"] == "VD206"}
        assert vd206 == {(ports[FAILED], DST), (ports[COMPLETED], SRC)}
        assert not [f for f in doc["findings"] if f["code"] in ("VD109", "VD202", "VD207")]

        # the stale row blocks the next live migration to that host
        assert bind_for_migration(server, ports[FAILED]) == 409

        code, rep, err = cli_json(
            "repair",
            "--neutron-db",
            neutron29_mariadb_url,
            *nova,
            "--code",
            "VD206",
            "--apply",
            "--backup-dir",
            str(tmp_path),
        )
        assert code == 0, err
        assert rep["outcome"]["deleted"] == 2
        assert bindings(server, ports[FAILED]) == {SRC: "ACTIVE"}
        assert bindings(server, ports[COMPLETED]) == {DST: "ACTIVE"}
        assert bindings(server, ports[RUNNING]) == {SRC: "ACTIVE", DST: "INACTIVE"}
        # the port can be migrated again; the API reads the remaining rows fine
        assert bind_for_migration(server, ports[FAILED]) == 201
        call(server, "DELETE", f"/ports/{ports[FAILED]}/bindings/{DST}")
        shown = call(server, "GET", f"/ports/{ports[COMPLETED]}")["port"]
        assert shown["binding:host_id"] == DST and shown["binding:vif_type"] == "ovs"

        # rollback: the API shows the INACTIVE bindings again, as they were
        code, _, err = cli_json(
            "rollback",
            rep["backup"],
            "--neutron-db",
            neutron29_mariadb_url,
            "--apply",
            "--backup-dir",
            str(Path(rep["backup"]).parent / "rollback"),
        )
        assert code == 0, err
        assert bindings(server, ports[COMPLETED]) == {SRC: "INACTIVE", DST: "ACTIVE"}
        assert bindings(server, ports[FAILED]) == {SRC: "ACTIVE", DST: "INACTIVE"}
