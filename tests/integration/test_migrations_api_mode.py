"""API mode reads the moves from nova 34.0.0's real ``GET /os-migrations``.

Real neutron and nova API servers (tests/neutron_server.py, tests/nova_server.py);
INACTIVE bindings made through Neutron's bindings API as Nova makes them, migration
rows in the real nova 34.0.0 cell schema. The API audit must judge the moves as the
database audit does, including the resize awaiting confirmation that
``GET /servers/{id}/migrations`` does not list.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

import pytest
from test_api_mode import HYBRID, NATIVE, SERVICE, audit, call, make_network, run_cli
from test_nova_api import clouds, uid, vm_port  # noqa: F401 - the fixture, and helpers
from testkit.neutron_server import NeutronServer
from testkit.nova_server import NovaServer

from vifdoctor.demo.builder import utcnow
from vifdoctor.demo.nova import InstanceSpec, MigrationSpec, write_migrations
from vifdoctor.sources import neutron_api as neutron_api_source

pytestmark = [pytest.mark.mariadb, pytest.mark.nova_real]


def nova_get(nova: NovaServer, path: str) -> dict:
    req = urllib.request.Request(
        f"{nova.url}/v2.1{path}", headers={"OpenStack-API-Version": "compute 2.80"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def keyed(doc: dict) -> set[tuple[str, str, str]]:
    return {
        (f["code"], f["device_id"], f["port_id"])
        for f in doc["findings"]
        if f["code"] in ("VD109", "VD202", "VD206", "VD207", "VD208")
    }


def test_api_mode_judges_moves_from_os_migrations(
    clouds: tuple[NeutronServer, NovaServer],  # noqa: F811 - the fixture
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    neutron, nova = clouds
    net = make_network(neutron)
    failed, running, waiting = uid(21), uid(22), uid(23)
    ports = {
        u: vm_port(neutron, net, HYBRID if u != waiting else NATIVE, u)
        for u in (failed, running, waiting)
    }
    for u in (failed, running):  # Nova's pre-live-migration binding on the destination
        call(neutron, "POST", f"/ports/{ports[u]}/bindings", {"binding": {"host": NATIVE}}, SERVICE)
    # the resize finished on NATIVE: its source binding on HYBRID stays for a revert
    call(
        neutron, "POST", f"/ports/{ports[waiting]}/bindings", {"binding": {"host": HYBRID}}, SERVICE
    )
    nova.add_servers(
        [
            InstanceSpec(uuid=failed, host=HYBRID),
            InstanceSpec(uuid=running, host=HYBRID, task_state="migrating"),
            InstanceSpec(uuid=waiting, host=NATIVE, vm_state="resized"),
        ]
    )
    write_migrations(
        nova.cell_engine,
        [
            MigrationSpec(
                failed, HYBRID, NATIVE, "failed", uuid="f0000000-0000-4000-8000-000000000021"
            ),
            MigrationSpec(
                running,
                HYBRID,
                NATIVE,
                "running",
                uuid="f0000000-0000-4000-8000-000000000022",
                created_at=utcnow() - timedelta(hours=8),
            ),
            MigrationSpec(
                waiting,
                HYBRID,
                NATIVE,
                "finished",
                migration_type="resize",
                old_flavor=1,
                new_flavor=2,
                uuid="f0000000-0000-4000-8000-000000000023",
                created_at=utcnow() - timedelta(days=2),
            ),
        ],
    )
    neutron.refresh_agents()

    # why not the server's own migrations: its allow-list hides the finished resize
    assert nova_get(nova, f"/servers/{waiting}/migrations")["migrations"] == []
    listed = {
        m["instance_uuid"]: m["status"] for m in nova_get(nova, "/os-migrations")["migrations"]
    }
    assert listed[waiting] == "finished"

    expected = {("VD206", failed, ports[failed]), ("VD208", running, "")}
    _, db_doc = audit("--neutron-db", neutron.db_url, "--nova-db", nova.cell_url)
    _, api_doc = audit("--os-cloud", "vdtest")
    assert keyed(db_doc) == expected
    assert keyed(api_doc) == expected
    vd206 = next(f for f in api_doc["findings"] if f["code"] == "VD206")
    assert vd206["extra"]["migration"]["uuid"] == "f0000000-0000-4000-8000-000000000021"
    assert not any("task_state only" in a or "were not read" in a for a in api_doc["assumptions"])

    # the repair through the API: DELETE /ports/{id}/bindings/{host}, after Nova's check.
    # Neutron's policy gives the bindings API to the service role only: an admin without
    # it gets one clear line, and nothing is deleted.
    argv = (
        "repair",
        "--os-cloud",
        "vdtest",
        "--code",
        "VD206",
        "--apply",
        "--backup-dir",
        str(tmp_path),
        "-f",
        "json",
    )
    code, out, err = run_cli(*argv)
    assert code == 3 and "wants the service role" in err
    assert (
        len(call(neutron, "GET", f"/ports/{ports[failed]}/bindings", None, SERVICE)["bindings"])
        == 2
    )
    # an account with the service role, as Nova's (noauth: the X-Roles header)
    real_connect = neutron_api_source.connect_cloud

    def with_service_role(cloud):
        conn = real_connect(cloud)
        conn.session.additional_headers.update(SERVICE)
        return conn

    monkeypatch.setattr(neutron_api_source, "connect_cloud", with_service_role)
    code, out, err = run_cli(*argv)
    assert code == 0, err
    rep = json.loads(out)
    assert rep["outcome"]["deleted"] == 1 and rep["outcome"]["nova_rechecks"] == 1, rep["outcome"]
    statuses = {
        p: {
            b["host"]: b["status"]
            for b in call(neutron, "GET", f"/ports/{p}/bindings", None, SERVICE)["bindings"]
        }
        for p in ports.values()
    }
    assert statuses[ports[failed]] == {HYBRID: "ACTIVE"}
    assert statuses[ports[running]] == {HYBRID: "ACTIVE", NATIVE: "INACTIVE"}
    assert statuses[ports[waiting]] == {NATIVE: "ACTIVE", HYBRID: "INACTIVE"}
