"""VD411-VD416 as pure rules: a host-scan report (in memory) against an OVN view.

The same codes are made end to end, with a real ovn-controller, in
tests/integration/test_ovn_hosts.py; here are the cases the lab does not build
(cloned system-ids, stale claims, old reports, older OVN without ovn-installed).
"""

from __future__ import annotations

import copy

from vifdoctor.model import Agent, HostWiring
from vifdoctor.model_ovn import OvnChassis, OvnPort, OvnView
from vifdoctor.ovn_join import OvnJoin
from vifdoctor.rules.ovn import OvnContext
from vifdoctor.rules.ovn_host import (
    judge_port_interfaces,
    judge_system_id,
    ovn_host,
    stale_chains,
)
from vifdoctor.rules.plug import RuleContext
from vifdoctor.sources.host_schema import problem

PORT = "a188171c-ea2b-4c4e-9d55-5b8cbd0e5f01"
OTHER = "b288171c-ea2b-4c4e-9d55-5b8cbd0e5f02"
TAP = ("tap" + PORT)[:14]


def chassis(name: str, hostname: str) -> OvnChassis:
    return OvnChassis(
        name=name,
        hostname=hostname,
        alive=True,
        liveness="caught up",
        gateway=False,
        bridge_mappings="",
        physnets=(),
        mappings_error=None,
        datapath_type="system",
        iface_types=("geneve",),
        ovn_bridge="br-int",
    )


def view(chassis_list: list[OvnChassis], claims: dict[str, str | None] | None = None) -> OvnView:
    ports = {
        p: OvnPort(p, "neutron-net1", claimed_by=c, device_owner="compute:nova")
        for p, c in (claims or {}).items()
    }
    return OvnView(nb_cfg=1, chassis=chassis_list, ports=ports)


def iface(name: str, iface_id: str, installed: bool = True) -> dict:
    ext = {"iface-id": iface_id, **({"ovn-installed": "true"} if installed else {})}
    return {"name": name, "type": "", "ofport": 1, "external_ids": ext}


REPORT = {
    "host": "cmp1",
    "sources": {
        "libvirt": {"ok": True},
        "ovs": {"ok": True},
        "links": {"ok": True},
        "open_vswitch": {"ok": True},
    },
    "domains": [
        {
            "name": "instance-1",
            "uuid": "vm1",
            "state": "running",
            "interfaces": [{"target_dev": TAP, "interfaceid": None, "mac": None}],
        }
    ],
    "ovs_bridges": [{"name": "br-int", "ports": [{"interfaces": [iface(TAP, PORT)]}]}],
    "links": [],
    "iptables_chains": None,
    "open_vswitch": {
        "external_ids": {"system-id": "ch-1", "hostname": "cmp1", "ovn-remote": "tcp:sb:6642"}
    },
}


def wiring(**changes) -> HostWiring:
    report = copy.deepcopy(REPORT)
    report.update(changes)
    return HostWiring.from_report(report)


def system_id_codes(w: HostWiring, v: OvnView) -> list[str]:
    here = ovn_host(w, v)
    assert here is not None
    return [f.code for f in judge_system_id(w, here)]


def test_system_id_is_the_chassis_with_the_hostname() -> None:
    assert system_id_codes(wiring(), view([chassis("ch-1", "cmp1")])) == []


def test_system_id_mismatches_vd411() -> None:
    # A cloned image: the system-id is another host's chassis.
    w = wiring()
    here = ovn_host(w, view([chassis("ch-1", "cmp2"), chassis("ch-9", "cmp1")]))
    assert here is not None
    (f,) = judge_system_id(w, here)
    assert f.code == "VD411" and f.host == "cmp1"
    assert "whose hostname is cmp2" in f.message and "hostname cmp1 is ch-9" in f.message
    # Regenerated system-id, the old chassis stays.
    v = view([chassis("ch-old", "cmp1")])
    assert system_id_codes(wiring(), v) == ["VD411"]
    # No system-id at all; and an ovn-controller that never registered.
    ext = {"ovn-remote": "tcp:sb:6642"}
    w = wiring(open_vswitch={"external_ids": ext})
    (f,) = judge_system_id(w, ovn_host(w, view([])))
    assert "no external_ids:system-id" in f.message and "no SB chassis has hostname" in f.message
    # external_ids:hostname names the host otherwise: said in the message.
    ext = {**REPORT["open_vswitch"]["external_ids"], "hostname": "cmp1.example.org"}
    w = wiring(open_vswitch={"external_ids": ext})
    (f,) = judge_system_id(w, ovn_host(w, view([chassis("ch-1", "cmp1.example.org")])))
    assert "external_ids:hostname is cmp1.example.org" in f.message


