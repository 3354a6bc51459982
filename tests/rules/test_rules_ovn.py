"""VD401-VD410: pure rules over a binding and an OVN view built in memory.

The expected details are those neutron 29.0.0's OVNMechanismDriver.bind_port
writes (checked end to end against the real driver in tests/integration).
"""

from __future__ import annotations

import json

import pytest

from vifdoctor.model import Agent, Binding
from vifdoctor.model_ovn import OvnChassis, OvnPort, OvnView, Segment
from vifdoctor.rules.ovn import (
    MigrationTally,
    OvnContext,
    expected_details,
    is_orphan_candidate,
    is_ovn_binding,
    judge_ovn_binding,
    orphan_finding,
    sync_command,
)
from vifdoctor.rules.plug import FirewallAssumption, RuleContext

CTX = RuleContext(firewall=FirewallAssumption("openvswitch", "test"))
OCTX = OvnContext()
PORT = "a188171c-ea2b-4c4e-9d55-5b8cbd0e5f01"
VM = "0b5d5d0e-1111-4a4a-8888-000000000001"


def chassis(name: str = "ch-1", hostname: str = "cmp1", **kw) -> OvnChassis:
    base = dict(
        name=name,
        hostname=hostname,
        alive=True,
        liveness="caught up",
        gateway=False,
        bridge_mappings="physnet1:br-ex",
        physnets=("physnet1",),
        mappings_error=None,
        datapath_type="system",
        iface_types=("geneve",),
        ovn_bridge="br-int",
    )
    base.update(kw)
    return OvnChassis(**base)


def lsp(name: str = PORT, **kw) -> OvnPort:
    base = dict(
        name=name,
        switch="neutron-net1",
        requested_chassis="cmp1",
        up=True,
        claimed_by="ch-1",
        has_port_binding=True,
        has_port_name=True,
    )
    base.update(kw)
    return OvnPort(**base)


def view(chassis_list=None, ports=None) -> OvnView:
    chs = chassis_list if chassis_list is not None else [chassis()]
    ps = ports if ports is not None else [lsp()]
    return OvnView(nb_cfg=3, chassis=chs, ports={p.name: p for p in ps})


OVN_DETAILS = {
    "port_filter": True,
    "connectivity": "l2",
    "ovs_create_tap": True,
    "bridge_name": "br-int",
    "datapath_type": "system",
}


def binding(details: dict | str | None = None, **kw) -> Binding:
    raw = (
        details
        if isinstance(details, str)
        else json.dumps(OVN_DETAILS if details is None else details)
    )
    base = dict(
        port_id=PORT,
        host="cmp1",
        vif_type="ovs",
        vif_details=raw,
        status="ACTIVE",
        driver="ovn",
        device_owner="compute:nova",
        device_id=VM,
        network_id="net1",
    )
    base.update(kw)
    return Binding(**base)


def codes(b: Binding, v: OvnView | None = None, **kw) -> list[str]:
    j = judge_ovn_binding(b, v or view(), CTX, OCTX, **kw)
    return sorted(f.code for f in j.findings)


def test_a_binding_as_the_driver_writes_it_is_clean() -> None:
    j = judge_ovn_binding(
        binding(), view(), CTX, OCTX, segment=Segment("geneve", None), port_status="ACTIVE"
    )
    assert j.findings == [] and j.category == "judged" and j.leftovers == []
    tally = MigrationTally()
    tally.add(binding(), j)
    assert tally.line() == "1 of 1 VM ports fully on OVN"


def test_expected_details_follow_bind_port() -> None:
    ch = chassis(datapath_type="netdev", iface_types=("dpdkvhostuser",), ovn_bridge="br-x")
    got = expected_details(binding(), ch, "vhostuser", OvnContext(vhost_sock_dir="/run/ovs/"))
    assert got == {
        "port_filter": False,
        "vhostuser_mode": "server",
        "vhostuser_ovs_plug": True,
        "connectivity": "l2",
        "vhostuser_socket": "/run/ovs/vhua188171c-ea",
        "bridge_name": "br-x",
        "datapath_type": "netdev",
    }
    assert (
        expected_details(
            binding(), chassis(datapath_type=""), "ovs", OvnContext(enable_security_group=False)
        )["port_filter"]
        is False
    )


