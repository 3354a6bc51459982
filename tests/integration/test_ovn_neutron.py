"""End to end: the real neutron 29.0.0 API with ``mechanism_drivers = ovn`` binds ports,
the real OVN driver writes their details and LSPs into a private NB/SB with a real
ovn-northd; the drift is then made as it happens in the field, and each VD4xx code
is asserted on the port it concerns. A clean cloud gives no OVN finding.
"""

from __future__ import annotations

import io
import json
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from vifdoctor.cmd.main import main

if TYPE_CHECKING:
    from testkit.ovn_neutron import OvnNeutronServer

pytest_plugins = ["testkit.ovnlab"]

CH = {"cmp1": "ch-cmp1", "cmp2": "ch-cmp2", "cmp3": "ch-cmp3", "cmp4": "ch-cmp4"}
OVN_DETAILS = {
    "port_filter": True,
    "connectivity": "l2",
    "ovs_create_tap": True,
    "bridge_name": "br-int",
    "datapath_type": "system",
}


@pytest.fixture
def ovn_cloud(
    ovn_lab, neutron29_mariadb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OvnNeutronServer]:
    from testkit.ovn_neutron import running_ovn_server

    for host, name in CH.items():
        ovn_lab.add_chassis(
            name,
            host,
            other_config={
                "ovn-bridge-mappings": "physnet1:br-ex",
                "datapath-type": "system",
                "iface-types": "geneve,internal,system",
            },
        )
    monkeypatch.delenv("VIFDOCTOR_NEUTRON_DB", raising=False)
    with running_ovn_server(neutron29_mariadb_url, tmp_path, ovn_lab) as server:
        yield server


def call(server: OvnNeutronServer, method: str, path: str, body: dict | None = None) -> Any:
    """A raw API call, as admin with the service role (binding:profile wants it)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{server.url}/v2.0{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "X-Roles": "admin,service"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read()
    return json.loads(text) if text else None


def network(server: OvnNeutronServer, **provider: str) -> str:
    body = {"name": "vd", **provider}
    net = call(server, "POST", "/networks", {"network": body})["network"]
    call(
        server,
        "POST",
        "/subnets",
        {
            "subnet": {
                "network_id": net["id"],
                "cidr": "10.9.0.0/24",
                "ip_version": 4,
                "enable_dhcp": False,
            }
        },
    )
    return net["id"]


def vm_port(server: OvnNeutronServer, net: str, host: str) -> dict:
    body = {
        "network_id": net,
        "device_owner": "compute:nova",
        "device_id": str(uuid.uuid4()),
        "binding:host_id": host,
    }
    return call(server, "POST", "/ports", {"port": body})["port"]


def plug(server: OvnNeutronServer, port: dict, host: str) -> None:
    """What ovn-controller does when the VM's interface appears: claim, then up; neutron
    turns the port ACTIVE from the LSP's up event."""
    server.lab.claim(port["id"], CH[host], up=True)
    wait_status(server, port["id"], "ACTIVE")


def wait_status(server: OvnNeutronServer, port_id: str, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (now := call(server, "GET", f"/ports/{port_id}")["port"]["status"]) != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"port {port_id} stays {now}, not {status}")
        time.sleep(0.2)


def audit(server: OvnNeutronServer, *extra: str) -> tuple[int, dict]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(
            [
                "audit",
                "--neutron-db",
                server.db_url,
                "--neutron-config-file",
                str(server.conf),
                "-f",
                "json",
                *extra,
            ]
        )
    assert code in (0, 1, 2), err.getvalue()
    return code, json.loads(out.getvalue())


def ovn_codes(doc: dict) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in doc["findings"]:
        if f["code"].startswith("VD4"):
            found.setdefault(f["port_id"], set()).add(f["code"])
    return found


def test_a_clean_ovn_cloud_gives_no_ovn_finding(ovn_cloud: OvnNeutronServer) -> None:
    net = network(ovn_cloud)
    ports = [vm_port(ovn_cloud, net, h) for h in ("cmp1", "cmp2")]
    for p, h in zip(ports, ("cmp1", "cmp2"), strict=True):
        assert p["binding:vif_type"] == "ovs"
        shown = {k: v for k, v in p["binding:vif_details"].items() if k != "bound_drivers"}
        assert shown == OVN_DETAILS  # what the real driver writes (the API adds bound_drivers)
        plug(ovn_cloud, p, h)
    lsp = ovn_cloud.lab.nbctl(
        "get", "Logical_Switch_Port", ports[0]["id"], "options:requested-chassis"
    )
    assert lsp.strip('"') == "cmp1"
    code, doc = audit(ovn_cloud)
    assert ovn_codes(doc) == {}, doc["findings"]
    assert doc["summary"]["judged"] == 2 and not any(
        "ovn" in k.lower() for k in doc["summary"]["skipped"]
    )
    assert doc["ovn"]["migration"]["summary"] == "2 of 2 VM ports fully on OVN"
    assert code == 0


