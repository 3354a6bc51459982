"""API mode without NB/SB, with host reports: which OVN host checks still hold.

The real neutron 29.0.0 API with the OVN driver (tests/testkit/ovn_neutron.py) binds
the ports of a lab compute host whose real ovn-controller registered its chassis in
the OVN lab's SB (test_ovn_hosts.py's ``OvnHost``). The audit runs with
``--os-cloud`` and ``--host-reports`` but without ``--ovn-nb-connection`` and
``--ovn-sb-connection``: the OVN view is then the agents neutron lists (GET
/v2.0/agents), so the host's system-id against its chassis (VD411), the hybrid wiring
(VD415) and the OVS agent's chains (VD416) are judged, the claims are not: the port
whose SB ``Port_Binding`` stays claimed without interface or domain gives VD412 only
when the same audit is given the SB.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from test_ovn_hosts import MIGRATED, OvnHost, only, wait_until
from test_ovn_neutron import network, vm_port, wait_status
from testkit.hostlab import ComputeHost, dev
from testkit.ovn_neutron import OvnNeutronServer, running_ovn_server

from vifdoctor.cmd.main import main
from vifdoctor.demo.nova import vif_entry
from vifdoctor.demo.ovnlab import OvnLab

pytest_plugins = ["testkit.hostlab", "testkit.ovnlab"]


@pytest.fixture
def api_host(
    compute_host: ComputeHost,
    ovn_lab: OvnLab,
    neutron29_mariadb_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[OvnHost, OvnNeutronServer]]:
    """The lab host as a chassis first (the OVN driver binds only to a live one), then
    neutron's API with the OVN driver on the same NB/SB, reached by clouds.yaml only."""
    host = OvnHost(compute_host, ovn_lab, tmp_path)
    names = ("VIFDOCTOR_NEUTRON_DB", "VIFDOCTOR_NOVA_DB", "VIFDOCTOR_NOVA_API_DB")
    for key in [k for k in os.environ if k.startswith("OS_") or k in names]:
        monkeypatch.delenv(key)  # API mode, no Nova: the cloud is clouds.yaml's only
    (tmp_path / "neutron").mkdir()
    with running_ovn_server(neutron29_mariadb_url, tmp_path / "neutron", ovn_lab) as server:
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(server.clouds_yaml))
        yield host, server


def plug(h: OvnHost, server: OvnNeutronServer, net: str, *, hybrid: bool) -> dict:
    """A VM port bound by the OVN driver, plugged by nova (through qbr when ``hybrid``:
    the OVS driver's details Nova cached before the OVS -> OVN migration), claimed by
    ovn-controller."""
    port = vm_port(server, net, h.host.name)
    assert port["binding:vif_type"] == "ovs", port
    details = {k: v for k, v in port["binding:vif_details"].items() if k != "bound_drivers"}
    assert "ovs_hybrid_plug" not in details  # the OVN driver plugs direct
    vif = vif_entry(
        port["id"],
        "ovs",
        MIGRATED if hybrid else details,
        network_id=net,
        mac=port["mac_address"],
        network_type="geneve",
    )
    h.host.plug(port["device_id"], [vif])
    iface = dev("qvo" if hybrid else "tap", port["id"])
    wait_until(lambda: h.installed(iface), f"ovn-installed on {iface}")
    wait_status(server, port["id"], "ACTIVE")
    return port


def audit(h: OvnHost, *ovn: str) -> dict:
    """host-scan (with iptables), then the audit in API mode with that report."""
    h.scans += 1
    folder = h.tmp / f"reports-{h.scans}"
    folder.mkdir()
    code, report, _ = h.host.scan(folder / f"{h.host.name}.json", "--iptables")
    assert code == 0, report["errors"]
    out, err = io.StringIO(), io.StringIO()
    argv = ["audit", "--os-cloud", "vdtest", "--no-nova-api", "--host-reports", str(folder)]
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([*argv, *ovn, "-f", "json"])
    assert rc in (0, 1, 2), err.getvalue()
    return json.loads(out.getvalue())