def test_a_host_ovn_does_not_serve_and_an_old_report_are_not_judged() -> None:
    plain = wiring(open_vswitch={"external_ids": {"system-id": "5f0c-uuid"}})
    assert ovn_host(plain, view([chassis("ch-1", "cmp2")])) is None  # ML2/OVS host
    # A report from before open_vswitch was recorded loads, and VD411 is not made.
    old = copy.deepcopy(REPORT)
    del old["open_vswitch"]
    del old["sources"]["open_vswitch"]
    assert problem(old) is None
    w = HostWiring.from_report(old)
    assert w.system is None and not w.readable["open_vswitch"]
    here = ovn_host(w, view([chassis("ch-1", "cmp1")]))  # served: a chassis has its name
    assert here is not None and judge_system_id(w, here) == []


def test_the_schema_checks_open_vswitch() -> None:
    bad = copy.deepcopy(REPORT)
    bad["open_vswitch"] = {"external_ids": ["system-id"]}
    assert problem(bad) == "report.open_vswitch.external_ids: expected an object, found list"
    assert problem({**REPORT, "open_vswitch": None}) is None  # not readable on the host


def port_codes(w: HostWiring, v: OvnView, port: str = PORT, claim: str | None = "ch-1") -> list:
    here = ovn_host(w, v)
    assert here is not None
    return [(f.code, f.message) for f in judge_port_interfaces(port, w, here, claim)]


def test_interfaces_of_claimed_and_running_ports() -> None:
    v = view([chassis("ch-1", "cmp1")])
    assert port_codes(wiring(), v) == []
    # Claimed here, no domain, no interface: a stale claim.
    ((code, message),) = port_codes(wiring(), v, port=OTHER)
    assert code == "VD412" and "claim is stale" in message
    # Neither claimed here nor running here: not this host's business.
    assert port_codes(wiring(), v, port=OTHER, claim="ch-2") == []
    # The iface-id only on another bridge, where ovn-controller does not look.
    bridges = [{"name": "br-ex", "ports": [{"interfaces": [iface(TAP, PORT)]}]}]
    ((code, message),) = port_codes(wiring(ovs_bridges=bridges), v)
    assert code == "VD412" and f"only {TAP} on br-ex" in message
    # Two interfaces with the iface-id.
    two = [{"name": "br-int", "ports": [{"interfaces": [iface(TAP, PORT), iface("x", PORT)]}]}]
    assert [c for c, _ in port_codes(wiring(ovs_bridges=two), v)] == ["VD413"]


def test_ovn_installed_only_where_the_host_sets_it() -> None:
    v = view([chassis("ch-1", "cmp1")])
    ifaces = [iface(TAP, PORT, installed=False), iface("tapother", OTHER)]
    w = wiring(ovs_bridges=[{"name": "br-int", "ports": [{"interfaces": ifaces}]}])
    assert [c for c, _ in port_codes(w, v)] == ["VD414"]
    # An ovn-controller older than 20.09 sets it on no interface: nothing to judge by.
    ifaces = [iface(TAP, PORT, installed=False), iface("tapother", OTHER, installed=False)]
    w = wiring(ovs_bridges=[{"name": "br-int", "ports": [{"interfaces": ifaces}]}])
    assert port_codes(w, v) == []


def test_stale_chains_only_without_a_live_ovs_agent() -> None:
    chains = ["neutron-openvswi-FORWARD", "neutron-openvswi-ia188171c-e"]
    w = wiring(iptables_chains=chains)
    (f,) = stale_chains(w, [])
    assert f.code == "VD416" and f.extra["chains"] == sorted(chains)
    alive = Agent("a", "Open vSwitch agent", "cmp1", True, True, {})
    assert stale_chains(w, [alive]) == []
    assert stale_chains(wiring(), []) == []  # iptables not scanned


def test_the_join_checks_ports_claimed_here_that_neutron_binds_elsewhere() -> None:
    v = view([chassis("ch-1", "cmp1")], claims={PORT: "ch-1", OTHER: "ch-1"})
    join = OvnJoin(v, RuleContext(), OvnContext(), {}, live_ovs_anywhere=False)
    found = join.judge_host(wiring(), bound_here=set(), agents=[])
    assert [(f.code, f.port_id) for f in found] == [("VD412", OTHER)]
    assert join.judge_host(wiring(), bound_here={PORT, OTHER}, agents=[]) == []
