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
    """The audit, after a round of nb_cfg that the live chassis answer as their
    ovn-controller would: on a loaded machine their last report otherwise ages past
    agent_down_time (75 s) within one test, and every chassis is rightly dead (VD402)."""
    server.lab.bump_nb_cfg()
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


def run(lab: Any, *argv: str) -> tuple[int, str, str]:
    """The CLI, in process, after a round of nb_cfg that the live chassis answer as their
    ovn-controller would (on a slow machine they would otherwise age past agent_down_time)."""
    lab.bump_nb_cfg()
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


VHOSTUSER_DETAILS = {  # what the driver writes on a DPDK chassis (the chassis changed since)
    "port_filter": False,
    "vhostuser_mode": "server",
    "vhostuser_ovs_plug": True,
    "connectivity": "l2",
    "bridge_name": "br-int",
    "datapath_type": "netdev",
}


def test_remediation_and_api_rebind_of_ovn_drift(
    ovn_cloud: OvnNeutronServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drift as it happens; `remediation` says per instance what fixes it, and the
    re-bind it prints (`repair --os-cloud`) has the real OVN driver rewrite the details
    and the LSP, so that a re-audit finds nothing on those ports."""
    import shlex

    import sqlalchemy as sa

    from vifdoctor.demo.nova import InstanceSpec, create_nova_schema, write_instances

    lab = ovn_cloud.lab
    net = network(ovn_cloud)
    where = {
        "bridge": "cmp1",
        "hybrid": "cmp1",
        "dpdk": "cmp2",
        "requested": "cmp2",
        "moved": "cmp1",
        "deleted": "cmp2",
        "migrating": "cmp1",
        "good": "cmp2",
    }
    ports = {name: vm_port(ovn_cloud, net, host) for name, host in where.items()}
    for name, port in ports.items():
        plug(ovn_cloud, port, where[name])
    pid = {name: port["id"] for name, port in ports.items()}
    call(
        ovn_cloud,
        "PUT",
        f"/ports/{pid['migrating']}",
        {"port": {"binding:profile": {"migrating_to": "cmp2"}}},
    )
    lab.claim(pid["migrating"], CH["cmp1"], additional=[CH["cmp2"]])
    drift_details(ovn_cloud, pid["bridge"], bridge_name="br-old")  # VD404
    drift_details(ovn_cloud, pid["hybrid"], ovs_hybrid_plug=True)  # VD405
    drift_details(ovn_cloud, pid["migrating"], ovs_hybrid_plug=True)  # VD405, migrating
    sql(  # VD404: a vhostuser binding left from when cmp2 ran DPDK
        ovn_cloud,
        "UPDATE ml2_port_bindings SET vif_type = 'vhostuser', vif_details = :d "
        "WHERE port_id = :p AND status = 'ACTIVE'",
        d=json.dumps(VHOSTUSER_DETAILS),
        p=pid["dpdk"],
    )
    lab.nbctl(
        "set", "Logical_Switch_Port", pid["requested"], "options:requested-chassis=cmp1"
    )  # VD408
    lab.claim(pid["moved"], CH["cmp2"], up=True)  # VD409
    lab.nbctl("lsp-del", pid["deleted"])  # VD406
    code, doc = audit(ovn_cloud)
    drift = {
        pid["bridge"]: {"VD404"},
        pid["hybrid"]: {"VD405"},
        pid["dpdk"]: {"VD404"},
        pid["requested"]: {"VD408"},
        pid["moved"]: {"VD409"},
        pid["deleted"]: {"VD406"},
        pid["migrating"]: {"VD405"},
    }
    assert ovn_codes(doc) == drift, doc["findings"]

    nova = f"sqlite:///{tmp_path / 'nova.sqlite'}"
    engine = sa.create_engine(nova)
    create_nova_schema(engine)
    write_instances(
        engine, [InstanceSpec(uuid=p["device_id"], host=where[n]) for n, p in ports.items()]
    )
    engine.dispose()
    ovn_flags = ["--ovn-nb-connection", lab.nb, "--ovn-sb-connection", lab.sb]

    # 1. `remediation` on the database path: per instance, the OVN steps.
    rc, out, err = run(
        lab,
        "remediation",
        "--neutron-db",
        ovn_cloud.db_url,
        "--neutron-config-file",
        str(ovn_cloud.conf),
        "--nova-db",
        nova,
        "-f",
        "json",
    )
    assert rc == 0, err
    steps: dict[str, list[dict]] = {}
    for s in json.loads(out)["steps"]:
        steps.setdefault(s["instance"], []).append(s)
    vm = {name: port["device_id"] for name, port in ports.items()}

    def actions(name: str) -> dict[str, str]:
        return {s["action"]: s["command"] for s in steps.get(vm[name], [])}

    # (Nova's own steps come too: these instances have no cache row, so refresh-network)
    assert (
        actions("bridge").items()
        >= {
            "rewrite-ovn-details": f"vifdoctor repair --code VD404 --port {pid['bridge']} --apply",
            "hard-reboot": f"openstack server reboot --hard {vm['bridge']}",
        }.items()
    )
    assert actions("hybrid")["rewrite-ovn-details"] == (
        f"vifdoctor repair --code VD405 --port {pid['hybrid']} --apply"
    )
    assert "hard-reboot" in actions("hybrid")
    # a vif_type no database rewrite changes, and requested-chassis: a re-bind through
    # the API, named in the reason (no cloud is known on the database path)
    for name, code_ in (("dpdk", "VD404"), ("requested", "VD408")):
        (rebind,) = [s for s in steps[vm[name]] if s["action"] == "rebind-ovn"]
        assert rebind["command"] == ""
        assert (
            f"vifdoctor repair --os-cloud CLOUD --code {code_} --port {pid[name]}"
            in (rebind["reason"])
        )
    assert actions("moved")["release-claim"] == (
        f"ovs-vsctl --columns=name find Interface external_ids:iface-id={pid['moved']}"
    )
    assert "hard-reboot" in actions("moved")
    assert actions("deleted")["ovn-db-sync"] == (
        f"neutron-ovn-db-sync-util --config-file {ovn_cloud.conf} --ovn-neutron_sync_mode repair"
    )
    assert {s["action"] for s in steps[vm["good"]]} == {"refresh-network"}  # Nova's only
    (wait,) = [s for s in steps[vm["migrating"]] if s["action"] == "wait-migration"]
    assert "live migration to cmp2" in wait["reason"] and not wait["command"]
    assert not {"rewrite-ovn-details", "rebind-ovn"} & set(actions("migrating"))
    ovn_actions = {"rewrite-ovn-details", "rebind-ovn", "release-claim", "ovn-db-sync"}
    for instance_steps in steps.values():
        for s in instance_steps:
            if s["action"] in ovn_actions and s["command"]:
                assert shlex.join(shlex.split(s["command"])) == s["command"]  # quoted

    # 2. API mode: the same, with the re-bind through Neutron as the command.
    for key in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(ovn_cloud.clouds_yaml))
    rc, out, err = run(
        lab, "remediation", "--os-cloud", "vdtest", "--nova-db", nova, *ovn_flags, "-f", "json"
    )
    assert rc == 0, err
    api_steps = [s for s in json.loads(out)["steps"] if s["action"] == "rebind-ovn"]
    rebinds = {s["instance"]: s["command"] for s in api_steps}
    assert rebinds == {
        vm["bridge"]: f"vifdoctor repair --os-cloud vdtest --code VD404 --port {pid['bridge']} "
        "--apply",
        vm["hybrid"]: f"vifdoctor repair --os-cloud vdtest --code VD405 --port {pid['hybrid']} "
        "--apply",
        vm["dpdk"]: f"vifdoctor repair --os-cloud vdtest --code VD404 --port {pid['dpdk']} --apply",
        vm["requested"]: f"vifdoctor repair --os-cloud vdtest --code VD408 "
        f"--port {pid['requested']} --apply",
    }

    # 3. `repair --os-cloud` selects the VD404/VD405/VD408 ports; without NB/SB it cannot.
    rc, out, err = run(lab, "repair", "--os-cloud", "vdtest", "--code", "VD404", "--no-nova-api")
    assert rc == 3 and "--ovn-nb-connection" in err and len(err.strip().splitlines()) == 1
    before = dict(ovn_cloud.sql("SELECT port_id, vif_details FROM ml2_port_bindings"))
    rebind = ["--code", "VD404", "--code", "VD405", "--code", "VD408"]
    rc, out, err = run(
        lab, "repair", "--os-cloud", "vdtest", "--no-nova-api", *rebind, *ovn_flags, "-f", "json"
    )
    assert rc == 0, err
    dry = json.loads(out)
    selected_names = ("bridge", "hybrid", "dpdk", "requested")
    selected = {pid[n] for n in selected_names}
    assert {c["port_id"] for c in dry["changes"]} == selected
    assert [s["port_id"] for s in dry["skipped_moving"]] == [pid["migrating"]]
    assert dict(ovn_cloud.sql("SELECT port_id, vif_details FROM ml2_port_bindings")) == before

    # 4. The commands remediation printed, with the audit's OVN options (noauth has no
    # service role, so the host method): the real OVN driver re-binds each port and
    # rewrites its details and LSP. Each run reports its port.
    results = {}
    for printed in rebinds.values():
        rc, out, err = run(
            lab,
            *shlex.split(printed)[1:],
            *ovn_flags,
            "--no-nova-api",
            "--rebind-method",
            "host",
            "--backup-dir",
            str(tmp_path / "bk"),
            "-f",
            "json",
        )
        assert rc == 0, (printed, out, err)
        results.update({r["port_id"]: r for r in json.loads(out)["ports"]})
    assert set(results) == selected
    assert {r["result"] for r in results.values()} == {"rebound"}, results
    assert list((tmp_path / "bk").glob("api-repair-*.json"))
    rows = {
        p: (t, json.loads(d))
        for p, t, d in ovn_cloud.sql(
            "SELECT port_id, vif_type, vif_details FROM ml2_port_bindings WHERE status = 'ACTIVE'"
        )
    }
    for name in ("bridge", "hybrid", "dpdk", "requested"):
        assert rows[pid[name]] == ("ovs", OVN_DETAILS), name
    assert rows[pid["migrating"]][1]["ovs_hybrid_plug"] is True  # never a migrating port
    requested = lab.nbctl(
        "get", "Logical_Switch_Port", pid["requested"], "options:requested-chassis"
    )
    assert requested.strip('"') == "cmp2"
    levels = dict(
        ovn_cloud.sql(
            "SELECT port_id, driver FROM ml2_port_binding_levels WHERE port_id = :p",
            p=pid["dpdk"],
        )
    )
    assert levels == {pid["dpdk"]: "ovn"}
    code, doc = audit(ovn_cloud, *ovn_flags)
    left = ovn_codes(doc)
    for name in ("bridge", "hybrid", "dpdk", "requested"):
        assert not left.get(pid[name], set()) & {"VD404", "VD405", "VD408"}, (name, left)
    assert left[pid["migrating"]] == {"VD405"}
    # What the re-bind leaves, as neutron 29.0.0 does it: the port DOWN until the VM is
    # plugged again (Nova's hard reboot): ovn-controller releases and claims, neutron
    # sets it ACTIVE from the LSP's up event. Then nothing is left on those ports.
    statuses = {
        n: call(ovn_cloud, "GET", f"/ports/{pid[n]}")["port"]["status"] for n in selected_names
    }
    assert set(statuses.values()) == {"DOWN"}, statuses
    for name in ("bridge", "hybrid", "dpdk", "requested"):
        lab.claim(pid[name], None, up=False)
        lab.wait_lsp_up(pid[name], False)
        plug(ovn_cloud, ports[name], where[name])
    code, doc = audit(ovn_cloud, *ovn_flags)
    left = ovn_codes(doc)
    assert left == {
        pid["moved"]: {"VD409"},
        pid["deleted"]: {"VD406"},
        pid["migrating"]: {"VD405"},
    }, left