def test_vd401_no_chassis_renamed_or_several() -> None:
    renamed = view([chassis(hostname="cmp1.example.org")])
    j = judge_ovn_binding(binding(), renamed, CTX, OCTX)
    (f,) = [f for f in j.findings if f.code == "VD401"]
    assert "cmp1.example.org (renamed host?)" in f.message
    assert f.host == "cmp1" and f.extra["instance"] == VM and f.port_id == PORT
    several = view([chassis("ch-1"), chassis("ch-2")])
    assert "VD401" in codes(binding(), several)
    hidden = view([chassis(has_private=False)])
    (f,) = [
        f for f in judge_ovn_binding(binding(), hidden, CTX, OCTX).findings if f.code == "VD401"
    ]
    assert "no Chassis_Private" in f.message


def test_vd402_dead_chassis() -> None:
    dead = view([chassis(alive=False, liveness="nb_cfg 5 rounds behind")])
    j = judge_ovn_binding(binding(), dead, CTX, OCTX)
    assert [f.code for f in j.findings] == ["VD402"]
    assert j.findings[0].extra["chassis"] == "ch-1" and "5 rounds" in j.findings[0].message


@pytest.mark.parametrize(
    "segment,mappings,expect",
    [
        (Segment("vlan", "physnet2"), "physnet1:br-ex", ["VD403"]),
        (Segment("flat", "physnet1"), "physnet1:br-ex", []),
        (Segment("geneve", None), "", []),
        (Segment("vlan", "physnet1"), "physnet1", ["VD403"]),  # malformed: neutron cannot bind
    ],
)
def test_vd403_physnet_mappings(segment, mappings, expect) -> None:
    from vifdoctor.model_ovn import parse_bridge_mappings

    physnets, error = parse_bridge_mappings(mappings)
    v = view([chassis(bridge_mappings=mappings, physnets=physnets, mappings_error=error)])
    assert codes(binding(), v, segment=segment) == expect


def test_vd404_vif_type_bridge_and_datapath() -> None:
    dpdk = view([chassis(datapath_type="netdev", iface_types=("dpdkvhostuser", "geneve"))])
    j = judge_ovn_binding(binding(), dpdk, CTX, OCTX)
    (f,) = [f for f in j.findings if f.code == "VD404"]
    assert "needs vhostuser" in f.message and f.correction is None  # only a re-bind fixes it
    vhu = binding(
        {"port_filter": False, "bridge_name": "br-int", "datapath_type": "netdev"},
        vif_type="vhostuser",
    )
    assert "VD404" in codes(vhu)  # vhostuser on a system chassis
    other_bridge = view([chassis(ovn_bridge="br-ovn")])
    assert codes(binding(), other_bridge) == ["VD404"]
    # Missing bridge_name: Nova uses its default br-int, which is this chassis's bridge.
    no_bridge = {k: v for k, v in OVN_DETAILS.items() if k != "bridge_name"}
    assert codes(binding(no_bridge)) == []
    assert codes(binding(no_bridge), other_bridge) == ["VD404"]
    # An unset datapath is system on both sides; netdev is not.
    assert codes(binding({**OVN_DETAILS, "datapath_type": ""})) == []
    assert codes(binding({**OVN_DETAILS, "datapath_type": "netdev"})) == ["VD404"]


def test_vd404_correction_rewrites_as_the_driver() -> None:
    stored = {
        "port_filter": True,
        "ovs_hybrid_plug": True,
        "bridge_name": "br-old",
        "datapath_type": "system",
        "custom": 1,
    }
    j = judge_ovn_binding(binding(stored), view([chassis(ovn_bridge="br-ovn")]), CTX, OCTX)
    f404 = next(f for f in j.findings if f.code == "VD404")
    assert f404.correction["set"]["bridge_name"] == "br-ovn"
    assert f404.correction["set"]["connectivity"] == "l2"
    assert f404.correction["remove"] == ["ovs_hybrid_plug"]
    assert "VD405" in {f.code for f in j.findings}


def test_vd405_leftovers_and_vhostuser_port_filter() -> None:
    hybrid = binding({**OVN_DETAILS, "ovs_hybrid_plug": True})
    j = judge_ovn_binding(hybrid, view(), CTX, OCTX)
    (f,) = j.findings
    assert f.code == "VD405" and "qbr" in f.message
    assert f.correction == {"set": {}, "remove": ["ovs_hybrid_plug"]}
    assert codes(binding({**OVN_DETAILS, "port_filter": False})) == ["VD405"]
    assert codes(binding({**OVN_DETAILS, "ovs_hybrid_plug": False})) == []
    dpdk = view([chassis(datapath_type="netdev", iface_types=("dpdkvhostuser",))])
    vhu = binding(
        {
            "port_filter": False,
            "vhostuser_mode": "server",
            "bridge_name": "br-int",
            "datapath_type": "netdev",
        },
        vif_type="vhostuser",
    )
    assert codes(vhu, dpdk) == []  # port_filter false is what the driver writes for it


