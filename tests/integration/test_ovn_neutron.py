"""End to end: the real neutron 29.0.0 API with ``mechanism_drivers = ovn`` binds ports,
the real OVN driver writes their details and LSPs into a private NB/SB with a real
ovn-northd; the drift is then made as it happens in the field, and each VD4xx code
is asserted on the port it concerns. A clean cloud gives no OVN finding.
"""

from __future__ import annotations

import io
import json
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
    from ovn_neutron import OvnNeutronServer

pytest_plugins = ["ovnlab"]

CH = {"cmp1": "ch-cmp1", "cmp2": "ch-cmp2", "cmp3": "ch-cmp3"}
OVN_DETAILS = {"port_filter": True, "connectivity": "l2", "ovs_create_tap": True,
               "bridge_name": "br-int", "datapath_type": "system"}


@pytest.fixture
def ovn_cloud(ovn_lab, neutron29_mariadb_url: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[OvnNeutronServer]:
    from ovn_neutron import running_ovn_server

    for host, name in CH.items():
        ovn_lab.add_chassis(name, host, other_config={
            "ovn-bridge-mappings": "physnet1:br-ex", "datapath-type": "system",
            "iface-types": "geneve,internal,system"})
    monkeypatch.delenv("VIFDOCTOR_NEUTRON_DB", raising=False)
    with running_ovn_server(neutron29_mariadb_url, tmp_path, ovn_lab) as server:
        yield server


def call(server: OvnNeutronServer, method: str, path: str, body: dict | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{server.url}/v2.0{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read()
    return json.loads(text) if text else None


def network(server: OvnNeutronServer, **provider: str) -> str:
    body = {"name": "vd", **provider}
    net = call(server, "POST", "/networks", {"network": body})["network"]
    call(server, "POST", "/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24",
                                                 "ip_version": 4, "enable_dhcp": False}})
    return net["id"]


def vm_port(server: OvnNeutronServer, net: str, host: str) -> dict:
    body = {"network_id": net, "device_owner": "compute:nova",
            "device_id": str(uuid.uuid4()), "binding:host_id": host}
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
        code = main(["audit", "--neutron-db", server.db_url, "--neutron-config-file",
                     str(server.conf), "-f", "json", *extra])
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
    for p, h in zip(ports, ("cmp1", "cmp2")):
        assert p["binding:vif_type"] == "ovs"
        shown = {k: v for k, v in p["binding:vif_details"].items() if k != "bound_drivers"}
        assert shown == OVN_DETAILS  # what the real driver writes (the API adds bound_drivers)
        plug(ovn_cloud, p, h)
    lsp = ovn_cloud.lab.nbctl("get", "Logical_Switch_Port", ports[0]["id"],
                              "options:requested-chassis")
    assert lsp.strip('"') == "cmp1"
    code, doc = audit(ovn_cloud)
    assert ovn_codes(doc) == {}, doc["findings"]
    assert doc["summary"]["judged"] == 2 and not any(
        "ovn" in k.lower() for k in doc["summary"]["skipped"])
    assert doc["ovn"]["migration"]["summary"] == "2 of 2 VM ports fully on OVN"
    assert code == 0
