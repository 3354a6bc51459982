"""An ML2/OVN compute host with a real ovn-controller, scanned by host-scan, judged by the audit.

The host is the lab's (tests/testkit/hostlab.py: a network namespace with its own
ovsdb-server and userspace ovs-vswitchd, ports plugged by nova 34.0.0's
``LibvirtGenericVIFDriver.plug()``); its Open_vSwitch row gets the external_ids a
deployment tool sets, and a real ``ovn-controller`` registers its chassis in the OVN
lab's SB (tests/testkit/ovnlab.py: NB + SB + ovn-northd), claims the port whose
interface carries the iface-id and sets ``ovn-installed``. The Neutron rows (SQLite)
are the OVN driver's; the LSPs are made with ovn-nbctl as neutron's OVN client makes
them. Each drift is then made as it happens in the field, and the audit with the
host report gives its code (VD411-VD416, rules/ovn_host.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from testkit.cloudfactory import audit_json
from testkit.hostlab import ComputeHost, dev, record
from testkit.labcloud import (
    NET,
    PROJECT,
    mac_of,
    neutron_db,
    new_id,
    nova_vif,
    vm_port,
)

from vifdoctor.demo.nova import InstanceSpec, create_nova_schema, write_instances
from vifdoctor.demo.ovnlab import OvnLab

pytest_plugins = ["testkit.hostlab", "testkit.ovnlab"]

# What neutron 29.0.0's OVN driver writes for an ovs port on a netdev chassis
# (rules/ovn.py expected_details): the lab's datapath is userspace.
OVN_DETAILS = {
    "port_filter": True,
    "connectivity": "l2",
    "ovs_create_tap": True,
    "bridge_name": "br-int",
    "datapath_type": "netdev",
}
# What the OVS -> OVN migration leaves: the OVS driver's details, hybrid plug kept.
MIGRATED = {
    "bridge_name": "br-int",
    "connectivity": "l2",
    "datapath_type": "netdev",
    "ovs_hybrid_plug": True,
    "port_filter": True,
}


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(0.1)


class OvnHost:
    """The lab host as an OVN chassis, with its Neutron and Nova rows."""

    def __init__(self, host: ComputeHost, lab: OvnLab, tmp: Path) -> None:
        self.host, self.lab, self.tmp = host, lab, tmp
        self.chassis = f"chassis-{host.name}"
        self.neutron_url = self.nova_url = ""
        self.writes = 0
        self.ports: list = []
        self.scans = 0
        lab.nbctl("ls-add", f"neutron-{NET}")
        t0 = time.monotonic()
        host.start_ovn_controller(lab.sb, self.chassis)
        wait_until(lambda: self.chassis_row("hostname") == host.name, "chassis registered")
        record("ovn-controller start until its chassis is in the SB", time.monotonic() - t0)

    def chassis_row(self, column: str, name: str | None = None) -> str:
        return self.lab.sbctl(
            "--bare", f"--columns={column}", "find", "Chassis", f"name={name or self.chassis}"
        )

    def claim_of(self, port: str) -> str:
        uuid = self.lab.sbctl(
            "--bare", "--columns=chassis", "find", "Port_Binding", f"logical_port={port}"
        )
        return self.lab.sbctl("--bare", "--columns=name", "list", "Chassis", uuid) if uuid else ""

    def installed(self, iface: str) -> bool:
        ext = self.host.vsctl("get", "Interface", iface, "external_ids")
        return 'ovn-installed="true"' in ext

    def vm(self, details: dict, *, driver: str = "ovn", active: bool = True) -> tuple[str, str]:
        """A VM port as neutron's OVN driver makes it (LSP, binding), plugged by nova."""
        port, vm = new_id(), new_id()
        self.lab.nbctl("lsp-add", f"neutron-{NET}", port)
        self.lab.nbctl(
            "set",
            "Logical_Switch_Port",
            port,
            f'addresses="{mac_of(port)}"',
            f"options:requested-chassis={self.host.name}",
            'external_ids:"neutron:device_owner"="compute:nova"',
            f'external_ids:"neutron:host_id"="{self.host.name}"',
            'external_ids:"neutron:port_name"=""',
        )
        self.host.plug(vm, [nova_vif(port, details)])
        self.ports.append((port, vm, details, driver, active))
        return port, vm

    def write_clouds(self, details: dict[str, dict] | None = None) -> None:
        """Neutron's rows (status ACTIVE where the LSP came up) and Nova's instances, in
        fresh databases; ``details`` as repaired (Nova's cache healed to them too)."""
        details = details or {}
        instances = [
            InstanceSpec(
                uuid=vm,
                host=self.host.name,
                project_id=PROJECT,
                display_name=f"vm-{i}",
                network_info=[nova_vif(p, details.get(p, d))],
            )
            for i, (p, vm, d, _, _) in enumerate(self.ports)
        ]
        self.writes += 1
        self.neutron_url = f"sqlite:///{self.tmp / f'neutron-{self.writes}.sqlite'}"
        self.nova_url = f"sqlite:///{self.tmp / f'nova-{self.writes}.sqlite'}"
        specs = [
            vm_port(p, vm, self.host.name, details.get(p, d), driver=drv)
            for p, vm, d, drv, _ in self.ports
        ]
        neutron_db(self.neutron_url, specs, [], network_type="geneve")
        engine = sa.create_engine(self.neutron_url)
        try:
            with engine.begin() as conn:
                for p, _, _, _, active in self.ports:
                    conn.execute(
                        sa.text("UPDATE ports SET status = :s WHERE id = :p"),
                        {"s": "ACTIVE" if active else "DOWN", "p": p},
                    )
        finally:
            engine.dispose()
        engine = sa.create_engine(self.nova_url)
        try:
            create_nova_schema(engine)
            write_instances(engine, instances)
        finally:
            engine.dispose()

    def audit(self, *scan_extra: str) -> tuple[dict, dict]:
        """host-scan in the namespace, then the audit with that report, NB/SB and Nova."""
        self.scans += 1
        folder = self.tmp / f"reports-{self.scans}"
        folder.mkdir()
        code, report, _ = self.host.scan(folder / f"{self.host.name}.json", *scan_extra)
        assert code == 0, report["errors"]
        _, doc = audit_json(
            self.neutron_url,
            "--host-reports",
            str(folder),
            "--ovn-nb-connection",
            self.lab.nb,
            "--ovn-sb-connection",
            self.lab.sb,
            "--nova-db",
            self.nova_url,
        )
        return report, doc


