"""vifdoctor.rules.plug: the small decisions the rules rest on, held against OpenStack's code.

* parse_json_column -- neutron 29.0.0 ``Ml2Plugin._get_vif_details``: ``''`` -> ``{}``, text
  that does not parse -> ``{}`` (logged), anything that parses -> returned as is.
* nova_plug -- nova 34 ``VIF.is_hybrid_plug_enabled`` is
  ``self['details'].get('ovs_hybrid_plug', False)`` used as a truth value
  (``os_vif_util._nova_to_osvif_vif_ovs``), legacy Nova ORs ``get_firewall_required``.
* host_needs -- neutron ``OpenvswitchMechanismDriver._pre_get_vif_details`` /
  ``get_supported_vif_type`` and the OVS agent's ``OVS_HYBRID_PLUG_REQUIRED`` report.
"""

from __future__ import annotations

import pytest
from testkit.cloudfactory import agent, legacy_ovs, reporting_ovs

from vifdoctor.model import NovaGeneration, Plug, parse_json_column
from vifdoctor.rules.plug import (
    FW_IPTABLES,
    FW_IPTABLES_HYBRID,
    FW_NOOP,
    FW_OPENVSWITCH,
    NOVA_NOOP_FIREWALL,
    FirewallAssumption,
    RuleContext,
    host_needs,
    normalize_firewall_driver,
    nova_plug,
)

MODERN, LEGACY = NovaGeneration.MODERN, NovaGeneration.LEGACY
IPTABLES_NOVA_FW = "nova.virt.libvirt.firewall.IptablesFirewallDriver"


# ------------------------------------------------------------------ parse_json_column


@pytest.mark.parametrize("raw", ["", None])
def test_parse_empty_is_an_empty_object_without_error(raw):
    parsed = parse_json_column(raw)
    assert parsed.ok
    assert parsed.value == {}
    assert parsed.as_dict() == {}


@pytest.mark.parametrize(
    "raw",
    [
        '{"port_filter": true, "ovs_hybrid_pl',  # cut short, as at VARCHAR(4095)
        "{port_filter: true}",
        "{'port_filter': True}",  # a Python repr written by hand
        " ",  # neutron: ' ' is truthy, jsonutils.loads(' ') fails -> {}
        '{"a": 1} trailing',
    ],
)
def test_parse_invalid_json_is_an_error_and_reads_as_empty(raw):
    parsed = parse_json_column(raw)
    assert not parsed.ok
    assert parsed.error.startswith("not valid JSON")
    assert parsed.value == {}  # what Ml2Plugin._get_vif_details hands Nova
    assert parsed.raw == raw


def test_parse_deep_nesting_does_not_raise():
    parsed = parse_json_column("[" * 100_000 + "]" * 100_000)
    assert not parsed.ok


@pytest.mark.parametrize(
    ("raw", "value", "kind"),
    [
        ("[1]", [1], "list"),
        ("null", None, "null"),
        ('"x"', "x", "string"),
        ("3", 3, "number"),
        ("true", True, "boolean"),
    ],
)
def test_parse_non_object_json_is_an_error_but_the_value_is_kept(raw, value, kind):
    parsed = parse_json_column(raw)
    assert not parsed.ok
    assert kind in parsed.error
    # Neutron returns the parsed value itself: the rules must not pretend it was {}.
    assert parsed.value == value and type(parsed.value) is type(value)
    assert parsed.as_dict() == {}


def test_parse_valid_object():
    parsed = parse_json_column('{"ovs_hybrid_plug": false, "port_filter": true}')
    assert parsed.ok
    assert parsed.value == {"ovs_hybrid_plug": False, "port_filter": True}
    assert parsed.as_dict() is parsed.value


# ------------------------------------------------------------------------- nova_plug


@pytest.mark.parametrize("generation", [MODERN, LEGACY])
@pytest.mark.parametrize(
    "details",
    [
        {"port_filter": True},  # key missing: .get(..., False)
        {"port_filter": True, "ovs_hybrid_plug": None},  # Victoria+ with a silent agent
        {"port_filter": True, "ovs_hybrid_plug": False},
        {"port_filter": True, "ovs_hybrid_plug": ""},
        {"port_filter": True, "ovs_hybrid_plug": 0},
    ],
)
def test_nova_plugs_direct_when_ovs_hybrid_plug_is_falsy(generation, details):
    # Legacy with the default (Noop) nova firewall: the firewall term is False.
    assert nova_plug("ovs", details, generation) is Plug.DIRECT


@pytest.mark.parametrize("generation", [MODERN, LEGACY])
@pytest.mark.parametrize("value", [True, "false", "0", 1, ["x"]])
def test_nova_plugs_hybrid_when_ovs_hybrid_plug_is_truthy(generation, value):
    # Python truthiness, as VIF.is_hybrid_plug_enabled: the string "false" is hybrid.
    details = {"port_filter": True, "ovs_hybrid_plug": value}
    assert nova_plug("ovs", details, generation) is Plug.HYBRID


