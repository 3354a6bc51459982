"""How Nova will plug a VIF, and what the bound host needs: small, pure decisions.

Each function mirrors a named piece of the real OpenStack code, so that a
reader can hold one against the other:

* :func:`parse_json_column` -- neutron ``Ml2Plugin._get_vif_details``/``_get_profile``
* :func:`nova_plug` -- nova ``os_vif_util._nova_to_osvif_vif_ovs`` (Ussuri+) and
  ``vif.LibvirtGenericVIFDriver`` ``get_firewall_required() or is_hybrid_plug_enabled()``
  (Icehouse..Train)
* :func:`host_needs` -- neutron ``OpenvswitchMechanismDriver._pre_get_vif_details`` and the
  OVS agent's ``ovs_hybrid_plug`` report (``firewall.OVS_HYBRID_PLUG_REQUIRED``)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vifdoctor.model import Agent, NovaGeneration, Plug

AGENT_OVS = "Open vSwitch agent"
AGENT_LINUXBRIDGE = "Linux bridge agent"
AGENT_SRIOV = "NIC Switch agent"
AGENT_MACVTAP = "Macvtap agent"
L2_AGENT_TYPES = frozenset({AGENT_OVS, AGENT_LINUXBRIDGE, AGENT_SRIOV, AGENT_MACVTAP})

VIF_OVS = "ovs"
VIF_VHOSTUSER = "vhostuser"
VIF_BRIDGE = "bridge"
VIF_BINDING_FAILED = "binding_failed"
VIF_UNBOUND = "unbound"
VIF_DISTRIBUTED = "distributed"
# nova.network.model.VIF_TYPE_* (nova 34.0.0): anything else makes the libvirt driver raise
# "Unexpected vif_type" (or os_vif_util "Unsupported VIF type") when it plugs the VM.
NOVA_VIF_TYPES = frozenset(
    {
        "ovs",
        "ivs",
        "dvs",
        "iovisor",
        "bridge",
        "802.1qbg",
        "802.1qbh",
        "hw_veb",
        "hyperv",
        "hostdev_physical",
        "ib_hostdev",
        "midonet",
        "vhostuser",
        "vrouter",
        "other",
        "tap",
        "macvtap",
        "agilio_ovs",
        "binding_failed",
        "vif",
        "unbound",
    }
)
SRIOV_VIF_TYPES = frozenset({"hw_veb", "hostdev_physical", "macvtap", "802.1qbh", "802.1qbg"})

FW_IPTABLES_HYBRID = "iptables_hybrid"
FW_OPENVSWITCH = "openvswitch"
FW_NOOP = "noop"
FW_IPTABLES = "iptables"
FIREWALL_DRIVERS = (FW_IPTABLES_HYBRID, FW_OPENVSWITCH, FW_NOOP, FW_IPTABLES)

# The class paths neutron.conf may name instead of the entry-point aliases.
_FIREWALL_CLASSES = {
    "neutron.agent.linux.iptables_firewall.ovshybridiptablesfirewalldriver": FW_IPTABLES_HYBRID,
    "neutron.agent.linux.iptables_firewall:ovshybridiptablesfirewalldriver": FW_IPTABLES_HYBRID,
    "neutron.agent.linux.iptables_firewall.iptablesfirewalldriver": FW_IPTABLES,
    "neutron.agent.linux.iptables_firewall:iptablesfirewalldriver": FW_IPTABLES,
    "neutron.agent.linux.openvswitch_firewall.ovsfirewalldriver": FW_OPENVSWITCH,
    "neutron.agent.linux.openvswitch_firewall:ovsfirewalldriver": FW_OPENVSWITCH,
    "neutron.agent.firewall.noopfirewalldriver": FW_NOOP,
    "neutron.agent.firewall:noopfirewalldriver": FW_NOOP,
}

NOVA_NOOP_FIREWALL = "nova.virt.firewall.NoopFirewallDriver"
VHOSTUSER_IFACE_TYPES = frozenset({"dpdkvhostuser", "dpdkvhostuserclient"})
DATAPATH_SYSTEM = "system"
DATAPATH_NETDEV = "netdev"


def normalize_firewall_driver(value: str | None) -> str | None:
    """Map a neutron ``[securitygroup] firewall_driver`` value to its alias.

    An empty value means ``noop``, as the agent loads it
    (``cfg.CONF.SECURITYGROUP.firewall_driver or 'noop'``). Returns None for a
    driver vifdoctor does not know.
    """
    text = (value or "").strip()
    if not text:
        return FW_NOOP
    low = text.lower()
    if low in FIREWALL_DRIVERS:
        return low
    return _FIREWALL_CLASSES.get(low)


def nova_firewall_required(details: dict, nova_firewall_driver: str) -> bool:
    """Legacy Nova's ``get_firewall_required``: only when Neutron does not filter."""
    if details.get("port_filter"):
        return False
    driver = (nova_firewall_driver or "").strip()
    return not (driver == "" or driver.endswith("NoopFirewallDriver") or driver.lower() == "noop")


