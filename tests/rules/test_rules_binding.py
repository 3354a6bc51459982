"""vifdoctor.rules.binding: every code's positive and negative cases, and the categories.

The default RuleContext is what an operator gets with no flags: agents that do
not report ovs_hybrid_plug are taken to run iptables_hybrid, security groups
on, Nova Ussuri+ (hybrid iff details.ovs_hybrid_plug is truthy).
"""

from __future__ import annotations

import json

import pytest
from testkit.cloudfactory import (
    DIRECT_29,
    HYBRID,
    HYBRID_29,
    LINUXBRIDGE,
    agent,
    binding,
    lb_agent,
    legacy_ovs,
    reporting_ovs,
)

from vifdoctor.model import NovaGeneration, Severity
from vifdoctor.rules.binding import JUDGED, agent_finding, judge_binding
from vifdoctor.rules.catalog import CATALOG
from vifdoctor.rules.plug import (
    AGENT_SRIOV,
    FW_IPTABLES_HYBRID,
    FW_OPENVSWITCH,
    FirewallAssumption,
    RuleContext,
)

CTX = RuleContext()


def codes(judgement) -> list[str]:
    return sorted(f.code for f in judgement.findings)


def only(judgement, code: str):
    found = [f for f in judgement.findings if f.code == code]
    assert len(found) == 1, f"{code} in {codes(judgement)}"
    return found[0]


def judge(b=None, agents=None, ctx=CTX):
    return judge_binding(b or binding(), [legacy_ovs()] if agents is None else agents, ctx)


# --------------------------------------------------------------------------- VD101


@pytest.mark.parametrize(
    ("details", "others"),
    [
        ("", ["VD103"]),  # Havana port: no details at all
        ('{"port_filter": true}', []),  # final Icehouse migration 50d5ba354c23
        ('{"ovs_hybrid_plug": null}', ["VD103"]),  # Victoria+ server, silent agent
        ('{"port_filter": true, "ovs_hybrid_plug": null}', []),
        ('{"port_filter": true, "ovs_hybrid_plug": false}', []),
        ('{"port_filter": true, "ovs_hybrid_plug": ""}', []),
    ],
)
def test_vd101_on_an_iptables_hybrid_host(details, others):
    j = judge(binding(vif_details=details))
    assert j.category == JUDGED
    assert codes(j) == sorted(["VD101", *others])
    f = only(j, "VD101")
    assert f.severity is Severity.FAILURE
    assert (f.nova_plug, f.needed_plug) == ("direct", "hybrid")
    assert f.port_id == "p-1" and f.host == "compute1"
    assert f.expected_details["ovs_hybrid_plug"] is True
    assert f.expected_details["port_filter"] is True


@pytest.mark.parametrize("agents", [[legacy_ovs()], [reporting_ovs(True)]])
def test_vd101_not_for_a_hybrid_row(agents):
    assert codes(judge(binding(vif_details=HYBRID), agents)) == []
    assert codes(judge(binding(vif_details=HYBRID_29), agents)) == []


def test_vd101_when_the_agent_reports_hybrid_and_the_row_is_direct():
    j = judge(binding(vif_details=DIRECT_29), [reporting_ovs(True, datapath_type="system")])
    assert codes(j) == ["VD101"]
    assert "agent reports ovs_hybrid_plug=true" in only(j, "VD101").message


def test_vd101_expected_details_of_an_empty_row_is_exactly_what_icehouse_wrote():
    f = only(judge(binding(vif_details="")), "VD101")
    assert f.expected_details == {"port_filter": True, "ovs_hybrid_plug": True}
    assert f.stored_details == ""


def test_vd101_expected_details_keep_every_other_key():
    stored = {
        "bridge_name": "br-int",
        "datapath_type": "system",
        "connectivity": "l2",
        "port_filter": True,
        "ovs_hybrid_plug": None,
    }
    f = only(judge(binding(vif_details=json.dumps(stored))), "VD101")
    assert f.expected_details == {**stored, "ovs_hybrid_plug": True}
    assert f.stored_details == stored