def test_vd406_missing_lsp_with_the_exact_sync_command() -> None:
    j = judge_ovn_binding(
        binding(),
        view(ports=[]),
        CTX,
        OvnContext(config_files=("/etc/neutron/neutron.conf", "/etc/my conf/ml2.ini")),
    )
    (f,) = j.findings
    assert f.code == "VD406"
    assert (
        "neutron-ovn-db-sync-util --config-file /etc/neutron/neutron.conf --config-file "
        "'/etc/my conf/ml2.ini' --ovn-neutron_sync_mode repair"
    ) in f.remedy
    assert PORT in f.remedy
    fip = binding(device_owner="network:floatingip")
    assert codes(fip, view(ports=[])) == []
    router = binding(device_owner="network:router_interface", vif_type="ovs")
    assert codes(router, view(ports=[])) == ["VD406"]
    unbound = binding("", vif_type="unbound", host="")
    assert "VD406" not in codes(unbound, view(ports=[]))


def test_vd407_orphans_and_their_remedy() -> None:
    assert is_orphan_candidate(lsp("x"))
    assert not is_orphan_candidate(lsp("provnet-abc", type="localnet"))
    assert not is_orphan_candidate(lsp("x", switch="my-own-switch"))
    f = orphan_finding(lsp("x", has_port_name=False), OCTX)
    assert f.code == "VD407" and "ovn-nbctl lsp-del x" in f.remedy and f.port_id == "x"
    assert f.network_id == "net1"
    f = orphan_finding(lsp("y"), OCTX)
    assert "--ovn-neutron_sync_mode repair" in f.remedy
    assert "'$(rm -rf /)'" in orphan_finding(lsp("$(rm -rf /)", has_port_name=False), OCTX).remedy


def test_vd408_requested_chassis_and_live_migration() -> None:
    assert codes(binding(), view(ports=[lsp(requested_chassis="cmp2")])) == ["VD408"]
    assert codes(binding(), view(ports=[lsp(requested_chassis="")])) == ["VD408"]
    # OVN takes a chassis name as well as a hostname.
    assert codes(binding(), view(ports=[lsp(requested_chassis="ch-1")])) == []
    mig = view(
        [chassis(), chassis("ch-2", "cmp2")],
        [lsp(requested_chassis="cmp1,cmp2", additional_chassis=("ch-2",))],
    )
    moving = binding(profile=json.dumps({"migrating_to": "cmp2"}))
    assert codes(moving, mig) == []
    assert codes(binding(), mig) == ["VD408"]  # "src,dst" with no migration under way


def test_vd409_claims() -> None:
    two = [chassis(), chassis("ch-2", "cmp2")]
    assert codes(binding(), view(two, [lsp(claimed_by="ch-2")])) == ["VD409"]
    assert codes(binding(), view(two, [lsp(claimed_by=None)])) == []
    moving = binding(profile=json.dumps({"migrating_to": "cmp2"}))
    claimed_dst = [lsp(requested_chassis="cmp1,cmp2", claimed_by="ch-2")]
    assert codes(moving, view(two, claimed_dst)) == []


def test_vd410_status_against_up() -> None:
    assert codes(binding(), view(ports=[lsp(up=False)]), port_status="ACTIVE") == ["VD410"]
    assert codes(binding(), view(), port_status="DOWN") == ["VD410"]
    assert codes(binding(), view(), port_status="ACTIVE") == []
    moving = binding(profile=json.dumps({"migrating_to": "cmp2"}))
    mig = view([chassis(), chassis("ch-2", "cmp2")], [lsp(requested_chassis="cmp1,cmp2")])
    assert codes(moving, mig, port_status="DOWN") == []


def test_generic_checks_stay_and_agent_checks_go() -> None:
    """An OVN binding never gets VD107 (no OVS agent) but still gets VD104/VD105."""
    assert codes(binding("{not json")) == ["VD104"]
    failed = binding("", vif_type="binding_failed")
    assert codes(failed) == ["VD105"]
    assert "VD107" not in codes(binding(driver="openvswitch"))


def test_which_bindings_are_ovns() -> None:
    v = view()
    live_ovs = Agent("a", "Open vSwitch agent", "cmp1", True, True, {})
    dead_ovs = Agent("a", "Open vSwitch agent", "cmp1", False, True, {})
    migrated = binding(driver="openvswitch")
    assert is_ovn_binding(binding(), [], None, True)
    assert is_ovn_binding(migrated, [dead_ovs], v, True)
    assert not is_ovn_binding(migrated, [live_ovs], v, True)
    assert not is_ovn_binding(migrated, [], None, False)  # no OVN read: the OVS rules judge
    assert is_ovn_binding(binding(driver="openvswitch", host="cmp9"), [], v, False)
    assert not is_ovn_binding(binding(driver="openvswitch", host="cmp9"), [], v, True)
    assert not is_ovn_binding(binding(driver="linuxbridge", vif_type="bridge"), [], v, False)