def found(doc: dict, *ports: str) -> set[tuple[str, str]]:
    """Every finding as (code, port id), a host's own with port id "". Without
    ovn-controller the chassis may turn dead in neutron's AgentCache on a slow machine:
    VD402 on ``ports`` is then right, and left out."""
    dead = {("VD402", p) for p in ports}
    return {(f["code"], f["port_id"]) for f in doc["findings"]} - dead


def test_api_mode_without_nb_sb_judges_the_host_but_not_the_claims(
    api_host: tuple[OvnHost, OvnNeutronServer],
) -> None:
    h, server = api_host
    host, lab = h.host, h.lab
    net = network(server)
    hybrid = plug(h, server, net, hybrid=True)["id"]
    gone, running = (plug(h, server, net, hybrid=False) for _ in range(2))
    for direction in ("i", "o"):  # what the ML2/OVS agent's iptables_hybrid left
        host.ns(["iptables", "-N", f"neutron-openvswi-{direction}{hybrid[:10]}"])

    doc = audit(h)
    f = only(doc, "VD415")
    assert f["port_id"] == hybrid and dev("qbr", hybrid) in f["message"]
    assert f["nova_plug"] == "direct"  # the stored details are the OVN driver's
    assert len(only(doc, "VD416")["extra"]["chains"]) == 2
    assert found(doc) == {("VD415", hybrid), ("VD416", "")}, doc["findings"]
    # still wired through qbr: not fully on OVN, whatever its (OVN) details say
    migration = doc["ovn"]["migration"]
    assert migration["vm_ports"] == 3 and migration["fully_on_ovn"] == 2, migration
    assert migration["hosts"][host.name]["fully_on_ovn"] == 2
    assert doc["ovn"]["source"]["from"] == "GET /v2.0/agents"  # no NB/SB read
    assert [c["chassis"] for c in doc["ovn"]["chassis"]] == [h.chassis]

    # The system-id changes under the running ovn-controller (the SB keeps the old
    # chassis); then ovn-controller stops, and two ports lose their OVS port: one with
    # its domain (its SB Port_Binding stays claimed, with nothing on the host), one
    # whose domain still runs.
    host.vsctl("set", "Open_vSwitch", ".", "external_ids:system-id=reinstalled-id")
    time.sleep(1.5)  # ovn-controller tries, and fails, to register it
    assert h.chassis_row("name", "reinstalled-id") == ""
    host.stop_ovn_controller()
    for port in (gone, running):
        host.vsctl("del-port", "br-int", dev("tap", port["id"]))
    host.drop_domain(gone["device_id"])
    assert h.claim_of(gone["id"]) == h.claim_of(running["id"]) == h.chassis
    ports = (hybrid, gone["id"], running["id"])

    doc = audit(h)
    f = only(doc, "VD411")
    assert f["host"] == host.name and "system-id reinstalled-id" in f["message"]
    assert f"hostname {host.name} is {h.chassis}" in f["message"]
    f = only(doc, "VD412")  # the running domain's port, judged without its claim
    assert "domain" in f["message"] and "Port_Binding" not in f["message"]
    assert found(doc, *ports) == {
        ("VD411", ""),
        ("VD412", running["id"]),
        ("VD415", hybrid),
        ("VD416", ""),
    }, doc["findings"]

    # The same cloud with the SB given: the stale claim is VD412 too.
    doc = audit(h, "--ovn-nb-connection", lab.nb, "--ovn-sb-connection", lab.sb)
    (stale,) = [f for f in doc["findings"] if f["code"] == "VD412" and f["port_id"] == gone["id"]]
    assert f"claimed by {h.chassis}" in stale["message"] and "stale" in stale["message"]
    assert doc["ovn"]["source"]["sb"]  # read from the SB this time
    assert found(doc, *ports) == {
        ("VD411", ""),
        ("VD412", gone["id"]),
        ("VD412", running["id"]),
        ("VD415", hybrid),
        ("VD416", ""),
    }, doc["findings"]