def test_vd101_with_security_groups_disabled_does_not_fire():
    # enable_security_group=False: the host needs no hybrid plug (Kilo's driver wrote false).
    ctx = RuleContext(enable_security_group=False)
    assert codes(judge(binding(vif_details=""), ctx=ctx)) == []


def test_vd101_not_on_a_legacy_nova_that_plugs_hybrid_for_its_own_firewall():
    # Icehouse..Train with a non-Noop nova firewall_driver plug an unfiltered port hybrid.
    ctx = RuleContext(
        nova_generation=NovaGeneration.LEGACY,
        nova_firewall_driver="nova.virt.libvirt.firewall.IptablesFirewallDriver",
    )
    j = judge(binding(vif_details=""), ctx=ctx)
    assert "VD101" not in codes(j)
    assert "VD103" in codes(j)
    # ... but with port_filter true, legacy Nova follows ovs_hybrid_plug: direct.
    assert "VD101" in codes(judge(binding(vif_details='{"port_filter": true}'), ctx=ctx))


def test_vd101_expected_details_drop_ovs_create_tap():
    f = only(judge(binding(vif_details=DIRECT_29), [reporting_ovs(True)]), "VD101")
    assert f.expected_details["ovs_hybrid_plug"] is True
    assert not f.expected_details.get("ovs_create_tap")


# --------------------------------------------------------------------------- VD102


@pytest.mark.parametrize(
    "details", [HYBRID, HYBRID_29, '{"port_filter": true, "ovs_hybrid_plug": "false"}']
)
def test_vd102_on_an_openvswitch_firewall_host(details):
    j = judge(binding(vif_details=details), [reporting_ovs(False)])
    assert codes(j) == ["VD102"]
    f = only(j, "VD102")
    assert f.severity is Severity.WARNING
    assert (f.nova_plug, f.needed_plug) == ("hybrid", "direct")
    assert f.expected_details == {**json.loads(details), "ovs_hybrid_plug": False}


def test_vd102_not_for_a_direct_row_on_an_openvswitch_firewall_host():
    assert codes(judge(binding(vif_details=DIRECT_29), [reporting_ovs(False)])) == []


def test_vd102_from_the_assumed_openvswitch_firewall_for_a_silent_agent():
    ctx = RuleContext(firewall=FirewallAssumption(FW_OPENVSWITCH, "test"), firewall_explicit=True)
    assert codes(judge(binding(vif_details=HYBRID), ctx=ctx)) == ["VD102"]
    # the same row under the default iptables_hybrid assumption is fine
    assert codes(judge(binding(vif_details=HYBRID))) == []


def test_vd102_legacy_nova_firewall_on_an_unfiltered_row():
    ctx = RuleContext(
        nova_generation=NovaGeneration.LEGACY,
        nova_firewall_driver="nova.virt.libvirt.firewall.IptablesFirewallDriver",
    )
    j = judge(
        binding(vif_details='{"port_filter": false, "ovs_hybrid_plug": false}'),
        [reporting_ovs(False)],
        ctx,
    )
    assert codes(j) == ["VD102", "VD103"]
    assert "port_filter off" in only(j, "VD102").message


# --------------------------------------------------------------------------- VD103


@pytest.mark.parametrize(
    "details",
    [
        '{"ovs_hybrid_plug": true}',
        '{"port_filter": false, "ovs_hybrid_plug": true}',
        '{"port_filter": null, "ovs_hybrid_plug": true}',
    ],
)
def test_vd103_port_filter_off_on_a_filtering_host(details):
    j = judge(binding(vif_details=details))
    assert codes(j) == ["VD103"]
    f = only(j, "VD103")
    assert f.expected_details == {**json.loads(details), "port_filter": True}


