"""An ML2/OVS -> ML2/OVN migration, verified: the operator's one audit after the real
``neutron-ovn-db-sync-util --ovn-neutron_sync_mode migrate``.

The cloud is built by the real neutron 29.0.0 API with the openvswitch driver
(iptables_hybrid agents, so its VMs are hybrid-plugged), then the OVS agents stop,
ovn-controllers register their chassis, and the real sync util creates the NB
objects and runs ``migrate_neutron_database_to_ovn``. The audit must say, per host,
what is left of ML2/OVS, and "N of M VM ports fully on OVN"; a port re-bound by the
OVN driver is then fully on OVN.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vifdoctor.cmd.main import main

if TYPE_CHECKING:
    from vifdoctor.demo.ovnlab import OvnLab

pytest_plugins = ["testkit.ovnlab"]

HOSTS = {"cmp1": "ch-cmp1", "cmp2": "ch-cmp2"}


def _call(url: str, method: str, path: str, body: dict | None = None) -> Any:
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{url}/v2.0{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "X-Roles": "admin,service"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None
    return json.loads(text) if text else None


def _wait_status(url: str, port_id: str, status: str) -> None:
    """Until neutron says the port has ``status`` (it sets it from the LSP's up events)."""
    deadline = time.monotonic() + 30
    while (now := _call(url, "GET", f"/ports/{port_id}")["port"]["status"]) != status:
        assert time.monotonic() < deadline, f"port {port_id} still {now}, never {status}"
        time.sleep(0.2)


def _evidence(server: Any, port_id: str) -> str:
    """What the database and the server's log say about a port (for a failure's message)."""
    ports = server.sql(
        "SELECT p.status, s.revision_number FROM ports p "
        "JOIN standardattributes s ON s.id = p.standard_attr_id WHERE p.id = :p",
        p=port_id,
    )
    bindings = server.sql(
        "SELECT host, status, vif_type FROM ml2_port_bindings WHERE port_id = :p", p=port_id
    )
    log = server.log.read_text(errors="replace").splitlines()
    marked = [line for line in log if any(w in line for w in ("ERROR", "NotFound", " 404"))]
    listening = [line for line in log if "Listening at" in line]
    return (
        f"ports {ports!r}; bindings {bindings!r}; server {listening!r} (pid "
        f"{server.proc.pid if server.proc else None}); log {marked[-8:]!r}"
    )


def _audit(db_url: str, conf: Path) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(
            ["audit", "--neutron-db", db_url, "--neutron-config-file", str(conf), "-f", "json"]
        )
    assert code in (0, 1, 2), err.getvalue()
    with redirect_stdout(table := io.StringIO()), redirect_stderr(io.StringIO()):
        main(["audit", "--neutron-db", db_url, "--neutron-config-file", str(conf)])
    return code, json.loads(out.getvalue()), table.getvalue()


def test_after_the_real_migration_the_audit_says_what_is_left(
    ovn_lab: OvnLab, neutron29_mariadb_url: str, tmp_path: Path
) -> None:
    from testkit.neutron_server import ovs_agent_configurations, running_server
    from testkit.ovn_neutron import OvnNeutronServer, running_ovn_server

    # 1. ML2/OVS: the real API binds hybrid ports on iptables_hybrid agents.
    ovs_dir = tmp_path / "ovs"
    ovs_dir.mkdir()
    ports: dict[str, dict] = {}
    with running_server(neutron29_mariadb_url, ovs_dir) as ovs:
        for host in HOSTS:
            ovs.add_agent(host, ovs_agent_configurations(True))
        net = _call(ovs.url, "POST", "/networks", {"network": {"name": "old"}})["network"]
        _call(
            ovs.url,
            "POST",
            "/subnets",
            {"subnet": {"network_id": net["id"], "cidr": "10.8.0.0/24", "ip_version": 4}},
        )
        for host in HOSTS:
            ports[host] = _call(
                ovs.url,
                "POST",
                "/ports",
                {
                    "port": {
                        "network_id": net["id"],
                        "device_owner": "compute:nova",
                        "device_id": str(uuid.uuid4()),
                        "binding:host_id": host,
                    }
                },
            )["port"]
            assert ports[host]["binding:vif_details"]["ovs_hybrid_plug"] is True
        # 2. The OVS agents stop for good.
        ovs.sql("UPDATE agents SET heartbeat_timestamp = UTC_TIMESTAMP() - INTERVAL 1 HOUR")
    for host, chassis in HOSTS.items():
        ovn_lab.add_chassis(chassis, host)

    # 3. The real migration: NB objects created from Neutron, then the DB rewritten.
    ovn_dir = tmp_path / "ovn"
    ovn_dir.mkdir()
    server = OvnNeutronServer(neutron29_mariadb_url, ovn_dir, ovn_lab)
    server.sync_util("migrate")
    for host, port in ports.items():
        ovn_lab.claim(port["id"], HOSTS[host], up=True)
    stored = {
        p: json.loads(d)
        for p, d in server.sql("SELECT port_id, vif_details FROM ml2_port_bindings")
    }
    for port in ports.values():  # what today's db_migration leaves: br-int, hybrid kept
        assert stored[port["id"]]["bridge_name"] == "br-int"
        assert stored[port["id"]]["ovs_hybrid_plug"] is True
    # Releases 18.1-18.3, 19.0-19.2 and 20.0 deleted these keys instead (domain.md 8).
    old = {
        k: v
        for k, v in stored[ports["cmp2"]["id"]].items()
        if k not in ("bridge_name", "connectivity", "ovs_hybrid_plug")
    }
    server.sql(
        "UPDATE ml2_port_bindings SET vif_details = :d WHERE port_id = :p",
        d=json.dumps(old),
        p=ports["cmp2"]["id"],
    )

    code, doc, table = _audit(neutron29_mariadb_url, server.write_conf())
    hosts = doc["ovn"]["migration"]["hosts"]
    assert hosts["cmp1"]["hybrid-plugged"] == 1 and hosts["cmp1"]["no bridge_name"] == 0
    assert hosts["cmp2"]["hybrid-plugged"] == 0 and hosts["cmp2"]["no bridge_name"] == 1
    for host in HOSTS:
        assert hosts[host]["levels name openvswitch"] == 1
        assert hosts[host]["dead Open vSwitch agents"] == 1
    assert doc["ovn"]["migration"]["summary"] == "0 of 2 VM ports fully on OVN"
    assert "0 of 2 VM ports fully on OVN" in table and "ML2/OVS left on cmp1" in table
    codes = {(f["code"], f["port_id"]) for f in doc["findings"]}
    assert ("VD405", ports["cmp1"]["id"]) in codes  # hybrid plug kept by the migration
    assert not any(c.startswith("VD10") for c, _ in codes)  # no OVS-agent verdicts

    # 4. The OVN driver re-binds one port: it is then fully on OVN.
    with running_ovn_server(neutron29_mariadb_url, ovn_dir, ovn_lab) as ovn:
        pid = ports["cmp1"]["id"]
        # Started means neutron lists a port (OvnNeutronServer.wait_policy_loaded): until
        # its policy rules are loaded it answers this PUT 404 (docs/ovn.md).
        try:
            _call(ovn.url, "PUT", f"/ports/{pid}", {"port": {"binding:host_id": ""}})
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {_evidence(ovn, pid)}") from None
        port = _call(ovn.url, "PUT", f"/ports/{pid}", {"port": {"binding:host_id": "cmp1"}})
        assert "bindings [('cmp1', 'ACTIVE', 'ovs')]" in _evidence(ovn, pid)  # it can tell
        assert "ovs_hybrid_plug" not in port["port"]["binding:vif_details"]
        # The VM is re-plugged (hard reboot): ovn-controller releases and claims again,
        # and neutron turns the port ACTIVE from the LSP's up event.
        # Each step waits for neutron: an ACTIVE read before it saw the release is stale.
        ovn_lab.claim(pid, None, up=False)
        ovn_lab.wait_lsp_up(pid, False)
        _wait_status(ovn.url, pid, "DOWN")
        ovn_lab.claim(pid, HOSTS["cmp1"], up=True)
        _wait_status(ovn.url, pid, "ACTIVE")
        # The audit counts only ACTIVE VM ports: the other one's start-up event must be in.
        _wait_status(ovn.url, ports["cmp2"]["id"], "ACTIVE")
    code, doc, table = _audit(neutron29_mariadb_url, server.write_conf())
    left = [f for f in doc["findings"] if f["port_id"] == ports["cmp1"]["id"]]
    assert doc["ovn"]["migration"]["summary"] == "1 of 2 VM ports fully on OVN", (
        left,
        doc["ovn"]["migration"],
    )
    assert doc["ovn"]["migration"]["hosts"]["cmp1"]["fully_on_ovn"] == 1