def nova_plug(
    vif_type: str,
    details: dict,
    generation: NovaGeneration,
    nova_firewall_driver: str = NOVA_NOOP_FIREWALL,
) -> Plug:
    """The plug Nova makes of these details (details as Neutron returns them).

    Truthiness is Python's, as in ``VIF.is_hybrid_plug_enabled``: ``null``,
    ``false``, a missing key and ``""`` are direct; any non-empty string, even
    ``"false"``, is hybrid.
    """
    if vif_type == VIF_VHOSTUSER:
        return Plug.VHOSTUSER
    if vif_type == VIF_BRIDGE:
        return Plug.BRIDGE
    if vif_type in (VIF_BINDING_FAILED, VIF_UNBOUND):
        return Plug.NONE
    if vif_type != VIF_OVS:
        return Plug.UNKNOWN
    hybrid = bool(details.get("ovs_hybrid_plug", False))
    if generation is NovaGeneration.LEGACY:
        hybrid = hybrid or nova_firewall_required(details, nova_firewall_driver)
    return Plug.HYBRID if hybrid else Plug.DIRECT


@dataclass(frozen=True)
class FirewallAssumption:
    """The OVS firewall driver assumed for agents that do not report ovs_hybrid_plug."""

    driver: str
    source: str  # where the value came from, shown in the output's assumptions


@dataclass(frozen=True)
class RuleContext:
    """Everything the rules need besides the rows: settings and stated assumptions."""

    firewall: FirewallAssumption = FirewallAssumption(
        FW_IPTABLES_HYBRID, "default: iptables_hybrid, the OVS agent's default before Newton"
    )
    firewall_explicit: bool = False  # given by flag or config file, not defaulted
    enable_security_group: bool = True
    nova_generation: NovaGeneration = NovaGeneration.MODERN
    nova_firewall_driver: str = NOVA_NOOP_FIREWALL


@dataclass(frozen=True)
class HostNeeds:
    """What the host's OVS agent needs of an ``ovs`` binding."""

    plug: Plug
    source: str  # why: "agent reports ovs_hybrid_plug=true" / "assumed firewall_driver=..."
    enforces_security_groups: bool
    datapath_type: str | None  # as the agent reports it; None when it does not
    vhostuser: bool  # the agent would bind vif_type vhostuser (DPDK)


def host_needs(agent: Agent, ctx: RuleContext) -> HostNeeds:
    """The plug a host's OVS agent needs, from its report or the stated assumption."""
    config = agent.configurations
    datapath = config.get("datapath_type")
    datapath = datapath if isinstance(datapath, str) else None
    caps = config.get("ovs_capabilities")
    iface_types = caps.get("iface_types", []) if isinstance(caps, dict) else []
    if not isinstance(iface_types, list):
        iface_types = []
    vhostuser = datapath == DATAPATH_NETDEV and any(
        t in VHOSTUSER_IFACE_TYPES for t in iface_types if isinstance(t, str)
    )
    if "ovs_hybrid_plug" in config:
        hybrid = bool(config["ovs_hybrid_plug"])
        if ctx.firewall_explicit:
            firewall = ctx.firewall.driver
        else:
            firewall = FW_IPTABLES_HYBRID if hybrid else FW_OPENVSWITCH
        source = f"agent reports ovs_hybrid_plug={_js(config['ovs_hybrid_plug'])}"
    else:
        firewall = ctx.firewall.driver
        hybrid = firewall == FW_IPTABLES_HYBRID and ctx.enable_security_group
        source = f"agent reports nothing; assumed {firewall} firewall"
    return HostNeeds(
        plug=Plug.VHOSTUSER if vhostuser else (Plug.HYBRID if hybrid else Plug.DIRECT),
        source=source,
        enforces_security_groups=ctx.enable_security_group and firewall != FW_NOOP,
        datapath_type=datapath,
        vhostuser=vhostuser,
    )


def _js(value: Any) -> str:
    return json.dumps(value)