def test_empty_details_plug_direct_on_modern_nova():
    # The incident: ports whose details are {} are plugged straight on br-int.
    assert nova_plug("ovs", {}, MODERN) is Plug.DIRECT
    # ... even if Nova still had an iptables firewall configured: Ussuri+ ignores it.
    assert nova_plug("ovs", {}, MODERN, IPTABLES_NOVA_FW) is Plug.DIRECT


@pytest.mark.parametrize("details", [{}, {"port_filter": False}, {"ovs_hybrid_plug": False}])
def test_legacy_nova_with_its_own_firewall_plugs_unfiltered_ports_hybrid(details):
    # Icehouse..Train: get_firewall_required(vif) is True when port_filter is off and
    # CONF.firewall_driver is not NoopFirewallDriver.
    assert nova_plug("ovs", details, LEGACY, IPTABLES_NOVA_FW) is Plug.HYBRID
    # The same details with Nova's Noop firewall: only ovs_hybrid_plug counts.
    assert nova_plug("ovs", details, LEGACY, NOVA_NOOP_FIREWALL) is Plug.DIRECT


@pytest.mark.parametrize(
    ("hybrid", "plug"), [(True, Plug.HYBRID), (False, Plug.DIRECT), (None, Plug.DIRECT)]
)
def test_legacy_nova_follows_ovs_hybrid_plug_when_neutron_filters(hybrid, plug):
    details = {"port_filter": True, "ovs_hybrid_plug": hybrid}
    assert nova_plug("ovs", details, LEGACY, IPTABLES_NOVA_FW) is plug


@pytest.mark.parametrize("noop", ["nova.virt.firewall.NoopFirewallDriver", "noop", ""])
def test_legacy_nova_noop_spellings(noop):
    assert nova_plug("ovs", {}, LEGACY, noop) is Plug.DIRECT


@pytest.mark.parametrize(
    ("vif_type", "plug"),
    [
        ("vhostuser", Plug.VHOSTUSER),
        ("bridge", Plug.BRIDGE),
        ("binding_failed", Plug.NONE),
        ("unbound", Plug.NONE),
        ("hw_veb", Plug.UNKNOWN),
        ("distributed", Plug.UNKNOWN),
    ],
)
def test_nova_plug_for_other_vif_types_ignores_ovs_hybrid_plug(vif_type, plug):
    details = {"ovs_hybrid_plug": True, "port_filter": False}
    assert nova_plug(vif_type, details, LEGACY, IPTABLES_NOVA_FW) is plug


# ------------------------------------------------------------ normalize_firewall_driver


@pytest.mark.parametrize(
    ("value", "alias"),
    [
        ("iptables_hybrid", FW_IPTABLES_HYBRID),
        ("openvswitch", FW_OPENVSWITCH),
        ("noop", FW_NOOP),
        ("iptables", FW_IPTABLES),
        ("  OpenVSwitch  ", FW_OPENVSWITCH),
        # neutron 29.0.0 entry points (neutron.agent.firewall_drivers)
        (
            "neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver",
            FW_IPTABLES_HYBRID,
        ),
        (
            "neutron.agent.linux.iptables_firewall:OVSHybridIptablesFirewallDriver",
            FW_IPTABLES_HYBRID,
        ),
        ("neutron.agent.linux.iptables_firewall.IptablesFirewallDriver", FW_IPTABLES),
        ("neutron.agent.linux.iptables_firewall:IptablesFirewallDriver", FW_IPTABLES),
        ("neutron.agent.linux.openvswitch_firewall.OVSFirewallDriver", FW_OPENVSWITCH),
        ("neutron.agent.linux.openvswitch_firewall:OVSFirewallDriver", FW_OPENVSWITCH),
        ("neutron.agent.firewall.NoopFirewallDriver", FW_NOOP),
        ("neutron.agent.firewall:NoopFirewallDriver", FW_NOOP),
        # the agent loads `firewall_driver or 'noop'` (securitygroups_rpc.init_firewall)
        ("", FW_NOOP),
        (None, FW_NOOP),
        ("   ", FW_NOOP),
    ],
)
def test_normalize_firewall_driver(value, alias):
    assert normalize_firewall_driver(value) == alias


@pytest.mark.parametrize(
    "value", ["hybrid", "ovs", "neutron.agent.linux.Foo", "nova.virt.firewall.NoopFirewallDriver"]
)
def test_normalize_unknown_firewall_driver_is_none(value):
    assert normalize_firewall_driver(value) is None


# ------------------------------------------------------------------------ host_needs


def ctx(driver: str = FW_IPTABLES_HYBRID, *, explicit: bool = False, sg: bool = True):
    return RuleContext(
        firewall=FirewallAssumption(driver, "test"),
        firewall_explicit=explicit,
        enable_security_group=sg,
    )


def test_agent_reporting_hybrid_true_needs_hybrid_whatever_the_assumption():
    needs = host_needs(reporting_ovs(True), ctx(FW_OPENVSWITCH))
    assert needs.plug is Plug.HYBRID
    assert "ovs_hybrid_plug=true" in needs.source
    assert needs.enforces_security_groups
    assert not needs.vhostuser