def test_vd103_not_when_security_groups_are_off_or_the_firewall_is_noop():
    details = '{"port_filter": false, "ovs_hybrid_plug": false}'
    assert (
        codes(judge(binding(vif_details=details), ctx=RuleContext(enable_security_group=False)))
        == []
    )
    noop = RuleContext(firewall=FirewallAssumption("noop", "test"), firewall_explicit=True)
    assert codes(judge(binding(vif_details=details), ctx=noop)) == []


def test_vd103_for_linuxbridge_rows():
    j = judge(
        binding(vif_type="bridge", driver="linuxbridge", vif_details='{"port_filter": false}'),
        [lb_agent()],
    )
    assert codes(j) == ["VD103"]
    assert (
        codes(
            judge(
                binding(vif_type="bridge", driver="linuxbridge", vif_details=LINUXBRIDGE),
                [lb_agent()],
            )
        )
        == []
    )


# --------------------------------------------------------------------------- VD104


@pytest.mark.parametrize("bad", ["[1]", "null", '"x"', "3"])
def test_vd104_for_details_that_are_not_an_object(bad):
    j = judge(binding(vif_details=bad))
    assert codes(j) == ["VD104"]  # Neutron hands Nova the bare value: nothing more to judge
    assert j.category == "malformed vif_details"
    f = only(j, "VD104")
    assert f.extra == {"column": "vif_details"}
    assert f.severity is Severity.FAILURE
    assert f.expected_details is None  # never a repair target


def test_details_that_do_not_parse_are_judged_as_the_empty_object_neutron_shows():
    bad = '{"port_filter": true, "ovs_hyb'
    j = judge(binding(vif_details=bad))
    # Neutron's API (so Nova, and API mode) sees {} for this text: plugged direct on a
    # host that needs hybrid, with no port filter, as the empty text would be
    assert (
        codes(j)
        == codes(judge(binding(vif_details=""))) + ["VD104"]
        == [
            "VD101",
            "VD103",
            "VD104",
        ]
    )
    assert j.category == JUDGED
    assert only(j, "VD104").extra == {"column": "vif_details"}
    vd101 = only(j, "VD101")
    assert vd101.correction is None  # vifdoctor never rewrites text it cannot read whole
    assert vd101.stored_details == bad  # shown as stored, not as the {} it was judged as
    assert "does not parse" in vd101.message


@pytest.mark.parametrize("bad", ['{"capabilities": ["switchdev"', "[]", "false"])
def test_vd104_for_malformed_profile_only(bad):
    j = judge(binding(vif_details=HYBRID, profile=bad))
    assert codes(j) == ["VD104"]
    assert only(j, "VD104").extra == {"column": "profile"}
    assert j.category == JUDGED  # the details are fine: the binding is still judged


def test_vd104_for_a_malformed_profile_still_judges_the_details():
    j = judge(binding(vif_details="", profile="{"))
    assert codes(j) == ["VD101", "VD103", "VD104"]


def test_vd104_for_both_columns():
    j = judge(binding(vif_details="[", profile="]"))
    vd104 = [f for f in j.findings if f.code == "VD104"]
    assert sorted(f.extra["column"] for f in vd104) == ["profile", "vif_details"]


def test_vd104_long_value_is_cut_in_the_message():
    j = judge(binding(vif_details='{"k": "' + "a" * 5000))
    f = only(j, "VD104")
    assert "(5007 chars)" in f.message
    assert len(f.message) < 500


@pytest.mark.parametrize("ok", ["", "{}", '{"binding:profile": 1}'])
def test_vd104_not_for_empty_or_object_profile(ok):
    assert "VD104" not in codes(judge(binding(vif_details=HYBRID, profile=ok)))


# ---------------------------------------------------------------------- VD105 / VD106