@pytest.fixture
def ovn_host(compute_host: ComputeHost, ovn_lab: OvnLab, tmp_path: Path):
    yield OvnHost(compute_host, ovn_lab, tmp_path)


def codes(doc: dict, key: str) -> set[str]:
    return {f["code"] for f in doc["findings"] if key in (f["port_id"], f["host"])}


def only(doc: dict, code: str) -> dict:
    (found,) = [f for f in doc["findings"] if f["code"] == code]
    return found


def test_ovn_controller_host_clean_then_each_field_drift(ovn_host: OvnHost) -> None:
    h, host, lab = ovn_host, ovn_host.host, ovn_host.lab
    port, vm = h.vm(OVN_DETAILS)
    tap = dev("tap", port)
    wait_until(lambda: h.installed(tap), "ovn-installed on the tap")
    lab.wait_lsp_up(port, True)
    assert h.claim_of(port) == h.chassis
    h.write_clouds()

    # Clean: what the real ovn-controller did is recorded, and nothing is found.
    report, doc = h.audit("--iptables")
    ext = report["open_vswitch"]["external_ids"]
    assert report["sources"]["open_vswitch"]["ok"]
    assert (ext["system-id"], ext["hostname"], ext["ovn-remote"]) == (h.chassis, host.name, lab.sb)
    assert ext["ovn-encap-ip"] == "127.0.0.1" and ext["ovn-bridge"] == "br-int"
    (iface,) = [
        i
        for br in report["ovs_bridges"]
        for p in br["ports"]
        for i in p["interfaces"]
        if i["name"] == tap
    ]
    assert iface["external_ids"]["iface-id"] == port
    assert iface["external_ids"]["ovn-installed"] == "true"
    assert doc["findings"] == [], doc["findings"]
    assert doc["ovn"]["migration"]["summary"] == "1 of 1 VM ports fully on OVN"

    # A second interface with the port's iface-id (a leftover plug, or one added by hand).
    host.vsctl(
        "add-port",
        "br-int",
        "dup0",
        "--",
        "set",
        "Interface",
        "dup0",
        "type=internal",
        f"external_ids:iface-id={port}",
    )
    _, doc = h.audit()
    f = only(doc, "VD413")
    assert f["port_id"] == port and "dup0" in f["message"] and tap in f["message"]
    assert codes(doc, port) == {"VD413"}, doc["findings"]
    host.vsctl("del-port", "br-int", "dup0")
    wait_until(lambda: h.installed(tap) and h.claim_of(port) == h.chassis, "tap claimed again")

    # The system-id changes under a running ovn-controller (system-id.conf regenerated):
    # the new chassis cannot register (the old one holds the encap), the SB keeps the old.
    host.vsctl("set", "Open_vSwitch", ".", "external_ids:system-id=reinstalled-id")
    time.sleep(1.5)  # ovn-controller tries, and fails, to register it
    assert h.chassis_row("name", "reinstalled-id") == ""
    assert h.chassis_row("hostname") == host.name
    _, doc = h.audit()
    f = only(doc, "VD411")
    assert f["host"] == host.name and f["port_id"] == ""
    assert "reinstalled-id" in f["message"] and h.chassis in f["message"]
    assert codes(doc, host.name) == {"VD411"}, doc["findings"]
    host.vsctl("set", "Open_vSwitch", ".", f"external_ids:system-id={h.chassis}")
    wait_until(lambda: h.claim_of(port) == h.chassis, "claimed by the chassis again")
    _, doc = h.audit()
    assert doc["findings"] == [], doc["findings"]

    # The OVS port is deleted underneath the running VM: ovn-controller releases the
    # claim, the domain still runs with the tap.
    host.vsctl("del-port", "br-int", tap)
    wait_until(lambda: h.claim_of(port) == "", "claim released")
    lab.wait_lsp_up(port, False)
    _, doc = h.audit()
    f = only(doc, "VD412")
    assert f["port_id"] == port and f["host"] == host.name and "domain" in f["message"]
    # With Nova: the unclaimed port of the running instance, naming it (rules/ovn.py).
    unclaimed = only(doc, "VD409")
    assert "no chassis claims the port" in unclaimed["message"]
    assert unclaimed["instance"]["uuid"] == vm
    # And neutron still says ACTIVE while the LSP is down.
    assert codes(doc, port) == {"VD409", "VD410", "VD412"}, doc["findings"]