def test_agent_reporting_hybrid_false_needs_direct_whatever_the_assumption():
    needs = host_needs(reporting_ovs(False), ctx(FW_IPTABLES_HYBRID))
    assert needs.plug is Plug.DIRECT
    assert "ovs_hybrid_plug=false" in needs.source
    # no explicit firewall: a Newton+ agent reporting False is taken as the openvswitch driver
    assert needs.enforces_security_groups


def test_agent_reporting_null_needs_direct():
    # A reported null is falsy, as the mechanism driver copies it into ovs_hybrid_plug.
    assert host_needs(reporting_ovs(None), ctx()).plug is Plug.DIRECT


@pytest.mark.parametrize(
    ("driver", "plug", "enforces"),
    [
        (FW_IPTABLES_HYBRID, Plug.HYBRID, True),
        (FW_OPENVSWITCH, Plug.DIRECT, True),
        (FW_IPTABLES, Plug.DIRECT, True),
        (FW_NOOP, Plug.DIRECT, False),
    ],
)
def test_silent_agent_follows_the_assumed_firewall(driver, plug, enforces):
    needs = host_needs(legacy_ovs(), ctx(driver))
    assert needs.plug is plug
    assert needs.enforces_security_groups is enforces
    assert f"assumed {driver}" in needs.source


def test_security_groups_disabled_needs_direct_and_enforces_nothing():
    # Kilo's mechanism driver: ovs_hybrid_plug = port_filter = enable_security_group.
    needs = host_needs(legacy_ovs(), ctx(FW_IPTABLES_HYBRID, sg=False))
    assert needs.plug is Plug.DIRECT
    assert not needs.enforces_security_groups


def test_security_groups_disabled_with_a_reporting_agent():
    needs = host_needs(reporting_ovs(True), ctx(sg=False))
    assert needs.plug is Plug.HYBRID  # the report wins for the plug
    assert not needs.enforces_security_groups


def test_explicit_noop_firewall_with_a_reporting_agent_enforces_nothing():
    needs = host_needs(reporting_ovs(False), ctx(FW_NOOP, explicit=True))
    assert needs.plug is Plug.DIRECT
    assert not needs.enforces_security_groups


@pytest.mark.parametrize("iface", ["dpdkvhostuser", "dpdkvhostuserclient"])
def test_netdev_datapath_with_dpdk_vhostuser_ports_binds_vhostuser(iface):
    # get_supported_vif_type: vhostuser iff a dpdkvhostuser* iface type AND datapath netdev.
    a = agent(
        ovs_hybrid_plug=False,
        datapath_type="netdev",
        ovs_capabilities={"iface_types": ["internal", iface, "system"]},
    )
    needs = host_needs(a, ctx())
    assert needs.vhostuser
    assert needs.plug is Plug.VHOSTUSER
    assert needs.datapath_type == "netdev"


def test_netdev_without_vhostuser_iface_types_is_not_vhostuser():
    a = agent(
        ovs_hybrid_plug=False,
        datapath_type="netdev",
        ovs_capabilities={"iface_types": ["internal", "tap"]},
    )
    needs = host_needs(a, ctx())
    assert not needs.vhostuser
    assert needs.plug is Plug.DIRECT
    assert needs.datapath_type == "netdev"


def test_vhostuser_iface_types_on_system_datapath_is_not_vhostuser():
    a = agent(
        ovs_hybrid_plug=True,
        datapath_type="system",
        ovs_capabilities={"iface_types": ["dpdkvhostuser"]},
    )
    needs = host_needs(a, ctx())
    assert not needs.vhostuser
    assert needs.plug is Plug.HYBRID


@pytest.mark.parametrize(
    "config",
    [
        {"ovs_capabilities": ["dpdkvhostuser"], "datapath_type": "netdev"},
        {"ovs_capabilities": "dpdkvhostuser", "datapath_type": "netdev"},
        {"ovs_capabilities": None, "datapath_type": "netdev"},
        {"ovs_capabilities": {"iface_types": "dpdkvhostuser"}, "datapath_type": "netdev"},
        {"ovs_capabilities": {"iface_types": {"dpdkvhostuser": 1}}, "datapath_type": "netdev"},
        {
            "ovs_capabilities": {"iface_types": [["dpdkvhostuser"], {}, 3, None]},
            "datapath_type": "netdev",
        },
        {"datapath_type": ["netdev"]},
        {"datapath_type": 7},
    ],
)
def test_malformed_ovs_capabilities_do_not_crash_and_are_not_vhostuser(config):
    needs = host_needs(agent(**config), ctx())
    assert not needs.vhostuser
    assert needs.plug is Plug.HYBRID  # silent agent, iptables_hybrid assumed
    # a datapath_type that is not a string is not reported as one
    if not isinstance(config.get("datapath_type"), str):
        assert needs.datapath_type is None