@pytest.mark.parametrize("owner", ["compute:nova", "compute:None", "compute:az-2"])
def test_vd105_binding_failed_compute_port(owner):
    j = judge(binding(vif_type="binding_failed", vif_details="", driver=None, device_owner=owner))
    assert codes(j) == ["VD105"]
    assert only(j, "VD105").nova_plug == "none"


@pytest.mark.parametrize("owner", ["network:dhcp", "network:router_interface", ""])
def test_vd105_vd106_not_for_ports_nova_does_not_plug(owner):
    for vif_type, host in (("binding_failed", "compute1"), ("unbound", ""), ("ovs", "")):
        j = judge(
            binding(vif_type=vif_type, host=host, vif_details="", driver=None, device_owner=owner)
        )
        assert codes(j) == []
        assert j.category != JUDGED


@pytest.mark.parametrize(
    ("vif_type", "host"), [("unbound", ""), ("unbound", "compute1"), ("ovs", "")]
)
def test_vd106_unbound_compute_port(vif_type, host):
    j = judge(binding(vif_type=vif_type, host=host, vif_details="", driver=None))
    assert codes(j) == ["VD106"]
    assert only(j, "VD106").severity is Severity.WARNING


# --------------------------------------------------------------------------- VD107


def test_vd107_dead_agent():
    j = judge(binding(), [legacy_ovs(alive=False)])
    assert codes(j) == ["VD107"]
    assert "dead" in only(j, "VD107").message


def test_vd107_admin_down_agent():
    j = judge(binding(), [legacy_ovs(admin_state_up=False)])
    assert codes(j) == ["VD107"]
    assert "admin-down" in only(j, "VD107").message and "dead" not in only(j, "VD107").message


def test_vd107_dead_and_admin_down():
    msg = only(judge(binding(), [legacy_ovs(alive=False, admin_state_up=False)]), "VD107").message
    assert "dead" in msg and "admin-down" in msg


@pytest.mark.parametrize(
    "agents", [[], [agent("compute1", "DHCP agent")], [agent("compute1", "L3 agent")]]
)
def test_vd107_no_agent_on_the_host(agents):
    # judge_binding receives the agents of the binding's host only (audit.judge_all)
    j = judge(binding(), agents)
    assert codes(j) == ["VD107"]
    assert "no Open vSwitch agent" in only(j, "VD107").message


def test_vd107_not_when_one_of_two_agents_is_alive():
    assert codes(judge(binding(), [legacy_ovs(alive=False), legacy_ovs()])) == []


def test_vd107_still_judges_the_details_from_the_last_report():
    j = judge(binding(vif_details='{"port_filter": true}'), [legacy_ovs(alive=False)])
    assert codes(j) == ["VD101", "VD107"]


@pytest.mark.parametrize("details", ['{"port_filter": true}', '{"ovs_hybrid_plug": true}'])
def test_a_dead_agents_report_judges_but_never_repairs(details):
    """After an ML2/OVS -> OVN migration the dead OVS agent's last report would put
    ovs_hybrid_plug back on OVN ports: the finding stands, the repair does not write."""
    dead = judge(binding(vif_details=details), [legacy_ovs(alive=False)])
    live = judge(binding(vif_details=details), [legacy_ovs()])
    repairable = {"VD101", "VD103"}
    assert [f.code for f in live.findings if f.correction] == sorted(set(codes(live)) & repairable)
    assert [f.code for f in dead.findings if f.code in repairable] == [
        f.code for f in live.findings if f.code in repairable
    ]
    assert all(f.correction is None for f in dead.findings)
    # admin-down with a live heartbeat: its report is current, ML2 still binds there
    down = judge(binding(vif_details=details), [legacy_ovs(admin_state_up=False)])
    assert [f.code for f in down.findings if f.correction] == [
        f.code for f in live.findings if f.correction
    ]


# --------------------------------------------------------------------------- VD108


