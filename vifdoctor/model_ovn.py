"""What vifdoctor knows of OVN's Northbound and Southbound databases.

``sources.ovn`` fills these from NB/SB; ``rules.ovn`` judges bindings against
them. Nothing here does I/O, and nothing here imports a source or a rule.

Chassis are kept as neutron's ``AgentCache`` sees them
(neutron/plugins/ml2/drivers/ovn/agent/neutron_agent.py): one agent per SB
``Chassis_Private`` row that has a ``Chassis``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

AGENT_CONTROLLER = "OVN Controller agent"
AGENT_CONTROLLER_GW = "OVN Controller Gateway agent"
DEFAULT_OVN_BRIDGE = "br-int"  # neutron's n_const.DEFAULT_BR_INT
OVN_SWITCH_PREFIX = "neutron-"  # utils.ovn_name(): a network's Logical_Switch
PROVNET_PREFIX = "provnet-"  # the localnet LSPs neutron makes for physical segments


@dataclass(frozen=True, slots=True)
class OvnChassis:
    """One SB ``Chassis`` (with its ``Chassis_Private``), as an agent neutron synthesizes."""

    name: str  # Chassis.name: the host's Open_vSwitch external_ids:system-id
    hostname: str
    alive: bool  # AgentCache's rule (nb_cfg delta, else nb_cfg_timestamp)
    liveness: str  # why alive or dead, for a finding's message
    gateway: bool  # ovn-cms-options has enable-chassis-as-gw
    bridge_mappings: str  # other_config:ovn-bridge-mappings, raw
    physnets: tuple[str, ...]  # the mappings' physical networks ((): none or malformed)
    mappings_error: str | None  # why the mappings do not parse (neutron cannot bind then)
    datapath_type: str  # other_config:datapath-type ("" when unset)
    iface_types: tuple[str, ...]  # other_config:iface-types
    ovn_bridge: str  # Chassis_Private external_ids neutron:ovn-bridge, else br-int
    has_private: bool = True  # False: no Chassis_Private, so neutron shows no agent
    nb_cfg: int = 0
    nb_cfg_timestamp_ms: int = 0

    @property
    def agent_type(self) -> str:
        return AGENT_CONTROLLER_GW if self.gateway else AGENT_CONTROLLER

    def as_dict(self) -> dict:
        return {
            "chassis": self.name,
            "hostname": self.hostname,
            "agent_type": self.agent_type,
            "alive": self.alive,
            "liveness": self.liveness,
            "bridge_mappings": self.bridge_mappings,
            "datapath_type": self.datapath_type,
            "iface_types": list(self.iface_types),
            "ovn_bridge": self.ovn_bridge,
            "has_chassis_private": self.has_private,
        }


@dataclass(frozen=True, slots=True)
class OvnPort:
    """One NB ``Logical_Switch_Port`` with its SB ``Port_Binding`` (when northd made one)."""

    name: str  # the Neutron port id for every port neutron made
    switch: str  # the Logical_Switch name: neutron-<network id>
    type: str = ""  # "" for a VIF; router, localnet, localport, virtual, external, ...
    requested_chassis: str = ""  # options:requested-chassis ("src,dst" in a live migration)
    up: bool | None = None  # NB up (None: never set)
    enabled: bool | None = None
    has_port_name: bool = False  # external_ids has neutron:port_name (what db-sync keys on)
    device_owner: str = ""  # external_ids neutron:device_owner
    host_id: str = ""  # external_ids neutron:host_id
    claimed_by: str | None = None  # SB Port_Binding.chassis, by chassis name
    additional_chassis: tuple[str, ...] = ()  # SB additional_chassis (a migration's target)
    has_port_binding: bool = False


@dataclass
class OvnView:
    """NB and SB as read once: chassis by host and by name, switch ports by name."""

    nb_cfg: int
    chassis: list[OvnChassis]
    ports: dict[str, OvnPort]
    source: dict = field(default_factory=dict)  # connections and counts, for the report
    by_host: dict[str, list[OvnChassis]] = field(init=False)
    by_name: dict[str, OvnChassis] = field(init=False)

    def __post_init__(self) -> None:
        self.by_host = {}
        self.by_name = {}
        for ch in self.chassis:
            self.by_name[ch.name] = ch
            if ch.has_private:  # what AgentCache lists
                self.by_host.setdefault(ch.hostname, []).append(ch)

    def agents_on(self, host: str) -> list[OvnChassis]:
        return self.by_host.get(host, [])

    def without_agent_on(self, host: str) -> list[OvnChassis]:
        """Chassis with this hostname that neutron cannot see (no Chassis_Private)."""
        return [c for c in self.chassis if c.hostname == host and not c.has_private]


@dataclass(frozen=True)
class Segment:
    """A binding's network segment as the rules need it (``networksegments``)."""

    network_type: str
    physical_network: str | None


def chassis_list(chassis: Iterable[OvnChassis]) -> list[dict]:
    return [c.as_dict() for c in sorted(chassis, key=lambda c: (c.hostname, c.name))]


def chassis_liveness(
    nb_cfg_global: int, nb_cfg: int, timestamp_ms: int, now_s: float, down_time: float
) -> tuple[bool, str]:
    """AgentCache's ``alive``: within one nb_cfg round of NB_Global, else a report
    (``nb_cfg_timestamp``, milliseconds) younger than agent_down_time."""
    behind = nb_cfg_global - nb_cfg
    if behind <= 1:
        return True, f"nb_cfg {nb_cfg} of NB_Global's {nb_cfg_global}"
    age = now_s - timestamp_ms / 1000.0
    if age < down_time:
        return True, (
            f"nb_cfg {behind} rounds behind NB_Global, but its last report is "
            f"{age:.0f} s old, within agent_down_time {down_time:g} s"
        )
    return False, (
        f"nb_cfg {nb_cfg} is {behind} rounds behind NB_Global's {nb_cfg_global} "
        f"and its last report (nb_cfg_timestamp) is {age:.0f} s old, beyond "
        f"agent_down_time {down_time:g} s"
    )


def parse_bridge_mappings(text: str) -> tuple[tuple[str, ...], str | None]:
    """The physical networks of ``ovn-bridge-mappings`` as neutron parses them
    (neutron_lib parse_mappings): ``physnet:bridge`` pairs, keys and values unique."""
    keys: list[str] = []
    values: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            return (), f"invalid mapping {item!r}"
        key, value = parts[0].strip(), parts[1].strip()
        if key in keys or value in values:
            return (), f"{key if key in keys else value!r} appears twice in {text!r}"
        keys.append(key)
        values.append(value)
    return tuple(keys), None