def sql(server: OvnNeutronServer, statement: str, **params: Any) -> None:
    server.sql(statement, **params)


def drift_details(server: OvnNeutronServer, port_id: str, **changes: Any) -> None:
    """Edit the stored details by SQL, as a migration or a hand edit does."""
    (row,) = server.sql(
        "SELECT vif_details FROM ml2_port_bindings WHERE port_id = :p AND status = 'ACTIVE'",
        p=port_id,
    )
    details = {**json.loads(row[0]), **changes}
    server.sql(
        "UPDATE ml2_port_bindings SET vif_details = :d WHERE port_id = :p AND status = 'ACTIVE'",
        d=json.dumps(details),
        p=port_id,
    )


def test_field_drift_gives_each_code(
    ovn_cloud: OvnNeutronServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = ovn_cloud.lab
    net = network(ovn_cloud)
    vlan = network(
        ovn_cloud,
        **{
            "provider:network_type": "vlan",
            "provider:physical_network": "physnet1",
            "provider:segmentation_id": "150",
        },
    )
    where = {
        "deleted": "cmp1",
        "requested": "cmp1",
        "dead": "cmp3",
        "renamed": "cmp4",
        "moved": "cmp1",
        "status": "cmp2",
        "bridge": "cmp1",
        "hybrid": "cmp1",
        "vlan": "cmp2",
        "good": "cmp2",
        "migrating": "cmp1",
        "gone": "cmp2",
    }
    ports = {
        name: vm_port(ovn_cloud, vlan if name == "vlan" else net, host)
        for name, host in where.items()
    }
    for name, port in ports.items():
        assert port["binding:vif_type"] == "ovs", (name, port)
        plug(ovn_cloud, port, where[name])
    pid = {name: port["id"] for name, port in ports.items()}
    code, doc = audit(ovn_cloud)
    assert ovn_codes(doc) == {}, doc["findings"]

    # A live migration under way (Nova sets migrating_to; the driver writes "src,dst"),
    # with the destination's claim as additional_chassis: no finding.
    call(
        ovn_cloud,
        "PUT",
        f"/ports/{pid['migrating']}",
        {"port": {"binding:profile": {"migrating_to": "cmp2"}}},
    )
    requested = lab.nbctl(
        "get", "Logical_Switch_Port", pid["migrating"], "options:requested-chassis"
    ).strip('"')
    assert requested == "cmp1,cmp2"
    lab.claim(pid["migrating"], CH["cmp1"], additional=[CH["cmp2"]])

    lab.nbctl("lsp-del", pid["deleted"])  # VD406
    lab.nbctl(
        "set", "Logical_Switch_Port", pid["requested"], "options:requested-chassis=cmp2"
    )  # VD408
    lab.set_alive(CH["cmp3"], False)  # VD402
    lab.sbctl("set", "Chassis", CH["cmp4"], "hostname=cmp4.example.org")  # VD401
    lab.claim(pid["moved"], CH["cmp2"])  # VD409
    sql(ovn_cloud, "UPDATE ports SET status = 'DOWN' WHERE id = :p", p=pid["status"])  # VD410
    drift_details(ovn_cloud, pid["bridge"], bridge_name="br-old")  # VD404
    drift_details(ovn_cloud, pid["hybrid"], ovs_hybrid_plug=True)  # VD405
    lab.set_chassis_config(CH["cmp2"], {"ovn-bridge-mappings": "physnet9:br-ex"})  # VD403
    lab.nbctl("lsp-add", f"neutron-{net}", "made-by-hand")  # VD407
    sql(ovn_cloud, "DELETE FROM ports WHERE id = :p", p=pid["gone"])  # VD407

    code, doc = audit(ovn_cloud)
    found = ovn_codes(doc)
    assert found.pop(pid["deleted"]) == {"VD406"}
    assert found.pop(pid["requested"]) == {"VD408"}
    assert found.pop(pid["dead"]) == {"VD402"}
    # Renamed: no chassis has the host's name; the old chassis still claims the port.
    assert found.pop(pid["renamed"]) == {"VD401", "VD409"}
    assert found.pop(pid["moved"]) == {"VD409"}
    assert found.pop(pid["status"]) == {"VD410"}
    assert found.pop(pid["bridge"]) == {"VD404"}
    assert found.pop(pid["hybrid"]) == {"VD405"}
    assert found.pop(pid["vlan"]) == {"VD403"}
    assert found.pop("made-by-hand") == {"VD407"}
    assert found.pop(pid["gone"]) == {"VD407"}
    assert found == {}, found  # the migrating port and the good one: nothing
    by = {(f["code"], f["port_id"]): f for f in doc["findings"]}
    f401 = by[("VD401", pid["renamed"])]
    assert "cmp4.example.org (renamed host?)" in f401["message"]
    assert f401["extra"]["instance"] == ports["renamed"]["device_id"]
    assert by[("VD402", pid["dead"])]["extra"]["chassis"] == CH["cmp3"]
    assert by[("VD409", pid["moved"])]["extra"]["claimed_by"] == CH["cmp2"]
    hand = by[("VD407", "made-by-hand")]
    assert "ovn-nbctl lsp-del made-by-hand" in hand["remedy"]
    gone = by[("VD407", pid["gone"])]
    assert "--ovn-neutron_sync_mode repair" in gone["remedy"]
    assert f"--config-file {ovn_cloud.conf}" in by[("VD406", pid["deleted"])]["remedy"]
    assert by[("VD404", pid["bridge"])]["correction"]["set"]["bridge_name"] == "br-int"
    assert by[("VD405", pid["hybrid"])]["correction"]["remove"] == ["ovs_hybrid_plug"]
    assert code == 2
    assert doc["ovn"]["migration"]["hosts"]["cmp1"]["hybrid-plugged"] == 1

    # API mode, no NB/SB: the agents neutron synthesizes (GET /v2.0/agents) give
    # VD401-VD403; the rest needs the databases.
    # neutron's agent cache follows SB events, late on a loaded machine (once, in a full
    # suite run, later than 60 s): VD402 is asserted when the API itself says dead.
    deadline = time.monotonic() + 60
    while (
        cmp3_alive := any(
            a["alive"] for a in call(ovn_cloud, "GET", "/agents")["agents"] if a["host"] == "cmp3"
        )
    ) and time.monotonic() < deadline:
        time.sleep(0.5)
    for key in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(ovn_cloud.clouds_yaml))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["audit", "--os-cloud", "vdtest", "--no-nova-api", "-f", "json"])
    assert rc == 2, err.getvalue()
    api_doc = json.loads(out.getvalue())
    expected = {pid["renamed"]: {"VD401"}, pid["vlan"]: {"VD403"}}
    if not cmp3_alive:
        expected[pid["dead"]] = {"VD402"}
    assert ovn_codes(api_doc) == expected
    assert api_doc["ovn"]["source"]["from"] == "GET /v2.0/agents"

    # The repair rewrites VD404/VD405 rows as the driver writes them for the chassis,
    # backed up and guarded like VD101's; nothing else is touched.
    before = dict(ovn_cloud.sql("SELECT port_id, vif_details FROM ml2_port_bindings"))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(
            [
                "repair",
                "--neutron-db",
                ovn_cloud.db_url,
                "--neutron-config-file",
                str(ovn_cloud.conf),
                "--code",
                "VD404",
                "--code",
                "VD405",
                "--apply",
                "--backup-dir",
                str(tmp_path / "backup"),
                "-f",
                "json",
            ]
        )
    assert rc in (0, 1, 2), err.getvalue()
    after = dict(ovn_cloud.sql("SELECT port_id, vif_details FROM ml2_port_bindings"))
    changed = {p for p in after if after[p] != before[p]}
    assert changed == {pid["bridge"], pid["hybrid"]}
    for name in ("bridge", "hybrid"):
        assert json.loads(after[pid[name]]) == OVN_DETAILS
    assert list((tmp_path / "backup").glob("repair-*.json"))
    code, doc = audit(ovn_cloud)
    assert pid["bridge"] not in ovn_codes(doc) and pid["hybrid"] not in ovn_codes(doc)

    # What neutron's own tools fix. neutron-ovn-db-sync-util in repair mode recreates
    # the missing LSP (down until a chassis claims it) and deletes the orphan that has
    # neutron:port_name; the rest of the drift stays for vifdoctor alone to see.
    ovn_cloud.sync_util("repair")
    code, doc = audit(ovn_cloud)
    found = ovn_codes(doc)
    assert "VD406" not in found.get(pid["deleted"], set())
    assert pid["gone"] not in found
    assert found["made-by-hand"] == {"VD407"}
    assert found[pid["requested"]] == {"VD408"}
    assert found[pid["moved"]] == {"VD409"}
    assert found[pid["dead"]] == {"VD402"}
    assert "VD401" in found[pid["renamed"]]
    assert found[pid["status"]] == {"VD410"}
    # A restart of the API resets port status from the LSPs (VD410 goes); nothing else.
    ovn_cloud.stop()
    ovn_cloud.start()
    deadline = time.monotonic() + 60
    while True:
        # The live chassis answer the nb_cfg rounds neutron's restart starts, as their
        # ovn-controller would (else they fall behind and are rightly dead: VD402).
        ovn_cloud.lab.bump_nb_cfg()
        found = ovn_codes(audit(ovn_cloud)[1])
        if "VD410" not in found.get(pid["status"], set()):
            break
        assert time.monotonic() < deadline, found[pid["status"]]
        time.sleep(0.5)
    assert pid["status"] not in found
    assert found[pid["requested"]] == {"VD408"} and found[pid["moved"]] == {"VD409"}