def test_vd108_bridge_vif_on_an_ovs_only_host():
    for driver in ("linuxbridge", None):
        j = judge(
            binding(vif_type="bridge", driver=driver, vif_details=LINUXBRIDGE), [legacy_ovs()]
        )
        assert codes(j) == ["VD108"]
        assert "Open vSwitch agent" in only(j, "VD108").message


def test_vd108_ovs_vif_on_a_linuxbridge_only_host():
    assert codes(judge(binding(vif_details=HYBRID), [lb_agent()])) == ["VD108"]


def test_vd108_not_when_the_right_agent_runs_beside_another():
    j = judge(
        binding(vif_type="bridge", driver="linuxbridge", vif_details=LINUXBRIDGE),
        [legacy_ovs(), lb_agent()],
    )
    assert codes(j) == []


def test_vd108_vhostuser_on_a_host_without_dpdk():
    details = json.dumps(
        {
            "port_filter": False,
            "ovs_hybrid_plug": False,
            "datapath_type": "netdev",
            "vhostuser_mode": "server",
        }
    )
    j = judge(binding(vif_type="vhostuser", vif_details=details), [reporting_ovs(False)])
    assert codes(j) == ["VD108"]


# --------------------------------------------------------------------------- VD109


def test_vd109_inactive_row_is_never_judged_as_live():
    # empty details on a host with no agent: as a live row this would be VD101/VD103/VD107
    b = binding(status="INACTIVE", vif_details="", host="compute9", has_active_row=True)
    j = judge(b, [])
    assert codes(j) == ["VD109"]
    assert j.category == "inactive binding"
    assert "beside its ACTIVE binding" in only(j, "VD109").message


def test_vd109_inactive_row_without_active_row():
    j = judge(binding(status="INACTIVE", has_active_row=False), [])
    assert "with no ACTIVE binding" in only(j, "VD109").message


@pytest.mark.parametrize("status", ["ACTIVE", None])
def test_vd109_not_for_active_or_pre_ocata_rows(status):
    assert codes(judge(binding(status=status))) == []


# --------------------------------------------------------------------------- VD110


def test_vd110_datapath_mismatch():
    a = reporting_ovs(False, datapath_type="netdev", ovs_capabilities={"iface_types": []})
    j = judge(binding(vif_details=DIRECT_29), [a])
    assert codes(j) == ["VD110"]
    f = only(j, "VD110")
    assert f.expected_details == {**json.loads(DIRECT_29), "datapath_type": "netdev"}


def test_vd110_missing_datapath_is_system():
    # os-vif treats a missing datapath_type as system: no mismatch on a system host
    a = reporting_ovs(True, datapath_type="system")
    assert codes(judge(binding(vif_details=HYBRID), [a])) == []
    a = reporting_ovs(True, datapath_type="netdev")
    assert codes(judge(binding(vif_details=HYBRID), [a])) == ["VD110"]


def test_vd110_not_when_the_agent_reports_no_datapath():
    assert codes(judge(binding(vif_details=HYBRID_29), [reporting_ovs(True)])) == []


def test_vd110_ovs_binding_on_a_vhostuser_host():
    a = reporting_ovs(
        False, datapath_type="netdev", ovs_capabilities={"iface_types": ["dpdkvhostuserclient"]}
    )
    j = judge(binding(vif_details=DIRECT_29), [a])
    assert codes(j) == ["VD110"]
    assert "vhostuser" in only(j, "VD110").message
    # and a vhostuser binding there is what the mechanism driver writes: nothing to say
    details = json.dumps(
        {
            "port_filter": False,
            "ovs_hybrid_plug": False,
            "datapath_type": "netdev",
            "vhostuser_ovs_plug": True,
        }
    )
    assert codes(judge(binding(vif_type="vhostuser", vif_details=details), [a])) == []


# ------------------------------------------------------------------------ categories