def test_migration_tally_per_host() -> None:
    tally = MigrationTally()
    old = binding(
        {"port_filter": True, "ovs_hybrid_plug": True, "datapath_type": "system"},
        driver="openvswitch",
    )
    counted = [tally.add(b, judge_ovn_binding(b, view(), CTX, OCTX)) for b in (binding(), old)]
    assert counted == [True, False]  # what the audit's host scan may take back
    tally.add_agents({"cmp1": [Agent("a", "Open vSwitch agent", "cmp1", False, True, {})]})
    row = tally.as_dict()["hosts"]["cmp1"]
    assert row["hybrid-plugged"] == 1 and row["levels name openvswitch"] == 1
    assert row["no bridge_name"] == 1 and row["dead Open vSwitch agents"] == 1
    assert tally.line() == "1 of 2 VM ports fully on OVN"
    tally.take_back("cmp1")  # the clean one is wired through qbr after all (VD415)
    assert tally.line() == "0 of 2 VM ports fully on OVN"
    assert tally.as_dict()["hosts"]["cmp1"]["fully_on_ovn"] == 0


def test_sync_command_defaults() -> None:
    assert sync_command(OCTX) == (
        "neutron-ovn-db-sync-util --config-file /etc/neutron/neutron.conf --config-file "
        "/etc/neutron/plugins/ml2/ml2_conf.ini --ovn-neutron_sync_mode repair"
    )


def test_trunk_bridges_from_a_host_scan_count_in_the_migration_view() -> None:
    from vifdoctor.model import HostWiring
    from vifdoctor.ovn_join import OvnJoin

    iface = {"name": "tpi-1", "type": "patch", "ofport": 3, "external_ids": {}}
    report = {
        "host": "cmp1",
        "ovs_bridges": [
            {"name": "br-int", "ports": [{"name": "tpi-1", "interfaces": [iface]}]},
            {
                "name": "tbr-6e0f1c2a-9",
                "ports": [
                    {
                        "name": "tap1",
                        "interfaces": [
                            {"name": "tap1", "type": "", "ofport": 1, "external_ids": {}}
                        ],
                    }
                ],
            },
        ],
    }
    wiring = HostWiring.from_report(report)
    join = OvnJoin(view(), CTX, OCTX, {}, live_ovs_anywhere=False)
    doc = join.document({}, {"cmp1": wiring})
    assert doc["migration"]["hosts"]["cmp1"]["trunk bridges"] == 1


def test_unclaimed_port_of_a_running_instance() -> None:
    from vifdoctor.model import Instance
    from vifdoctor.rules.ovn import unclaimed_findings

    v = view(ports=[lsp(claimed_by=None)])
    running = Instance(uuid=VM, cell="cell1", host="cmp1", vm_state="active", power_state=1)
    (f,) = unclaimed_findings(running, [binding()], v)
    assert f.code == "VD409" and f.instance["uuid"] == VM and "no chassis claims" in f.message
    stopped = Instance(uuid=VM, cell="cell1", host="cmp1", vm_state="stopped", power_state=4)
    assert unclaimed_findings(stopped, [binding()], v) == []
    assert unclaimed_findings(running, [binding()], view()) == []  # claimed: nothing


def test_the_api_rebind_checks_requested_chassis_on_a_fresh_nb_read() -> None:
    """VD408 is repaired by a re-bind (the OVN driver rewrites the LSP); the report says
    so only when the NB read after the re-binds agrees, port by port."""
    from vifdoctor.ovn_join import OvnJoin
    from vifdoctor.repair.api_rebind import FAILED, REBOUND, PortResult, Rebinder
    from vifdoctor.sources.neutron_api import NeutronApi

    for requested, outcome in (("cmp1", REBOUND), ("cmp2", FAILED)):
        rebinder = Rebinder(NeutronApi(None), {}, CTX, frozenset({"VD408"}))
        rebinder.rebound = {PORT: binding()}
        results = {PORT: PortResult(PORT, "cmp1", "host", result=REBOUND)}
        fresh = OvnJoin(view(ports=[lsp(requested_chassis=requested)]), CTX, OCTX, {}, False)
        rebinder.check_lsps(results, fresh)
        assert results[PORT].result == outcome, results[PORT]
        assert results[PORT].remaining == ([] if outcome == REBOUND else ["VD408"])