def test_hybrid_plug_stale_chains_and_a_stopped_ovn_controller(ovn_host: OvnHost) -> None:
    h, host, lab = ovn_host, ovn_host.host, ovn_host.lab
    # A VM the migration left hybrid: os-vif builds qbr/qvb/qvo, ovn-controller claims
    # the qvo; the binding levels still name openvswitch, as the migration keeps them.
    port, _ = h.vm(MIGRATED, driver="openvswitch")
    qvo = dev("qvo", port)
    wait_until(lambda: h.installed(qvo), "ovn-installed on the qvo")
    lab.wait_lsp_up(port, True)
    for direction in ("i", "o"):  # what the ML2/OVS agent's iptables_hybrid left
        host.ns(["iptables", "-N", f"neutron-openvswi-{direction}{port[:10]}"])
    h.write_clouds()

    report, doc = h.audit("--iptables")
    assert f"neutron-openvswi-i{port[:10]}" in report["iptables_chains"]
    f = only(doc, "VD415")
    assert f["port_id"] == port and dev("qbr", port) in f["message"]
    assert "builds the chain again" in f["message"] and f["nova_plug"] == "hybrid"
    assert codes(doc, port) == {"VD405", "VD415"}, doc["findings"]
    chains = only(doc, "VD416")
    assert chains["host"] == host.name and len(chains["extra"]["chains"]) == 2
    # VD301/VD302/VD307 are ML2/OVS's: OVN has no iptables_hybrid firewall to need them.
    assert not {"VD301", "VD302", "VD307"} & {f["code"] for f in doc["findings"]}

    # The details repaired as the OVN driver writes them: the next re-plug goes direct.
    h.write_clouds({port: OVN_DETAILS})
    _, doc = h.audit("--iptables")
    f = only(doc, "VD415")
    assert "plugs" in f["message"] and "direct" in f["message"] and f["nova_plug"] == "direct"
    assert codes(doc, port) == {"VD415"}, doc["findings"]

    # ovn-controller stops (a crash, a failed upgrade); a new VM is plugged: its tap
    # carries the iface-id, but nothing claims it or installs its flows.
    host.stop_ovn_controller()
    new_port, new_vm = h.vm(OVN_DETAILS, active=False)
    h.write_clouds({port: OVN_DETAILS})
    _, doc = h.audit()
    f = only(doc, "VD414")
    assert f["port_id"] == new_port and dev("tap", new_port) in f["message"]
    assert only(doc, "VD409")["instance"]["uuid"] == new_vm
    assert codes(doc, new_port) == {"VD409", "VD414"}, doc["findings"]