@pytest.mark.parametrize(
    ("kw", "category"),
    [
        ({"device_owner": "network:dhcp"}, "network:dhcp (Nova plugs nothing)"),
        (
            {"device_owner": "network:router_interface"},
            "network:router_interface (Nova plugs nothing)",
        ),
        (
            {"device_owner": "network:router_interface_distributed", "vif_type": "distributed"},
            "network:router_interface_distributed (Nova plugs nothing)",
        ),
        ({"device_owner": ""}, "no device_owner (Nova plugs nothing)"),
        ({"device_owner": "baremetal:none"}, "baremetal:* (Nova plugs nothing)"),
        ({"driver": "ovn"}, "driver ovn (no agent-based rule)"),
        (
            {"driver": "sriovnicswitch", "vif_type": "hw_veb", "vnic_type": "direct"},
            "driver sriovnicswitch (no agent-based rule)",
        ),
        (
            {"driver": None, "vif_type": "hw_veb", "vnic_type": "direct"},
            "SR-IOV/macvtap vif_type hw_veb (no plug rule)",
        ),
        ({"vnic_type": "direct"}, "ovs vnic_type direct (hardware offload, no plug rule)"),
    ],
)
def test_categories_of_rows_no_plug_rule_applies_to(kw, category):
    # empty details: a rule that wrongly judged these rows would report VD101/VD103
    j = judge(binding(vif_details="", **kw), [legacy_ovs(), agent("compute1", AGENT_SRIOV)])
    assert j.category == category
    assert codes(j) == []


@pytest.mark.parametrize("vif_type", ["distributed", "ovs_typo", "other_vendor"])
def test_vd112_vm_port_with_a_vif_type_nova_cannot_plug(vif_type):
    # nova 34's LibvirtGenericVIFDriver raises "Unexpected vif_type" for these
    j = judge(binding(vif_details="", driver=None, vif_type=vif_type), [legacy_ovs()])
    assert codes(j) == ["VD112"] and j.category == "judged"


@pytest.mark.parametrize("vif_type", ["ovs", "bridge", "vhostuser", "hw_veb", "tap", "other"])
def test_no_vd112_for_types_nova_knows(vif_type):
    j = judge(binding(vif_details="", vif_type=vif_type), [legacy_ovs()])
    assert "VD112" not in codes(j)


def test_dhcp_port_is_skipped_even_with_a_malformed_profile_reported():
    j = judge(binding(device_owner="network:dhcp", vif_details="", profile="[1]"))
    assert codes(j) == ["VD104"]
    assert j.category == "network:dhcp (Nova plugs nothing)"


# --------------------------------------------------------------------------- VD111


def test_agent_finding_vd111_for_unreadable_configurations():
    a = agent("compute1", raw='{"bridge_mappings": {"physnet1": "br-ex"')
    f = agent_finding(a)
    assert f is not None and f.code == "VD111"
    assert f.host == "compute1" and f.port_id == ""
    assert f.extra == {"agent_id": a.id, "agent_type": a.agent_type}
    assert f.severity is CATALOG["VD111"].severity


@pytest.mark.parametrize("raw", ["[]", "null", "42"])
def test_agent_finding_vd111_for_non_object_configurations(raw):
    assert agent_finding(agent(raw=raw)).code == "VD111"


@pytest.mark.parametrize("raw", ["", "{}", '{"ovs_hybrid_plug": true}'])
def test_agent_finding_none_for_readable_configurations(raw):
    assert agent_finding(agent(raw=raw)) is None


def test_unreadable_agent_configurations_fall_back_to_the_assumption():
    # configurations read as {}: iptables_hybrid assumed, so empty details are VD101
    j = judge(binding(vif_details='{"port_filter": true}'), [agent(raw="[")])
    assert codes(j) == ["VD101"]
    ctx = RuleContext(firewall=FirewallAssumption(FW_IPTABLES_HYBRID, "t"), firewall_explicit=True)
    assert codes(judge(binding(vif_details=HYBRID), [agent(raw="[")], ctx)) == []
